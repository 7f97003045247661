"""Quality indicators on hand-made samples: parsing, length, steps, tool-call validity, the cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from g4t.prompts import human_response, image_history, render_training_prompt, tool_response
from g4t.selection.cache import ScoreCache
from g4t.selection.indicators import (
    LengthIndicator,
    StepsIndicator,
    ToolValidityIndicator,
    compute_indicators,
    registry_tools,
    tool_validity,
)
from g4t.selection.samples import parse_sample, sample_hash

TOOLS = {
    "Edge Detection On Image": ("image",),
    "Generate Image Condition On Canny Image": ("image", "text"),
    "Generate Image From User Input Text": ("text",),
    "Crop Image": ("image", "box"),
}
DESC = "useful when you want to. The input to this tool should be a string, representing the image_path"


def record(
    output: str,
    request: str = "detect the edges",
    image: str = "image/abcdefgh.png",
    scratch: str = "",
    tools=("Edge Detection On Image", "Generate Image Condition On Canny Image"),
) -> dict:
    history = image_history(image, "a dog on a red sofa") if image else ""
    prompt = render_training_prompt([(t, DESC) for t in tools], history, request)
    return {"instruction": prompt + scratch, "input": "", "output": output}


GOOD = record(tool_response("Edge Detection On Image", "image/abcdefgh.png"))
FINAL = record(
    human_response("Result saved as image/ijklmnop.png"),
    scratch="Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\n"
    "Action Input: image/abcdefgh.png\nObservation: Result saved as image/ijklmnop.png\n",
)


def test_parse_sample_reads_request_history_and_steps():
    p = parse_sample(FINAL)
    assert p.request == "detect the edges"
    assert p.image == "image/abcdefgh.png" and p.caption == "a dog on a red sofa"
    assert p.offered_tools == ["Edge Detection On Image", "Generate Image Condition On Canny Image"]
    assert p.thoughts == ["No"] and not p.actions
    assert "image/ijklmnop.png" in p.known_files and "image/abcdefgh.png" in p.known_files
    g = parse_sample(GOOD)
    assert g.actions == ["Edge Detection On Image"] and g.action_inputs == ["image/abcdefgh.png"]
    assert sample_hash(GOOD) == sample_hash(dict(GOOD)) != sample_hash(FINAL)


def test_validity_full_marks_for_valid_calls_and_answers():
    assert tool_validity(GOOD, TOOLS) == 100.0
    assert tool_validity(FINAL, TOOLS) == 100.0
    two_step = record(
        tool_response("Edge Detection On Image", "image/abcdefgh.png").removesuffix("Observation:\n")
        + "Observation: image/qrstuvwx.png\n"
        + tool_response("Generate Image Condition On Canny Image", "image/qrstuvwx.png, a cat on a sofa")
    )
    assert tool_validity(two_step, TOOLS) == 100.0


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (tool_response("Edge Detector", "image/abcdefgh.png"), "unknown tool"),
        (tool_response("Crop Image", "image/abcdefgh.png, [1, 2, 3, 4]"), "tool not offered by the prompt"),
        (tool_response("Generate Image Condition On Canny Image", "image/abcdefgh.png"), "missing argument"),
        (tool_response("Edge Detection On Image", "image/zzzzzzzz.png"), "file never shown"),
        (tool_response("Edge Detection On Image", "the dog picture"), "not a file name"),
        ("Thought: Do I need to use a tool? Yes\nAI: done\n", "answer after Yes"),
    ],
)
def test_validity_penalises_each_flaw(output, why):
    score = tool_validity(record(output), TOOLS)
    assert 0 < score < 100, why


def test_validity_zero_without_format():
    assert tool_validity(record("Sure, here are the edges."), TOOLS) == 0.0


def test_validity_uses_registry_by_default():
    tools = registry_tools()
    assert "Edge Detection On Image" in tools and tools["Edge Detection On Image"] == ("image",)
    assert ToolValidityIndicator().score([GOOD]) == [100.0]


def test_length_and_steps():
    recs = [GOOD, FINAL, record("x" * 10)]
    length = LengthIndicator()
    scaled = length.finalize(np.array(length.score(recs)))
    assert scaled.max() == 100.0 and np.argmax(scaled) == int(np.argmax([len(r["output"]) for r in recs]))
    assert StepsIndicator().score(recs) == [1.0, 0.0, 0.0]


class _Counting:
    name = "counting"

    def __init__(self):
        self.calls = 0

    def config(self):
        return {"v": 1}

    def score(self, records):
        self.calls += len(records)
        return [float(len(r["output"])) if r["output"] else math.nan for r in records]

    def finalize(self, values):
        return values


def test_cache_computes_each_sample_once(tmp_path):
    recs = [GOOD, FINAL, GOOD, record("")]
    ind = _Counting()
    first = compute_indicators(recs, [ind], str(tmp_path))["counting"]
    assert ind.calls == 3  # the duplicate is scored once
    again = _Counting()
    second = compute_indicators(recs, [again], str(tmp_path))["counting"]
    assert again.calls == 0
    np.testing.assert_array_equal(first, second)  # NaN survives the round trip
    assert math.isnan(second[3])
    lines = [json.loads(x) for x in next(tmp_path.glob("counting-*.jsonl")).read_text().splitlines()]
    assert len(lines) == 3
    # another configuration is another cache file
    assert ScoreCache(tmp_path, "counting", {"v": 2}).values == {}
