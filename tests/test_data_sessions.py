"""``--session_prompts``: train records from requests on the same image share one prompt (tool list,
image name, history) up to ``New input: ``; val/test bytes do not depend on the flag; negatives join a
session; seeded like the rest of the pipeline."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from g4t.data import annotate
from g4t.data.annotate import AnnotateConfig, run
from g4t.data.build import Sample, build_conversation, build_sessions, train_records
from g4t.data.catalog import PUBLISHED_TRAINING_TOOLS, registered_tools, tool_catalog
from g4t.prompts import image_history

NEW_INPUT = "New input: "
TOOL_LINE = "Action: the action to take, should be one of ["


@pytest.fixture(scope="module")
def alpaca(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("alpaca") / "alpaca.json"
    items = [
        {"instruction": f"Give me sleeping tip {i}.", "input": "", "output": f"Tip {i}: rest."} for i in range(200)
    ]
    path.write_text(json.dumps(items))
    return path


def _cfg(out: Path, replies: Path, **kw) -> AnnotateConfig:
    base = dict(input_path=str(replies), output_path=str(out / "train.json"), filter=True, complement=True, seed=7)
    return AnnotateConfig(**{**base, **kw})


def _prefix(instruction: str) -> str:
    assert NEW_INPUT in instruction
    return instruction[: instruction.index(NEW_INPUT) + len(NEW_INPUT)]


def _listed(instruction: str) -> list[str]:
    return instruction.split(TOOL_LINE, 1)[1].split("]\n", 1)[0].split(", ")


def _called(record: dict) -> list[str]:
    """Tools the record calls: in its scratchpad (instruction) and its output."""
    text = record["instruction"].split(NEW_INPUT, 1)[1] + record["output"]
    return [line.removeprefix("Action: ") for line in text.split("\n") if line.startswith("Action: ")]


@pytest.fixture
def captured(monkeypatch):
    """The sessions ``run`` builds (a spy on ``build_sessions``)."""
    seen: list = []

    def spy(*args, **kw):
        seen.extend(build_sessions(*args, **kw))
        return seen

    monkeypatch.setattr(annotate, "build_sessions", spy)
    return seen


def test_session_records_share_the_prompt_up_to_new_input(tmp_path, replies, captured):
    report = run(_cfg(tmp_path, replies, session_prompts=True, val_ratio=0.2, test_ratio=0.2))
    train = json.loads((tmp_path / "train.json").read_text())
    catalog = tool_catalog(registered_tools())
    assert captured and report["sessions"]["count"] == len(captured)
    n_convs = sum(len(s.conversations) for s in captured)
    assert report["sessions"]["mean_conversations"] == round(n_convs / len(captured), 3)
    assert n_convs > len(captured)  # sessions hold several requests
    expected = []
    for s in captured:
        assert 2 <= len(s.tools) <= 5 and len(set(s.tools)) == len(s.tools)
        records = [r for c in s.conversations for r in train_records(c, "all", random.Random(0))]
        assert len({_prefix(r["instruction"]) for r in records}) == 1  # one prefix per session
        for c in s.conversations:
            assert c.tools == s.tools and c.image == s.image and c.caption == s.caption
            assert c.chat_history == image_history(s.image, s.caption)  # caption always shown
            for step in c.steps:
                assert step.tool in s.tools
                assert catalog[step.tool].condition in (None, *s.tools)
        requests = [(c.steps[-1].tool, c.user_input) for c in s.conversations]
        assert len(set(requests)) == len(requests)  # a session never asks the same thing twice
        expected += records
    # the written records are exactly the sessions' records; sessions' prefixes are distinct
    key = lambda r: (r["instruction"], r["output"])  # noqa: E731
    assert sorted(map(key, train)) == sorted(map(key, expected))
    assert len({_prefix(r["instruction"]) for r in train}) == len(captured)
    # every record's called tools are offered in its own prompt
    for r in train:
        listed = _listed(r["instruction"])
        assert 2 <= len(listed) <= 5 and set(_called(r)) <= set(listed)
    # every train request is in exactly one session (no negatives here)
    assert n_convs == report["split"]["samples"]["train"]


@pytest.mark.parametrize(
    "extra",
    [
        dict(complement=True, complement_mode="all"),
        dict(complement=True, complement_mode="random"),
        dict(complement=False),
    ],
    ids=["complement-all", "complement-random", "messages"],
)
def test_val_and_test_bytes_do_not_depend_on_the_flag(tmp_path, replies, alpaca, extra):
    kw = dict(
        val_ratio=0.2,
        test_ratio=0.2,
        unseen_tools=["Detect the Give Object"],
        insert_alpaca=True,
        alpaca_path=str(alpaca),
        alpaca_ratio=0.3,
        **extra,
    )
    off = run(_cfg(tmp_path / "off", replies, **kw))
    on = run(_cfg(tmp_path / "on", replies, session_prompts=True, **kw))
    for name in ("train_val_seen.json", "train_test_unseen.json"):
        a, b = ((tmp_path / d / name).read_bytes() for d in ("off", "on"))
        assert a == b and json.loads(a)
    assert (tmp_path / "off" / "train.json").read_bytes() != (tmp_path / "on" / "train.json").read_bytes()
    assert "sessions" not in off and on["sessions"]["count"] > 0
    # same negatives and the same number of training records
    assert off["negatives"] == on["negatives"]
    assert off["outputs"]["train"]["records"] == on["outputs"]["train"]["records"]


def test_negatives_join_a_session_prompt(tmp_path, replies, alpaca):
    kw = dict(val_ratio=0.2, insert_alpaca=True, alpaca_path=str(alpaca), alpaca_ratio=0.5)
    run(_cfg(tmp_path / "off", replies, **kw))
    run(_cfg(tmp_path / "on", replies, session_prompts=True, **kw))

    def split(folder: str) -> tuple[list[dict], list[dict]]:
        train = json.loads((tmp_path / folder / "train.json").read_text())
        neg = [r for r in train if r["output"].startswith("Thought: Do I need to use a tool? No\nAI: Tip ")]
        return neg, [r for r in train if r not in neg]

    (neg_off, _), (neg, pos) = split("off"), split("on")
    assert neg and len(neg) == len(neg_off)  # same count as without the flag
    positive_prefixes = Counter(_prefix(r["instruction"]) for r in pos)
    for r in neg:
        prefix = _prefix(r["instruction"])
        assert prefix in positive_prefixes  # a session's tools, image name and history
        assert "Provide an image named " in prefix.split("Previous conversation:", 1)[1]
    # without the flag, negatives have their own prompts (a borrowed caption half of the time)
    assert sum(_prefix(r["instruction"]) in positive_prefixes for r in neg_off) < len(neg_off)


def test_same_seed_same_bytes(tmp_path, replies, alpaca):
    kw = dict(session_prompts=True, val_ratio=0.2, insert_alpaca=True, alpaca_path=str(alpaca), alpaca_ratio=0.3)
    for d, seed in (("a", 7), ("b", 7), ("c", 8)):
        run(_cfg(tmp_path / d, replies, seed=seed, **kw))
    a, b, c = ((tmp_path / d / "train.json").read_bytes() for d in "abc")
    assert a == b and a != c


def _sample(tool: str, instruction: str, args: tuple[str, ...], image_id: str = "0") -> Sample:
    return Sample(instruction, tool, args, f"Caption {image_id}.", f"{image_id}.jpg", image_id)


def test_build_sessions_budgets_condition_tools_and_repeated_requests():
    catalog = tool_catalog(PUBLISHED_TRAINING_TOOLS)
    pool = list(catalog)
    canny = "Generate Image Condition On Canny Image"
    text2img = "Generate Image From User Input Text"
    samples = [
        _sample(canny, "Draw a castle from the edges", ("example.jpg", "a castle")),
        _sample("Edge Detection On Image", "Find the edges", ("example.jpg",)),
        _sample("Edge Detection On Image", "Find the edges", ("example.jpg",)),  # the same request again
        _sample("Edge Detection On Image", "Show me the outlines", ("example.jpg",)),
        _sample(text2img, "Paint a red boat", ("a red boat",)),
        _sample("Get Photo Description", "What is in the picture?", ("example.jpg",)),
        _sample("Segment the Image", "Segment it", ("example.jpg",), image_id="1"),
    ]
    for seed in range(30):
        sessions = build_sessions(samples, catalog, pool, random.Random(seed))
        convs = [c for s in sessions for c in s.conversations]
        assert sorted((c.steps[-1].tool, c.user_input) for c in convs) == sorted(
            (s.tool, s.instruction) for s in samples
        )  # every request in exactly one session
        for s in sessions:
            assert 2 <= len(s.tools) <= 5 and len(set(s.tools)) == len(s.tools)
            assert len({c.file_name for c in s.conversations}) == 1  # one image per session
            asked = [(c.steps[-1].tool, c.user_input) for c in s.conversations]
            assert len(set(asked)) == len(asked)
            for c in s.conversations:
                assert c.prompt().split(NEW_INPUT)[0] == s.conversations[0].prompt().split(NEW_INPUT)[0]
                assert c.chat_history == image_history(s.image, s.caption)  # text-to-image too
                assert {st.tool for st in c.steps} <= set(s.tools)
        # the repeated request went to another session than its twin
        twins = [s for s in sessions for c in s.conversations if c.user_input == "Find the edges"]
        assert len(twins) == 2 and twins[0] is not twins[1]
    assert build_sessions([], catalog, pool, random.Random(0)) == []


def test_a_session_must_offer_the_tools_it_calls():
    catalog = tool_catalog(PUBLISHED_TRAINING_TOOLS)
    canny = _sample("Generate Image Condition On Canny Image", "Draw from edges", ("example.jpg", "a castle"))
    (session,) = build_sessions([canny], catalog, list(catalog), random.Random(0))
    session.tools.remove("Edge Detection On Image")
    with pytest.raises(ValueError, match="Edge Detection On Image"):
        build_conversation(canny, catalog, list(catalog), random.Random(0), session=session)
