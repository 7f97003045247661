"""g4t.evaluation.kinds: where a model fails, by record kind, in evaluate_result.py's report and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from g4t.evaluation.kinds import OUTCOMES, KindScores, format_by_kind, outcome, record_kind

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "...Let's think step by step.\n"
STEP = (
    "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: a.png\nObservation: b.png\n"
)


def _call(tool, prompt=PROMPT):
    return {
        "instruction": prompt,
        "output": f"Thought: Do I need to use a tool? Yes\nAction: {tool}\nAction Input: b.png\nObservation:\n",
        "Action": [tool],
    }


def test_every_kind_is_told_apart():
    assert record_kind(_call("Edge Detection On Image")) == "call"
    assert record_kind(_call("Generate Image Condition On Canny Image", PROMPT + STEP)) == "continue"
    assert record_kind(_call("Edge Detection On Image") | {"Action": ["A", "B"]}) == "chain"
    answer = {"instruction": PROMPT + STEP, "output": "Thought: Do I need to use a tool? No\nAI: b.png\n"}
    assert record_kind(answer) == "relay" and record_kind(answer | {"instruction": PROMPT}) == "chitchat"


def test_a_wrong_prediction_says_why():
    call, chat = _call("Edge Detection On Image"), {"instruction": PROMPT, "output": "AI: hi"}
    assert outcome(call, "Action: Edge Detection On Image\nAction Input: x", True) == "right"
    assert outcome(call, "Thought: Do I need to use a tool? No\nAI: done", False) == "said_no"
    assert outcome(call, "Action: Crop Image\nAction Input: x", False) == "wrong_tool"
    assert outcome(call, "Action: Edge Detection On Image\nAction Input: x, y", False) == "wrong_args"
    assert outcome(chat, "Action: Crop Image", False) == "said_yes"
    assert outcome(chat, "hello", False) == "bad_format"
    scores = KindScores()
    scores.add(call, "Action: Crop Image\nAction Input: x", False)
    scores.add(call, "Action: Edge Detection On Image\nAction Input: b.png", True)
    assert scores.tool_call_sr == 0.5 and scores.tool_choice == 0.5
    assert scores.by_kind["call"] == dict.fromkeys(("n", *OUTCOMES), 0) | {"n": 2, "right": 1, "wrong_tool": 1}
    assert "| call | 2 | 1 | 0 | 0 | 1 | 0 | 0 |" in format_by_kind(scores)


def test_evaluate_result_prints_and_writes_the_kinds(tmp_path):
    ann = [
        _call("Edge Detection On Image") | {"id": 0},
        {"id": 1, "instruction": PROMPT, "output": "Thought: Do I need to use a tool? No\nAI: hi\n"},
    ]
    preds = [
        {
            "id": 0,
            "output": PROMPT + "Thought: Do I need to use a tool? Yes\nAction: Crop Image\nAction Input: b.png\n",
        },
        {"id": 1, "output": PROMPT + "Thought: Do I need to use a tool? No\nAI: hello\n"},
    ]
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_0.json").write_text(json.dumps(preds))
    out = subprocess.run(
        [sys.executable, str(ROOT / "evaluate_result.py"), "--ann_path", str(tmp_path / "ann.json")]
        + ["--save_name", "run", "--save_path", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Tool-call SR 0.0 %, right first tool 0.0 %" in out.stdout
    assert "| call | 1 | 0 | 0 | 0 | 1 | 0 | 0 |" in out.stdout and "| chitchat | 1 | 1 |" in out.stdout
    report = json.loads((tmp_path / "run" / "run_report.json").read_text())
    assert report["by_kind"]["call"]["wrong_tool"] == 1 and report["tool_call_SR"] == 0.0
    assert (tmp_path / "run" / "run_by_kind.md").read_text() == format_by_kind(_kinds(report))


def _kinds(report):
    return KindScores(by_kind=report["by_kind"])
