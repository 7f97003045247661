"""parse_reply on well-formed, malformed and adversarial replies: it never raises."""

from __future__ import annotations

import pytest

from g4t.agent import parse_reply


def test_tool_call():
    r = parse_reply(
        "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: image/ab.png\n"
    )
    assert (r.kind, r.tool, r.tool_input) == ("tool", "Edge Detection On Image", "image/ab.png")


def test_tool_call_strips_quotes_and_spaces():
    r = parse_reply(
        'Thought: Do I need to use a tool? Yes\nAction:  Crop Image  \nAction Input:  "image/a.png, [1, 2, 3, 4]" '
    )
    assert (r.tool, r.tool_input) == ("Crop Image", "image/a.png, [1, 2, 3, 4]")


def test_final_answer():
    r = parse_reply("Thought: Do I need to use a tool? No\nAI: The image shows a dog.\n\n")
    assert (r.kind, r.answer) == ("final", "The image shows a dog.")


def test_final_answer_continuation_in_demo_layout():
    # After "\nThought:" the model continues without the "Thought:" word.
    r = parse_reply(" Do I need to use a tool? No\nAI: Result saved as image/x.png")
    assert (r.kind, r.answer) == ("final", "Result saved as image/x.png")


def test_final_answer_stops_at_a_new_turn():
    r = parse_reply("Thought: Do I need to use a tool? No\nAI: hello\nHuman: and more?\nAI: no")
    assert r.answer == "hello"


def test_multiline_answer_kept():
    r = parse_reply("Thought: Do I need to use a tool? No\nAI: line one\nline two")
    assert r.answer == "line one\nline two"


def test_action_before_ai_wins():
    r = parse_reply(
        "Thought: Do I need to use a tool? Yes\nAction: Get Photo Description\nAction Input: image/a.png\nAI: x"
    )
    assert r.kind == "tool"


def test_ai_inside_action_input_is_not_an_answer():
    r = parse_reply(
        "Thought: Do I need to use a tool? Yes\nAction: Instruct Image Using Text\nAction Input: image/a.png, AI: robot style"
    )
    assert (r.kind, r.tool_input) == ("tool", "image/a.png, AI: robot style")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Yes", "Who are you?", "Thought: Do I need to use a tool? Yes", "Action:\nAction Input: x", "\x00\x01"],
)
def test_unparseable_never_raises_and_gives_text(text):
    r = parse_reply(text)
    assert r.kind == "unparsed"
    assert r.answer  # always something to show


def test_unparseable_returns_model_text_without_boilerplate():
    r = parse_reply("Thought: Do I need to use a tool? No\nI am GPT4Tools, a visual assistant.")
    assert r.answer == "I am GPT4Tools, a visual assistant."


def test_adversarial_long_garbage():
    r = parse_reply("Action: " * 10_000)
    assert r.kind in {"unparsed", "tool"}
