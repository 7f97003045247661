"""``g4t.data.io``, the one home of the file helpers: record reading with clear errors, atomic writers."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from g4t.data.io import (
    DataError,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
    read_records,
    write_json_set,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


# --------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writers_give_the_permissions_open_gives(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    atomic_write_text(tmp_path / "a.txt", "hello\n")
    write_json_set([(tmp_path / "b.json", [1], None), (tmp_path / "c.json", [2], 2)])
    with open(tmp_path / "plain", "w") as f:  # what the helpers must match
        f.write("x")
    assert _mode(tmp_path / "plain") == mode
    for name in ("a.json", "a.txt", "b.json", "c.json"):
        assert _mode(tmp_path / name) == mode, name


def test_a_0600_file_left_by_an_old_writer_is_replaced_with_normal_permissions(tmp_path, umask):
    target = tmp_path / "preds.json"
    target.write_text("[]")
    target.chmod(0o600)
    atomic_write_json(target, [{"id": 1, "output": "é"}])
    assert _mode(target) == 0o644
    assert json.loads(target.read_text(encoding="utf-8")) == [{"id": 1, "output": "é"}]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"good": True}, indent=2)
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"good": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    with pytest.raises(DataError, match=r"sub: is a directory, cannot write a file there"):
        (tmp_path / "sub").mkdir()
        atomic_write_text(tmp_path / "sub", "x")


def test_writers_create_the_folder_and_write_utf8(tmp_path):
    atomic_write_text(tmp_path / "a" / "b" / "eval.txt", "Thought Acc: 0.5 ✓\n")
    assert (tmp_path / "a" / "b" / "eval.txt").read_text(encoding="utf-8") == "Thought Acc: 0.5 ✓\n"


# --------------------------------------------------------------------------------------- reading


def test_read_records_accepts_every_layout(tmp_path):
    recs = [{"id": 1, "output": "a"}, {"id": 2, "output": "b"}]
    (tmp_path / "list.json").write_text(json.dumps(recs))
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n\n")
    (tmp_path / "lines.json").write_text("\n".join(json.dumps(r) for r in recs))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": recs}))
    for name in ("list.json", "lines.jsonl", "lines.json", "wrapped.json"):
        assert read_records(tmp_path / name, {"id": int, "output": str}) == recs, name


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        ('[{"id": 1}]', {"id": int, "output": str}, r"r\.json: record 0 \(id 1\): missing field 'output'"),
        ('[{"id": true}]', {"id": (int, str)}, r"record 0: field 'id' must be an integer or a string, got bool"),
        ('[{"id": "a", "x": null}]', {"x": str}, r"record 0 \(id 'a'\): field 'x' must be a string, got null"),
        ("[1]", {}, r"r\.json: record 0: expected an object, got int"),
        ('{"id": 1}', {}, r"r\.json: expected a JSON list of records, got a dict"),
        ('[{"id": 1},\n {"id": 2 "x": 1}]', {}, r"r\.json: invalid JSON at line 2, column 11: Expecting ','"),
        ("", {}, r"r\.json: is empty \(expected JSON\)"),
    ],
)
def test_read_records_errors_name_file_record_and_field(tmp_path, content, fields, message):
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(DataError, match=message):
        read_records(tmp_path / "r.json", fields)


def test_read_records_lists_every_problem_with_its_line(tmp_path):
    lines = [json.dumps({"instruction": "i", "output": "o"})] * 3 + [json.dumps({"instruction": 5})] * 25
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        read_records(tmp_path / "d.jsonl", {"instruction": str, "output": str})
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'd.jsonl'}: 50 problem(s) in the records:\n")
    assert "  record 3 (line 4): field 'instruction' must be a string, got int\n" in msg
    assert "  record 3 (line 4): missing field 'output'\n" in msg
    assert msg.endswith("... and 30 more")


def test_optional_fields_may_be_missing_or_null(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps([{"input": None}, {}, {"input": "x"}, {"input": 3}]))
    with pytest.raises(DataError, match=r"t\.json: record 3: field 'input' must be a string, got int$"):
        read_records(tmp_path / "t.json", optional={"input": str})


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match=r"nope\.json: no such file$"):
        read_records(tmp_path / "nope.json")
    with pytest.raises(DataError, match=r": is a directory, expected a file$"):
        read_json(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'["caf\xe9"]')
    with pytest.raises(DataError, match=r"latin1\.json: not UTF-8 text \(invalid continuation byte at byte 5\)"):
        read_records(tmp_path / "latin1.json")
    (tmp_path / "e.jsonl").write_text("\n \n")
    with pytest.raises(DataError, match=r"e\.jsonl: is empty \(expected one JSON object per line\)"):
        read_records(tmp_path / "e.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{oops\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON \(Expecting property name"):
        read_records(tmp_path / "bad.jsonl")


def test_read_jsonl_tolerates_only_a_cut_last_line_when_asked(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "out')
    assert read_jsonl(path, allow_partial_last=True) == [{"id": 1}, {"id": 2}]
    with pytest.raises(DataError, match=r"log\.jsonl:3: invalid JSON"):
        read_jsonl(path)
    path.write_text('{"id": 1}\n[2]\n')
    with pytest.raises(DataError, match=r"log\.jsonl:2: expected a JSON object, got list"):
        read_jsonl(path)
    path.write_text("")
    assert read_jsonl(path) == []


def test_every_loader_raises_the_one_data_error(tmp_path):
    from g4t.evaluation.io import load_annotations, load_predictions
    from g4t.train.data import load_records

    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": 1, "instruction": 2, "output": "o"}]')
    missing = tmp_path / "missing.json"
    for load, path in (
        (load_annotations, bad),
        (load_records, bad),
        (load_predictions, missing),
        (read_records, missing),
    ):
        with pytest.raises(DataError):
            load(path)
    with pytest.raises(DataError, match=r"record 0 \(id 1\): field 'instruction' must be a string, got int"):
        load_annotations(bad)
