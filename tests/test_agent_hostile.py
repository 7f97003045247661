"""Hostile replies: the agent and the app never raise, never hang and never show a server path.

A seeded generator mixes ReAct keywords, whitespace runs, huge tokens, long and odd ``.png`` names,
unicode, NUL and multi-MB replies; every reply goes through ``Conversation.run`` (scripted backend,
real Crop and Canny tools) and through the app's handlers.
"""

from __future__ import annotations

import logging
import random
import time

import pytest
from PIL import Image

from g4t.agent import MAX_ITERATIONS_MESSAGE, Agent, parse_reply
from g4t.app import ChatBot
from g4t.llm import ScriptedBackend
from g4t.llm.base import GenerationConfig
from g4t.tools import Toolbox
from g4t.tools.workspace import Workspace

MAX_STEPS = 3
TURN_SECONDS = 2.0  # generous: a turn takes milliseconds; the quadratic scans took seconds to months

FRAGMENTS = [
    "Thought: Do I need to use a tool? Yes\n",
    "Thought: Do I need to use a tool? No\n",
    "Do I need to use a tool?",
    "Action: Crop Image\n",
    "Action: Edge Detection On Image\n",
    "Action: Fly\n",
    "Action:",
    "Action Input: ",
    "\nAction Input:",
    "AI: ",
    "\nAI:",
    "Observation:",
    "\nHuman: ",
    "New input:",
    ", [0, 0, 10, 10]",
    '"',
    "`",
    ",",
    "\x00",
    "\r\n",
    "\ud800",
    "图像",
    "👍🏽",
    "\u202e",
    "e\u0301",
    "../x.png",
    "/etc/passwd",
    "~/a.png",
    "image/\x00.png",
    "image/.png",
    "file:///x.png",
]


def _png_name(rng: random.Random, real: str) -> str:
    return rng.choice(
        [
            real,
            "image/" + "a" * rng.choice([250, 256, 300, 5000]) + ".png",
            "a" * 300 + "/" + "b" * 300 + ".png",
            "image/" + "é" * 200 + ".png",
            "image/loop.png",
            "image/loop.png/x.png",
            "image/\udc80.png",
            "x.png" * rng.randint(1, 400),
            real + "/../" + real,
        ]
    )


def hostile_reply(rng: random.Random, real: str) -> str:
    """One generated reply: a random mix of fragments, runs, huge tokens and image names."""
    parts = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.45:
            parts.append(rng.choice(FRAGMENTS))
        elif kind < 0.6:
            parts.append(rng.choice(" \t\n\r\x0b") * rng.choice([1, 50, 2_000, 20_000]))
        elif kind < 0.7:
            parts.append(rng.choice("aZ.-/_é") * rng.choice([100, 3_000, 40_000]))
        elif kind < 0.9:
            parts.append(_png_name(rng, real))
        else:
            parts.append("".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 40))))
    if rng.random() < 0.5:  # make a tool call likely, with a hostile argument
        tool = rng.choice(["Crop Image", "Edge Detection On Image", "Crop Image" + " " * 300])
        parts.insert(
            rng.randint(0, len(parts)), f"\nAction: {tool}\nAction Input: {_png_name(rng, real)}, [0, 0, 9, 9]\n"
        )
    return "".join(parts)


