"""generate_annotations.py under bad inputs: every registered tool parses by default, zero records is an
error that leaves the outputs untouched, the output set is replaced as a whole, and errors are one line
with exit status 2 (the convention of every CLI here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from g4t.data import io as data_io
from g4t.data.annotate import AnnotateConfig, main, run
from g4t.data.io import DataError, write_json_set

REPO = Path(__file__).resolve().parent.parent
EFE = REPO / "tests" / "assets" / "efe_replies.jsonl"


def _cfg(tmp_path: Path, input_path, **kw) -> AnnotateConfig:
    return AnnotateConfig(input_path=str(input_path), output_path=str(tmp_path / "train.json"), **kw)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def previous_run(tmp_path):
    """A folder holding the outputs of an earlier successful run (train, val, test, report)."""
    run(_cfg(tmp_path, EFE, complement=True, val_ratio=0.2, test_ratio=0.2))
    names = {"train.json", "train_val_seen.json", "train_test_unseen.json", "train.report.json"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    return _snapshot(tmp_path)


def test_efe_records_parse_with_the_published_command(tmp_path):
    # EFE's teacher records name "Edit Image Using Text", which is registered but not one of the
    # published 26 teacher tools; the published command (no --tools) must keep every one.
    out = tmp_path / "annotations_path.json"
    proc = subprocess.run(
        [
            sys.executable, "scripts/generate_annoations.py", "--input-path", str(EFE), "--output-path", str(out),
            "--filter", "--complement",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "parsed 8 of 8 lines; skipped: {}" in proc.stdout
    report = json.loads(out.with_name("annotations_path.report.json").read_text())
    assert report["parse"]["parsed"] == 8 and report["dedup"]["kept"] == 8
    train = json.loads(out.read_text())
    calls = [r["output"] for r in train if "Action: Edit Image Using Text" in r["output"]]
    assert len(calls) == 8 and len(train) == 16  # first step + final answer per sample
    inputs = {c.split("Action Input: ", 1)[1].split(", ", 1)[1].split("\n")[0] for c in calls}
    assert 'Let the sign say "NO"' in inputs and "Put the man's umbrella in his left hand" in inputs
    # the file name of the record never leaks into the action input: the prompt's image name is used
    assert not any("-input.png" in c or "example.jpg" in c for c in calls)


def test_used_tools_join_the_offered_pool_like_tools_flag(tmp_path):
    # default == --tools "Edit Image Using Text": same bytes
    run(_cfg(tmp_path / "a", EFE, complement=True))
    run(_cfg(tmp_path / "b", EFE, complement=True, tools=["Edit Image Using Text"]))
    assert (tmp_path / "a" / "train.json").read_bytes() == (tmp_path / "b" / "train.json").read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "holds no records; nothing written"),
        (
            json.dumps([{"file_name": "a.jpg", "caption": "c", "instructions": "just chatting, no call"}]),
            "no instruction parsed from 1 reply line(s) (skipped: 1 no [tool, arguments] call); nothing written",
        ),
        (
            json.dumps([{"file_name": "a.jpg", "caption": "c", "instructions": "do it [No Such Tool, example.jpg]"}]),
            "1 unknown tool name",
        ),
    ],
)
def test_zero_records_is_an_error_and_outputs_are_untouched(tmp_path, previous_run, content, message, capsys):
    bad = tmp_path / "in.json"
    bad.write_text(content)
    before = _snapshot(tmp_path)
    assert main(_cfg(tmp_path, bad, complement=True)) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("generate_annotations.py: error: ") and err.count("\n") == 1
    assert _snapshot(tmp_path) == before


def test_evaluation_only_build_leaves_the_training_file_alone(tmp_path, previous_run):
    one = tmp_path / "one.jsonl"
    one.write_text(EFE.read_text().splitlines()[0] + "\n")
    before = _snapshot(tmp_path)
    report = run(_cfg(tmp_path, one, unseen_tools=["Edit Image Using Text"], test_ratio=0.5))
    after = _snapshot(tmp_path)
    assert "train" not in report["outputs"] and after["train.json"] == before["train.json"]
    assert after["train_test_unseen.json"] != before["train_test_unseen.json"]  # the test split was rebuilt


def test_no_record_in_any_split_is_an_error(tmp_path, previous_run):
    one = tmp_path / "one.jsonl"
    one.write_text(EFE.read_text().splitlines()[0] + "\n")
    before = _snapshot(tmp_path)
    with pytest.raises(DataError, match="no training record left after the split"):
        run(_cfg(tmp_path, one, unseen_tools=["Edit Image Using Text"]))
    assert _snapshot(tmp_path) == before


def test_clear_messages_for_directories_and_empty_files(tmp_path, capsys):
    folder = tmp_path / "replies.json"
    folder.mkdir()
    with pytest.raises(DataError, match=r"replies.json: is a directory, expected a file"):
        run(_cfg(tmp_path, folder))
    for name, text in (("empty.json", ""), ("blank.jsonl", "\n  \n"), ("empty.jsonl", "")):
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=rf"{name}: is empty"):
            run(_cfg(tmp_path, tmp_path / name))
    with pytest.raises(DataError, match="no such file"):
        run(_cfg(tmp_path, tmp_path / "missing.json"))
    assert main(_cfg(tmp_path, tmp_path / "empty.json")) == 2
    assert (
        capsys.readouterr().err
        == f"generate_annotations.py: error: {tmp_path / 'empty.json'}: is empty (expected JSON)\n"
    )


def test_an_output_that_is_a_directory_replaces_nothing(tmp_path, previous_run):
    (tmp_path / "tests_dir").mkdir()
    before = _snapshot(tmp_path)
    with pytest.raises(DataError, match="tests_dir: is a directory, cannot write a file there"):
        run(_cfg(tmp_path, EFE, complement=True, test_ratio=0.2, test_path=str(tmp_path / "tests_dir")))
    assert _snapshot(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".bak"))]


def test_write_set_is_all_or_nothing_when_a_rename_fails(tmp_path, monkeypatch):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text('"old a"')
    b.write_text('"old b"')
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the third rename (c.json, a new file) fails
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(data_io.os, "replace", flaky)
    with pytest.raises(OSError, match="No space left"):
        write_json_set([(a, "new a", None), (b, "new b", None), (c, "new c", None)])
    monkeypatch.setattr(data_io.os, "replace", real_replace)
    assert a.read_text() == '"old a"' and b.read_text() == '"old b"' and not c.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]  # no temporary or backup left
    write_json_set([(a, "new a", None), (c, [1], 2)])
    assert json.loads(a.read_text()) == "new a" and json.loads(c.read_text()) == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "c.json"]


def test_stale_split_files_are_reported_not_silently_kept(tmp_path, previous_run, capsys):
    assert main(_cfg(tmp_path, EFE, complement=True)) == 0  # no val/test split this time
    out = capsys.readouterr().out
    assert "train_val_seen.json is from an earlier run" in out and "train_test_unseen.json is from" in out
    report = json.loads((tmp_path / "train.report.json").read_text())
    assert len(report["stale_outputs"]) == 2


def test_lora_finetune_user_errors_exit_2(tmp_path, capsys):
    import lora_finetune

    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"instruction": "x", "input": "", "output": "y"}]))
    code = lora_finetune.main(
        ["--base_model", str(tmp_path / "nope"), "--data_path", str(data), "--output_dir", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "lora_finetune.py: error: " in err and "Traceback" not in err
