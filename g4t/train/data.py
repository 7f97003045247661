"""Load and validate instruction-tuning records, and split off a validation set.

The published format is a JSON list of ``{"instruction": str, "input": str, "output": str}`` records
(``gpt4tools_71k.json``); JSON Lines (``.jsonl``, or one object per line in a ``.json``) and
``{"data": [...]}`` are accepted too. Extra fields (``id``, ``Action``, ...) are ignored. Reading and
checking is ``g4t.data.io.read_records``: every record is checked before any tokenization, and all
problems are reported at once, naming the record index (and the line for JSONL) and the field.
"""

from __future__ import annotations

import random
from pathlib import Path

from g4t.data.io import DataError, read_records

__all__ = ["load_records", "split_records"]


def load_records(path: str | Path) -> list[dict[str, str]]:
    """Load a training data file and return normalised ``{"instruction", "input", "output"}`` dicts.

    A missing or null ``input`` means "no input" (alpaca-style data).

    Raises:
        DataError: a missing / empty / unreadable file, invalid JSON (with line and column), a wrong
            top-level type, invalid records (up to 20 listed: index, line, field), or no record at all.
    """
    items = read_records(path, {"instruction": str, "output": str}, optional={"input": str})
    if not items:
        raise DataError(f"{path}: no records")
    return [{"instruction": r["instruction"], "input": r.get("input") or "", "output": r["output"]} for r in items]


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
