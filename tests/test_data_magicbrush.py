"""MagicBrush dev sessions -> chained editing samples.

Real records: a 20-session sample of the MagicBrush dev split kept in tests/assets/magicbrush_dev_sample
(CC BY 4.0, attribution in its README.md). On the full dev split (266 sessions, 528 turns: 100 one-turn,
70 two-turn, 96 three-turn sessions) the same code gives 528 conversations, 262 chained, 0 lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from g4t.data.magicbrush import MagicBrushConfig, convert

REPO = Path(__file__).resolve().parents[1]
DEV = Path(__file__).parent / "assets" / "magicbrush_dev_sample"


def test_every_turn_becomes_a_chained_sample(tmp_path):
    convs, ids, report = convert(MagicBrushConfig(data_dir=str(DEV), output_path=str(tmp_path / "t.json")))
    # Full dev split: (266, 528, 528, 0), {"1": 100, "2": 70, "3": 96}, 528 - 266 chained.
    assert (report.sessions, report.turns, report.conversations, report.lost) == (20, 44, 44, 0)
    assert report.turns_per_session == {"1": 5, "2": 6, "3": 9}
    assert report.chained_turns == 44 - 20
    sessions = json.loads((DEV / "edit_sessions.json").read_text())
    captions = json.loads((DEV / "global_descriptions.json").read_text())
    by_id = dict(zip(ids, convs, strict=True))
    for sid, turns in sessions.items():
        for k, turn in enumerate(turns):
            conv = by_id[f"{sid}-turn{k + 1}"]
            step = conv.steps[0]
            assert conv.user_input == " ".join(turn["instruction"].split())  # whole text, not cut
            assert step.tool == "Edit Image Using Text"
            assert step.tool_input == f"magicbrush/images/{sid}/{turn['input']}, {conv.user_input}"
            assert step.observation.removeprefix("Result saved as ") == f"magicbrush/images/{sid}/{turn['output']}"
            cap = " ".join(captions[sid][turns[0]["input"]].split())
            assert (
                f"Provide an image named magicbrush/images/{sid}/{turns[0]['input']}. Description: {cap} Understand"
                in conv.chat_history
            )
            assert "{'file_name'" not in conv.chat_history
            assert conv.chat_history.count("\nHuman: ") == k  # earlier turns replayed


def test_script_writes_records_and_reports_none_lost(tmp_path):
    out, ev = tmp_path / "mb.json", tmp_path / "mb_eval.json"
    r = subprocess.run(
        [
            sys.executable,
            "scripts/magicbrush_to_instructions.py",
            "--data_dir",
            str(DEV),
            "--output_path",
            str(out),
            "--eval_path",
            str(ev),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # Full dev split: "266 sessions, 528 turns -> 528 conversations (262 chained on the previous output), 0 lost".
    assert "20 sessions, 44 turns -> 44 conversations (24 chained on the previous output), 0 lost" in r.stdout
    train, evals = json.loads(out.read_text()), json.loads(ev.read_text())
    assert len(train) == 2 * 44 and len(evals) == 44
    report = json.loads((tmp_path / "mb.report.json").read_text())
    assert report["lost"] == 0 and report["conversations"] == 44
    assert sum("AI: " in r["output"] for r in train) == 44
