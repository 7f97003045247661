"""The prompt module reproduces the published format strings byte for byte."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from g4t.prompts import (
    DEMO,
    TRAINING,
    Step,
    available_templates,
    format_steps,
    human_response,
    image_history,
    load_template,
    prompt_layout,
    prompt_strings,
    render_agent_prompt,
    tool_response,
)

ASSETS = Path(__file__).parent / "assets" / "prompts"
# The published GPT4Tools format strings, byte for byte (see tests/assets/README.md).
PUBLISHED = Path(__file__).parent / "assets" / "published_format_strings.json"

EDGE = (
    "Edge Detection On Image",
    "useful when you want to detect the edge of the image. like: detect the edges of this image, or canny detection "
    "on image, or perform edge detection on this image, or detect the canny image of this image. The input to this "
    "tool should be a string, representing the image_path",
)
PIX = (
    "Instruct Image Using Text",
    "useful when you want to the style of the image to be like the text. like: make it look like a painting. or make "
    "it like a robot. The input to this tool should be a comma separated string of two, representing the image_path "
    "and the text. ",
)
CAP = (
    "Get Photo Description",
    "useful when you want to know what is inside the photo. receives image_path as input. The input to this tool "
    "should be a string, representing the image_path. ",
)
SUBSETS = {"edge": [EDGE], "caption_pix2pix_edge": [CAP, PIX, EDGE]}
STEP = Step(
    "Edge Detection On Image",
    "image/abcd1234.png",
    "image/efgh5678.png",
    log="Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: image/abcd1234.png",
)


def _published() -> dict[str, str]:
    """The published format strings, keyed by their upstream name."""
    return json.loads(PUBLISHED.read_text(encoding="utf-8"))


def test_format_strings_match_the_published_ones():
    published, s = _published(), prompt_strings()
    assert s["agent_prefix"] == published["GPT4TOOLS_PREFIX"]
    # Where ``+ "\n"`` is added, the upstream string ends with a newline after the fenced text.
    assert s["agent_format_instructions"] == published["GPT4TOOLS_FORMAT_INSTRUCTIONS"] + "\n"
    assert s["agent_suffix"] == published["GPT4TOOLS_SUFFIX"]
    assert s["training_prompt"] == published["PROMPT_FORMAT"] + "\n"
    assert s["training_image_format"] == published["LLM_IMAGE_FORMAT"]
    assert s["tool_response_format"] == published["LLM_RESPONSE_TOOL_FORMAT"] + "\n"
    assert s["human_response_format"] == published["LLM_RESPONSE_HUMAN_FORMAT"] + "\n"
    demo_image = published["DEMO_IMAGE_FORMAT"].replace("\\n", "\n")
    assert s["agent_image_format"] == demo_image.replace("{image_filename}", "{image_path}").replace(
        "{description}", "{image_caption}"
    )


def test_assembled_demo_prompt_matches_the_published_one():
    expected = _published()["DEMO_PROMPT_ASSEMBLED"]
    rendered = render_agent_prompt(
        [("A", "first tool "), ("B", "second")], "{chat_history}", "{input}", "{agent_scratchpad}", layout="demo"
    )
    assert rendered == expected.replace("TOOLDESCS", "> A: first tool \n> B: second").replace("TOOLNAMES", "A, B")


def test_alpaca_template_is_the_published_one():
    expected = _published()["ALPACA_TEMPLATE_FILE"]
    t = load_template("gpt4tools")
    for key in ("prompt_input", "prompt_no_input", "response_split"):
        value = re.search(rf'"{key}": "(.*?)"', expected).group(1).encode().decode("unicode_escape")
        assert getattr(t, key) == value
    assert t.render("INST") == "INST\n### ASSISTANT:\n"
    assert t.render("INST", output="OUT") == "INST\n### ASSISTANT:\nOUT"
    assert t.render("INST", "IN") == "INST\n### USER: IN\n### ASSISTANT:\n"
    assert t.response("INST\n### ASSISTANT:\n  answer \n") == "answer"


@pytest.mark.parametrize("layout", ["training", "demo"])
@pytest.mark.parametrize("subset", sorted(SUBSETS))
@pytest.mark.parametrize("with_step", [False, True])
def test_golden_prompts(layout, subset, with_step):
    history = image_history("image/abcd1234.png", "a dog on a sofa", layout) + (
        "" if layout == "training" else "AI: Received."
    )
    scratchpad = format_steps([STEP], layout) if with_step else ""
    rendered = render_agent_prompt(SUBSETS[subset], history, "detect the edges", scratchpad, layout)
    golden = ASSETS / f"{layout}_{subset}{'_step' if with_step else ''}.txt"
    assert rendered == golden.read_text(encoding="utf-8")


def test_golden_wrapped_training_prompt():
    prompt = render_agent_prompt([EDGE], image_history("image/abcd1234.png", "a dog", "training"), "hi")
    wrapped = load_template("gpt4tools").render(prompt)
    assert wrapped == (ASSETS / "training_edge_gpt4tools_template.txt").read_text(encoding="utf-8")
    assert wrapped.endswith("Let's think step by step.\n\n### ASSISTANT:\n")


def test_training_and_demo_layout_differences():
    training = render_agent_prompt([PIX], "H", "I", layout="training")
    demo = render_agent_prompt([PIX], "H", "I", layout="demo")
    assert "```\n\nFollow file name rules" in training and "```\n\n\nFollow file name rules" in demo
    assert "Previous conversation:\n\nH\n" in training and "Previous conversation:\nH\n" in demo
    assert "representing the image_path and the text.\n" in training  # rstripped description
    assert "representing the image_path and the text. \n" in demo  # trailing space kept
    assert image_history("x.png", "C", "training") == (
        "Human: Provide an image named x.png. Description: C Understand the image using tools.\nAI: Received."
    )
    assert image_history("x.png", "C", "demo") == (
        "\nHuman: Provide an image named x.png. The description is: C. Understand the image using tools.\n"
    )


def test_step_formats():
    assert (
        tool_response("T", "a, b")
        == "Thought: Do I need to use a tool? Yes\nAction: T\nAction Input: a, b\nObservation:\n"
    )
    assert human_response("done") == "Thought: Do I need to use a tool? No\nAI: done\n"
    assert format_steps([STEP], "training") == (
        "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\n"
        "Action Input: image/abcd1234.png\nObservation: image/efgh5678.png\n"
    )
    assert format_steps([STEP], "demo") == STEP.log + "\nObservation: image/efgh5678.png\nThought:"


def test_braces_in_user_text_do_not_break_rendering():
    for layout in ("training", "demo"):
        text = render_agent_prompt([EDGE], "", "print {x} and {input}", layout=layout)
        assert "New input: print {x} and {input}\n" in text


def test_vicuna_templates():
    assert {"gpt4tools", "gpt4tools_vicuna", "vicuna_v1.1", "vicuna_v1.5"} <= set(available_templates())
    # The HEAD training template: USER: {instruction}ASSISTANT: {output}</s>
    assert load_template("gpt4tools_vicuna").render("INST", output="OUT") == "USER: INSTASSISTANT: OUT"
    v11 = load_template("vicuna_v1.1").render("INST")
    assert v11.startswith("A chat between a curious user") and v11.endswith(" USER: INST ASSISTANT:")


def test_unknown_template_lists_the_valid_ones():
    with pytest.raises(ValueError, match="available: .*gpt4tools"):
        load_template("alpaca")


def test_layouts_are_objects_looked_up_by_name():
    assert prompt_layout("training") is TRAINING and prompt_layout("demo") is DEMO
    assert prompt_layout(DEMO) is DEMO
    assert TRAINING.name == str(TRAINING) == "training" and DEMO.name == "demo" and TRAINING != DEMO
    for bad in ("Training", "auto", None):
        with pytest.raises(ValueError, match="unknown prompt layout .*expected one of: training, demo"):
            prompt_layout(bad)


@pytest.mark.parametrize("layout", [TRAINING, DEMO])
def test_layout_methods_match_the_functions(layout):
    history = layout.chat_history(
        [layout.image_exchange("image/a.png", "a cat", "Received."), layout.exchange("hi {x}", "hello")]
    )
    assert history.startswith(image_history("image/a.png", "a cat", layout.name))
    assert layout.scratchpad([STEP]) == format_steps([STEP], layout.name)
    assert layout.agent_prompt([EDGE, PIX], history, "go", layout.scratchpad([STEP])) == render_agent_prompt(
        [EDGE, PIX], history, "go", format_steps([STEP], layout.name), layout.name
    )
