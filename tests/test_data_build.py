"""Conversation building, records in the prompts module's layout, dedup, splits, negatives, determinism."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from g4t.data.annotate import AnnotateConfig, run
from g4t.data.build import Sample, build_conversation, train_records
from g4t.data.captions import load_captions
from g4t.data.catalog import PUBLISHED_TRAINING_TOOLS, tool_catalog
from g4t.data.dedup import dedup
from g4t.data.io import DataError
from g4t.prompts import format_steps, human_response, image_history, render_agent_prompt, tool_response

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def alpaca(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("alpaca") / "alpaca.json"
    items = [
        {
            "instruction": f"Give me tip number {i} for sleeping well.",
            "input": "" if i % 2 else "Be brief.",
            "output": f"Tip {i}: go to bed early.",
        }
        for i in range(40)
    ]
    path.write_text(json.dumps(items))
    return path


def _cfg(tmp: Path, replies: Path, **kw) -> AnnotateConfig:
    base = dict(input_path=str(replies), output_path=str(tmp / "train.json"), filter=True, complement=True, seed=7)
    base.update(kw)
    return AnnotateConfig(**base)


def test_condition_chain_renders_exactly_as_the_prompts_module():
    catalog = tool_catalog(PUBLISHED_TRAINING_TOOLS)
    s = Sample(
        "Make a real photo of a castle from the edges",
        "Generate Image Condition On Canny Image",
        ("example.jpg", "a castle"),
        "A castle on a hill.",
        "c.jpg",
        "0",
    )
    conv = build_conversation(s, catalog, list(catalog), random.Random(0))
    assert [st.tool for st in conv.steps] == ["Edge Detection On Image", "Generate Image Condition On Canny Image"]
    assert "Edge Detection On Image" in conv.tools and 2 <= len(conv.tools) <= 5
    edge_out = conv.steps[0].observation.removeprefix("Result saved as ")
    assert conv.steps[0].tool_input == conv.image
    assert conv.steps[1].tool_input == f"{edge_out}, a castle"  # rewired to the condition output
    tools = [(n, catalog[n].description) for n in conv.tools]
    history = image_history(conv.image, "A castle on a hill.")
    for k in range(3):
        instruction, output = conv.cut(k)
        assert instruction == render_agent_prompt(
            tools, history, s.instruction, format_steps(conv.steps[:k]), layout="training"
        )
        expected = (
            tool_response(conv.steps[k].tool, conv.steps[k].tool_input)
            if k < 2
            else human_response(conv.steps[1].observation + "\n")
        )
        assert output == expected
    records = train_records(conv, "all", random.Random(0))
    assert len(records) == 3 and all(r["input"] == "" for r in records)
    assert records[1]["instruction"].endswith(
        f"Action: Edge Detection On Image\nAction Input: {conv.image}\nObservation: {conv.steps[0].observation}\n"
    )
    assert records[2]["output"].startswith("Thought: Do I need to use a tool? No\nAI: ") and records[2][
        "output"
    ].endswith("\n\n")


def test_chain_targets_write_the_whole_chain_as_the_eval_ground_truth_scores_it(tmp_path, replies):
    from g4t.data.build import eval_record
    from g4t.evaluation.metrics import score_sample

    catalog = tool_catalog(PUBLISHED_TRAINING_TOOLS)
    s = Sample("Draw a cat from the depth of this photo", "Generate Image Condition On Depth",
               ("example.jpg", "a cat"), "A dog on a sofa.", "d.jpg", "0")  # fmt: skip
    conv = build_conversation(s, catalog, list(catalog), random.Random(1))
    first, second = conv.steps
    _, output = conv.cut(0, chain=True)
    assert output == (
        tool_response(first.tool, first.tool_input)
        + first.observation
        + "\n"
        + tool_response(second.tool, second.tool_input)
    )
    assert conv.cut(1, chain=True) == conv.cut(1) and conv.cut(2, chain=True) == conv.cut(2)  # one call left: as before
    # the published metric scores the chain target fully against the eval record cut at the same step,
    # and the single call (what a model trained without --chain_targets writes) as a failure
    gt = eval_record(conv, 0, 0)["output"]
    assert score_sample(gt, output).success == 1
    assert score_sample(gt, conv.cut(0)[1]).success == 0
    # the pipeline flag: a chain start outputs both calls, the other cuts are unchanged
    run(_cfg(tmp_path / "a", replies))
    run(_cfg(tmp_path / "b", replies, chain_targets=True))
    plain, chained = (json.loads((tmp_path / d / "train.json").read_text()) for d in "ab")
    changed = [(a, b) for a, b in zip(plain, chained, strict=True) if a != b]
    assert changed and all(a["instruction"] == b["instruction"] for a, b in changed)
    assert all(b["output"].count("Action: ") == 2 and b["output"].startswith(a["output"]) for a, b in changed)
    with pytest.raises(ValueError, match="--chain_targets needs --complement"):
        _cfg(tmp_path, replies, complement=False, chain_targets=True)


def test_pipeline_splits_unseen_tools_and_writes_eval_format(tmp_path, replies, alpaca):
    unseen = ["Crop Image", "Text Detection On Image", "Detection"]
    report = run(
        _cfg(
            tmp_path,
            replies,
            val_ratio=0.2,
            test_ratio=0.2,
            unseen_tools=unseen,
            insert_alpaca=True,
            alpaca_path=str(alpaca),
            alpaca_ratio=0.1,
        )
    )
    assert report["parse"]["parsed"] == 10 * 26 and report["parse"]["skipped"] == {}
    train = json.loads((tmp_path / "train.json").read_text())
    val = json.loads((tmp_path / "train_val_seen.json").read_text())
    test = json.loads((tmp_path / "train_test_unseen.json").read_text())
    assert report["split"]["images"] == {"train": 6, "val": 2, "test": 2}
    assert all(set(r) == {"instruction", "input", "output"} for r in train)
    fields = {
        "id",
        "instruction",
        "input",
        "output",
        "Action",
        "Action Input",
        "user_input",
        "caption",
        "filename",
        "finished_previously",
    }
    for recs in (val, test):
        assert all(set(r) == fields for r in recs)
        assert len({r["id"] for r in recs}) == len(recs)
    # unseen tools never reach train or val, not even in the offered tool lists; they are in test
    for name in unseen:
        assert not any(f"> {name}: " in r["instruction"] or f"Action: {name}\n" in r["output"] for r in train + val)
    assert any(name in r["Action"] for r in test for name in unseen)
    # no image in two splits
    files = {
        split: {r["filename"] for r in recs if r["Action"] or r["finished_previously"]}
        for split, recs in (("val", val), ("test", test))
    }
    assert not files["val"] & files["test"]
    # the GT output of an unfinished chain holds the whole chain with observations on their own line
    chain = next(r for r in val + test if len(r["Action"]) == 2)
    assert chain["output"].count("Thought: Do I need to use a tool? Yes") == 2 and "Observation:\n" in chain["output"]
    assert chain["output"].endswith("\n\n") and chain["finished_previously"] is False
    negatives = [r for r in train if "Tip " in r["output"]]
    assert negatives and all(
        r["output"].startswith("Thought: Do I need to use a tool? No\nAI: Tip ") for r in negatives
    )


def test_same_seed_same_bytes_other_seed_differs(tmp_path, replies):
    run(_cfg(tmp_path / "a", replies, val_ratio=0.2))
    run(_cfg(tmp_path / "b", replies, val_ratio=0.2))
    run(_cfg(tmp_path / "c", replies, val_ratio=0.2, seed=8))
    a, b, c = ((tmp_path / d / "train.json").read_bytes() for d in "abc")
    assert a == b and a != c
    assert (tmp_path / "a" / "train_val_seen.json").read_bytes() == (
        tmp_path / "b" / "train_val_seen.json"
    ).read_bytes()


def test_dedup_exact_and_near():
    items = [
        ("Detect", "Find the dog in the picture"),
        ("Detect", "find the dog in the picture!"),  # exact after normalisation
        ("Detect", "Please find the dogs in this picture"),  # near: same content words
        ("Segment", "Find the dog in the picture"),  # other tool: kept
        ("Detect", "Find the cat on the sofa near the window"),
    ]
    kept, report = dedup(items, key=lambda x: x)
    assert kept == [items[0], items[3], items[4]]
    assert (report.exact, report.near, report.kept) == (1, 1, 3)
    kept, report = dedup(items, key=lambda x: x, near=False)
    assert report.near == 0 and len(kept) == 4


def test_tool_lists_have_two_to_five_tools(tmp_path, replies):
    run(_cfg(tmp_path, replies))
    for r in json.loads((tmp_path / "train.json").read_text()):
        listed = r["instruction"].split("Action: the action to take, should be one of [", 1)[1].split("]\n", 1)[0]
        assert 2 <= len(listed.split(", ")) <= 5


def test_clear_errors_for_bad_inputs(tmp_path, replies):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"file_name": "a.jpg", "caption": "c", "instructions": "x"}\n{"file_name": "b.jpg", "caption": "c"}\n'
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'instructions'"):
        run(_cfg(tmp_path, bad))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"file_name": "a.jpg",\n "caption": }]')
    with pytest.raises(DataError, match=r"broken.json: invalid JSON at line 2"):
        load_captions(broken)
    alp = tmp_path / "alp.json"
    alp.write_text(json.dumps([{"instruction": "x", "output": "y"}, {"instruction": "x"}]))
    with pytest.raises(DataError, match=r"record 1: missing or non-string field 'output'"):
        run(_cfg(tmp_path, replies, insert_alpaca=True, alpaca_path=str(alp)))
    with pytest.raises(ValueError, match="unknown tool"):
        run(_cfg(tmp_path, replies, unseen_tools=["No Such Tool"]))


def test_coco_captions_are_joined_per_image(tmp_path):
    coco = {
        "images": [{"id": 5, "file_name": "000000000005.jpg"}, {"id": 9, "file_name": "000000000009.jpg"}],
        "annotations": [
            {"image_id": 5, "caption": "A dog."},
            {"image_id": 9, "caption": "A cat."},
            {"image_id": 5, "caption": "A brown dog runs. "},
        ],
    }
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps(coco))
    caps = load_captions(path)
    assert [(c.id, c.file_name, c.caption) for c in caps] == [
        ("5", "000000000005.jpg", "A dog. A brown dog runs."),
        ("9", "000000000009.jpg", "A cat."),
    ]
    coco["annotations"].append({"image_id": 77, "caption": "x"})
    path.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"annotations\[3\]: image_id 77 is not in 'images'"):
        load_captions(path)


def test_published_alias_script_runs(tmp_path, replies):
    out = tmp_path / "train.json"
    r = subprocess.run(
        [
            sys.executable,
            "scripts/generate_annoations.py",
            "--input-path",
            str(replies),
            "--output-path",
            str(out),
            "--filter",
            "--complement",
            "--max_num_images",
            "3",
            "--alpaca-ratio",
            "0.5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "parsed 78 of 78 lines" in r.stdout
    assert json.loads(out.read_text())
