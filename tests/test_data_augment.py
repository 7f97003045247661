"""``--rename_tools`` (``g4t.data.augment.rename_tools``): a share of the tools in training prompts get a
made-up name everywhere the record holds it; descriptions, sessions' shared prompts and val/test stay."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from g4t.data.annotate import AnnotateConfig, run
from g4t.data.augment import ALIAS_WORDS, rename_tools
from g4t.data.catalog import registered_tools

NEW_INPUT = "\nNew input: "
LIST = re.compile(r"should be one of \[([^\]\n]*)\]")
TOOL_LINE = re.compile(r"^> ([^:\n]+): (.*)$", re.M)


def _build(out: Path, replies: Path, rate: float) -> list[dict]:
    cfg = AnnotateConfig(
        input_path=str(replies),
        output_path=str(out / "train.json"),
        complement=True,
        session_prompts=True,
        val_ratio=0.2,
        test_ratio=0.2,
        rename_tools=rate,
        seed=3,
    )
    report = run(cfg)
    assert ("renamed_records" in report) == bool(rate)
    return [json.loads((out / f).read_text()) for f in ("train.json", "train_val_seen.json", "train_test_unseen.json")]


def _tools(instruction: str) -> list[tuple[str, str]]:
    return TOOL_LINE.findall(instruction.split(NEW_INPUT)[0])


def _called(record: dict) -> list[str]:
    text = record["instruction"].split(NEW_INPUT, 1)[1] + record["output"]
    return re.findall(r"^Action: (.+)$", text, re.M)


def test_renamed_records_keep_descriptions_sessions_and_eval_splits(tmp_path, replies):
    (tmp_path / "plain").mkdir()
    (tmp_path / "renamed").mkdir()
    plain, plain_val, plain_test = _build(tmp_path / "plain", replies, 0.0)
    renamed, val, test = _build(tmp_path / "renamed", replies, 0.5)
    assert val == plain_val and test == plain_test  # evaluation keeps the published names
    assert len(renamed) == len(plain)
    real = set(registered_tools())
    aliases = {f"{a} {b}" for a in ALIAS_WORDS[0] for b in ALIAS_WORDS[1]}
    n_renamed_calls = 0
    for old, new in zip(plain, renamed, strict=True):
        old_tools, new_tools = _tools(old["instruction"]), _tools(new["instruction"])
        # same descriptions in the same order; each name kept or replaced by an alias
        assert [d for _, d in old_tools] == [d for _, d in new_tools]
        mapping = {o: n for (o, _), (n, _) in zip(old_tools, new_tools, strict=True)}
        assert all(n == o or (n in aliases and n not in real) for o, n in mapping.items())
        assert len(set(mapping.values())) == len(mapping)
        # the tool list and every called tool follow the same names
        assert LIST.search(new["instruction"])[1].split(", ") == [n for n, _ in new_tools]
        assert _called(new) == [mapping[t] for t in _called(old)]
        # nothing else changed: putting the published names back gives the record as built
        back = {k: new[k] for k in ("instruction", "output")}
        for o, n in mapping.items():
            back = {k: v.replace(n, o) if n != o else v for k, v in back.items()}
        assert back == {k: old[k] for k in ("instruction", "output")}
        n_renamed_calls += any(mapping[t] != t for t in _called(old)[-1:])
    assert n_renamed_calls > 0
    # a session keeps one shared prompt: as many distinct prompts as before
    prefixes = {r["instruction"].split(NEW_INPUT)[0] for r in plain}
    assert len({r["instruction"].split(NEW_INPUT)[0] for r in renamed}) == len(prefixes)


def _record(names: list[str], called: str) -> dict:
    tools = "\n".join(f"> {n}: useful when you want to do {n.lower()}." for n in names)
    prompt = f"TOOLS:\n{tools}\nAction: the action to take, should be one of [{', '.join(names)}]\n"
    return {
        "instruction": prompt + "\nNew input: find it\nThought: Do I need to use a tool? Yes\n"
        f"Action: {called}\nAction Input: a.png\nObservation: b.png\n",
        "output": f"Thought: Do I need to use a tool? Yes\nAction: {called}\nAction Input: b.png\nObservation:\n",
        "Action": [called],
    }


def test_names_inside_other_names_are_renamed_whole():
    """ "Detection" is part of "Edge Detection On Image": each is renamed as a whole name, never as text."""
    rec = _record(["Detection", "Edge Detection On Image"], "Edge Detection On Image")
    out = rename_tools([rec], 1.0, seed=0)[0]
    (det, _), (edge, _) = _tools(out["instruction"])
    assert "Detection" not in (det, edge) and det != edge
    assert _called(out) == [edge, edge] and out["Action"] == [edge]
    assert "Detection" not in out["instruction"] + out["output"]  # no half-renamed leftover
    assert rec["Action"] == ["Edge Detection On Image"]  # the input record is not modified


def test_rate_zero_is_identity_and_seed_reproduces():
    recs = [_record(["Get Photo Description", "Detection"], "Detection")] * 3
    assert rename_tools(recs, 0.0) == recs
    assert rename_tools(recs, 0.7, seed=1) == rename_tools(recs, 0.7, seed=1)
    with pytest.raises(ValueError, match="rename rate"):
        rename_tools(recs, 1.5)


def test_config_refuses_rename_without_complement_or_out_of_range(tmp_path, replies):
    base = dict(input_path=str(replies), output_path=str(tmp_path / "t.json"))
    with pytest.raises(ValueError, match="--rename_tools needs --complement"):
        AnnotateConfig(**base, rename_tools=0.3)
    with pytest.raises(ValueError, match="--rename_tools must be in"):
        AnnotateConfig(**base, complement=True, rename_tools=-0.1)