def huge_reply(rng: random.Random, real: str) -> str:
    """A 1-5 MB reply built from a repeated hostile unit."""
    unit = rng.choice(
        [
            "Action:" + " " * 2_000 + "\n",
            " ",
            "\n",
            "a",
            "Action: Crop Image\nAction Input: " + "a" * 997 + ".png\n",
            f"AI: {real} ",
            "x.png ",
            "Do I need to use a tool? ",
        ]
    )
    return unit * (rng.randint(1_000_000, 5_000_000) // len(unit))


def _texts(obj) -> list[str]:
    """Every string shown to the user in a list of Chatbot messages (image paths excluded: Gradio
    needs them and serves them under content-hash URLs)."""
    out = []
    for m in obj:
        content = m["content"]
        out.append(content["alt_text"] if isinstance(content, dict) else content)
        out += [str(v) for v in (m.get("metadata") or {}).values()]
    return out


@pytest.fixture(scope="module")
def toolbox():
    return Toolbox("Image2Canny_cpu,CropImage_cpu")


def _workspace_with_traps(root) -> None:
    (root / "image").mkdir(parents=True, exist_ok=True)
    loop = root / "image" / "loop.png"
    if not loop.is_symlink():
        loop.symlink_to(loop)  # a symlink loop: stat raises ELOOP


def test_conversation_survives_thousands_of_hostile_replies(tmp_path, toolbox, square_image):
    rng = random.Random(13)
    conv = Agent(ScriptedBackend(["AI: hi"]), toolbox, max_steps=MAX_STEPS).conversation(tmp_path / "c")
    real, _ = conv.add_image(square_image)
    _workspace_with_traps(conv.workspace.root)
    root = str(conv.workspace.root)
    slowest, steps, images = 0.0, 0, 0
    for i in range(2_500):
        replies = [huge_reply(rng, real) if i % 500 == 0 and k == 0 else hostile_reply(rng, real) for k in range(4)]
        conv.agent.backend = ScriptedBackend(replies)
        start = time.perf_counter()
        result = conv.run(rng.choice(["edges", "crop it", "\x00" * 10, "a" * 10_000, real]))
        slowest = max(slowest, time.perf_counter() - start)
        assert len(result.steps) <= MAX_STEPS
        assert isinstance(result.answer, str) and result.answer
        assert result.answer.startswith(MAX_ITERATIONS_MESSAGE) or not result.stopped
        for text in [result.answer] + [s.observation for s in result.steps]:
            assert root not in text
        assert all(p.is_relative_to(conv.workspace.root) for p in result.images)
        steps, images = steps + len(result.steps), images + len(result.images)
    assert slowest < TURN_SECONDS
    assert steps > 1_000 and images > 50  # the generator does reach the tools and make images


def test_app_survives_hostile_replies_and_input(tmp_path, toolbox, square_image):
    rng = random.Random(31)
    agent = Agent(ScriptedBackend(["AI: hi"]), toolbox, max_steps=MAX_STEPS)
    bot = ChatBot(agent, tmp_path / "sessions")
    session, _ = bot.run_image(None, square_image)
    real = next(m["content"]["alt_text"] for m in session.messages if isinstance(m["content"], dict))
    _workspace_with_traps(session.conversation.workspace.root)
    bad_upload = tmp_path / ("b" * 200 + ".png")
    bad_upload.write_bytes(b"not a png")
    root = str(bot.image_root)
    for i in range(1_000):
        replies = [huge_reply(rng, real) if i % 200 == 0 and k == 0 else hostile_reply(rng, real) for k in range(4)]
        agent.backend = ScriptedBackend(replies)
        before = len(session.messages)
        text = hostile_reply(rng, real)[: rng.choice([10, 1_000, 200_000])]
        start = time.perf_counter()
        if i % 50 == 0:
            session, messages = bot.submit(session, text, rng.choice([square_image, bad_upload]))
        else:
            session, messages = bot.run_text(session, text)
        assert time.perf_counter() - start < TURN_SECONDS
        new = messages[before:]
        assert (
            sum(1 for m in new if str((m.get("metadata") or {}).get("title", "")).startswith("Used tool")) <= MAX_STEPS
        )
        for shown in _texts(new):
            assert root not in shown
        if i % 100 == 99:
            session, _ = bot.clear(session)


@pytest.mark.parametrize(
    "reply",
    [
        "Action:" + " " * 1_000_000 + "\nfoo",
        " " * 1_000_000,
        "\n" * 1_000_000,
        "Action: " * 125_000,
        "\nAction Input:" * 70_000,
        "\nAI" + " \n" * 500_000,
        "Thought:" + " \t" * 500_000,
        ("Action: " + "x" * 250 + "\nAction Input: y\n") * 3_500,
        "a" * 1_000_000 + " Input AI Human Observation",
    ],
    ids=["action-spaces", "spaces", "newlines", "actions", "inputs", "ai-ws", "thought-ws", "long-names", "letters"],
)
def test_parsing_and_image_finding_are_linear(tmp_path, reply):
    ws = Workspace(tmp_path)
    real = ws.save_image(Image.new("RGB", (4, 4)))
    start = time.perf_counter()
    parse_reply(reply)
    ws.find_images(reply + " " + real)
    assert time.perf_counter() - start < 2.0  # measured ~20-70 ms per MB on a busy 2-core machine


def test_long_png_names_are_observations_not_exceptions(tmp_path, toolbox, square_image):
    long_name = "image/" + "a" * 300 + ".png"
    replies = [
        f"Thought: Do I need to use a tool? Yes\nAction: Crop Image\nAction Input: {long_name}, [0, 0, 1, 1]\n",
        f"Thought: Do I need to use a tool? No\nAI: see {long_name} and image/loop.png",
    ]
    conv = Agent(ScriptedBackend(replies), toolbox).conversation(tmp_path)
    _workspace_with_traps(conv.workspace.root)
    result = conv.run("crop")
    assert result.steps[0].observation.startswith("Error: ") and "too long" in result.steps[0].observation
    assert result.answer.startswith("see image/aaa") and result.images == []
    with pytest.raises(Exception, match="symlink loop|Too many levels"):
        conv.workspace.resolve("image/loop.png")
    assert conv.workspace.find_images("image/loop.png " + long_name) == []


def test_tool_errors_name_files_relative_to_the_workspace(tmp_path, square_image):
    from g4t.tools import TOOL_CLASSES, TOOLS
    from g4t.tools.registry import ToolModel, register_tool_class, tool

    @register_tool_class("TestLeaky")
    class Leaky(ToolModel):
        @tool("Leak", "fails with an absolute path", inputs=("image",))
        def inference(self, image) -> str:
            raise OSError(36, "File name too long", str(tmp_path / "c" / "image" / ("a" * 300 + ".png")))

    try:
        conv = Agent(
            ScriptedBackend(
                lambda p: (
                    "AI: done"
                    if "Observation:" in p.split("New input")[-1]
                    else f"Action: Leak\nAction Input: {p.split('named ')[-1].split('.')[0]}.png\n"
                )
            ),
            Toolbox("TestLeaky_cpu"),
        ).conversation(tmp_path / "c")
        conv.add_image(square_image)
        observation = conv.run("leak").steps[0].observation
        assert str(tmp_path) not in observation and "image/aaaa" in observation
        assert observation.startswith("Error: Leak failed (OSError: [Errno 36] File name too long")
    finally:
        del TOOL_CLASSES["TestLeaky"], TOOLS["Leak"]


def test_caps_cut_replies_observations_and_the_prompt(tmp_path, toolbox, caplog):
    caplog.set_level(logging.WARNING, "g4t.agent")
    crop = "Action: Crop Image\nAction Input: " + "b" * 5_000 + ", [0, 0, 1, 1]\n"
    backend = ScriptedBackend([crop, crop, "AI: " + "z" * 50_000])
    agent = Agent(backend, toolbox, max_steps=5, max_observation_chars=300, max_reply_chars=1_000)
    conv = agent.conversation(tmp_path, keep_last_n=10)
    for digit in "123":  # history of long answers
        conv.memory.add(digit * 3_000, "w" * 8_000)
    agent.max_prompt_chars = 20_000
    result = conv.run("u" * 10_000)
    assert len(result.answer) < 1_100 and result.answer.endswith("more characters cut]")
    assert all(len(s.observation) < 400 for s in result.steps)
    assert all(len(p) <= 20_000 for p in backend.prompts)
    assert "1" * 3_000 not in backend.prompts[0] and "3" * 3_000 in backend.prompts[0]  # oldest first
    assert "u" * 4_000 in backend.prompts[0] and "u" * 4_001 not in backend.prompts[0]  # MAX_INPUT_CHARS
    logged = caplog.text
    assert "over max_prompt_chars=20000: dropped" in logged and "model reply of" in logged
    with pytest.raises(ValueError, match="max_reply_chars must be >= 1"):
        Agent(backend, toolbox, max_reply_chars=0)


class _Windowed(ScriptedBackend):
    """A scripted model with a context window, counting one token per word (as ``HFBackend`` counts real ones)."""

    def __init__(self, replies, window: int) -> None:
        super().__init__(replies)
        self.window = window

    def prompt_token_budget(self, gen):
        return self.window - gen.max_new_tokens

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_the_prompt_fits_a_local_models_context_window_history_first(tmp_path, toolbox, caplog):
    caplog.set_level(logging.WARNING, "g4t.agent")
    backend = _Windowed(["AI: ok"], window=1_000)
    agent = Agent(backend, toolbox, gen=GenerationConfig(max_new_tokens=200))
    conv = agent.conversation(tmp_path, keep_last_n=10)
    for digit in "123":  # each exchange ~300 words, far under max_prompt_chars in characters
        conv.memory.add(f"{digit} " * 150, "w " * 150)
    conv.run("what now?")
    (prompt,) = backend.prompts
    assert len(prompt) < agent.max_prompt_chars and backend.count_tokens(prompt) <= 800
    assert "3 3 3" in prompt and "1 1 1" not in prompt  # the oldest exchanges went first
    assert "over max_prompt_chars=32000, 800 prompt tokens: dropped" in caplog.text


def test_hf_backend_budget_is_the_context_window_less_the_reply(tiny_llama):
    from g4t.llm.hf import HFBackend

    backend = HFBackend.from_pretrained(tiny_llama, None, batch_size=1)
    window = backend.model.config.max_position_embeddings
    assert backend.prompt_token_budget(GenerationConfig(max_new_tokens=64)) == window - 64
    assert backend.count_tokens("hello world") == len(backend.tokenizer("hello world")["input_ids"])
