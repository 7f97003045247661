"""Load and validate instruction-tuning records, and split off a validation set.

The published format is a JSON list of ``{"instruction": str, "input": str, "output": str}`` records
(``gpt4tools_71k.json``); JSON Lines with one record per line is accepted too. Extra fields (``id``,
``Action``, ...) are ignored. Every record is checked before any tokenization, and all problems are
reported at once, naming the record index (and the line for JSONL) and the field.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from g4t.train.config import TrainError

__all__ = ["DataError", "load_records", "split_records", "validate_records"]

REQUIRED_FIELDS = ("instruction", "output")
OPTIONAL_FIELDS = ("input",)
_MAX_REPORTED = 20


class DataError(TrainError, ValueError):
    """The data file cannot be used; the message names the file, the record and the field."""


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def validate_records(items: list, source: str = "data", lines: list[int] | None = None) -> list[dict[str, str]]:
    """Check every record and return normalised ``{"instruction", "input", "output"}`` dicts.

    Args:
        items: parsed JSON values, one per record.
        source: file name used in error messages.
        lines: for JSONL, the 1-based line of each record (reported next to the index).

    Raises:
        DataError: listing up to 20 problems (record index, field, what is wrong) and the total count.
    """
    problems: list[str] = []
    records: list[dict[str, str]] = []
    for i, item in enumerate(items):
        where = f"record {i}" + (f" (line {lines[i]})" if lines else "")
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object with instruction/input/output, got {_type_name(item)}")
            continue
        rec: dict[str, str] = {}
        for name in REQUIRED_FIELDS:
            if name not in item:
                problems.append(f"{where}: field {name!r} is missing")
            elif not isinstance(item[name], str):
                problems.append(f"{where}: field {name!r} must be a string, got {_type_name(item[name])}")
            else:
                rec[name] = item[name]
        value = item.get("input", "")
        if value is None:  # a null input means "no input", as in alpaca-style data
            value = ""
        if not isinstance(value, str):
            problems.append(f"{where}: field 'input' must be a string, got {_type_name(value)}")
        rec["input"] = value if isinstance(value, str) else ""
        if len(rec) == 3:
            records.append({"instruction": rec["instruction"], "input": rec["input"], "output": rec["output"]})
    if problems:
        shown = "\n  ".join(problems[:_MAX_REPORTED])
        more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise DataError(f"{source}: {len(problems)} problem(s) in the records:\n  {shown}{more}")
    if not records:
        raise DataError(f"{source}: no records")
    return records


def _parse_jsonl(text: str, source: str) -> tuple[list, list[int]]:
    items, lines = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{source}: line {lineno} is not valid JSON ({e.msg} at column {e.colno})") from None
        lines.append(lineno)
    return items, lines


def load_records(path: str | Path) -> list[dict[str, str]]:
    """Load a ``.json`` list of records or a ``.jsonl`` file and validate every record.

    A ``.json`` file that holds one object per line (what ``datasets.load_dataset("json")`` accepts)
    is read as JSON Lines.

    Raises:
        DataError: missing/unreadable file, invalid JSON (with line and column), wrong top-level type,
            or invalid records (see ``validate_records``).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: data file not found (pass a .json or .jsonl file with --data_path)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{source}: cannot read the file ({e})") from None
    if not text.strip():
        raise DataError(f"{source}: the file is empty")
    lines = None
    if path.suffix == ".jsonl":
        items, lines = _parse_jsonl(text, source)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            if e.msg == "Extra data" and text.lstrip().startswith("{"):
                items, lines = _parse_jsonl(text, source)
                data = None
            else:
                raise DataError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        if lines is None:
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise DataError(f"{source}: expected a JSON list of records, got a {_type_name(data)}")
            items = data
    return validate_records(items, source, lines)


def split_records(
    records: list[dict[str, str]], val_set_size: int, seed: int = 42
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Shuffle and hold out ``val_set_size`` records for validation (published: 2000, seed 42).

    Returns:
        ``(train, val)``; with ``val_set_size == 0`` all records train, in file order (the trainer's
        sampler shuffles them each epoch).

    Raises:
        DataError: when the validation set would leave nothing to train on.
    """
    if val_set_size <= 0:
        return list(records), []
    if val_set_size >= len(records):
        raise DataError(
            f"--val_set_size {val_set_size} leaves no training data ({len(records)} records); "
            "pass a smaller --val_set_size, or 0 to train on everything"
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    val = [records[i] for i in order[:val_set_size]]
    train = [records[i] for i in order[val_set_size:]]
    return train, val
