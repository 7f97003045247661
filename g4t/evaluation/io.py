"""Annotation and prediction files of the evaluation, and the published chunk layout.

Reading goes through ``g4t.data.io.read_records`` (errors name the file, the record, its id and the
field); writing through ``g4t.data.io.atomic_write_json``.
"""

from __future__ import annotations

import math
from pathlib import Path

from g4t.data.io import DataError, read_records, type_name

__all__ = ["chunk_bounds", "chunk_path", "load_annotations", "load_predictions"]

_ID = (int, str)


def load_annotations(path: str | Path, require_output: bool = True) -> list[dict]:
    """Load a GPT4Tools annotation file (``id``, ``instruction``, ``output``; other fields kept).

    Args:
        path: ``gpt4tools_val_seen.json``-style file.
        require_output: also require a string ``output`` (the GT); inference only needs ``instruction``.

    Raises:
        DataError: naming the file, the record (index and id) and the field.
    """
    fields = {"id": _ID, "instruction": str}
    if require_output:
        fields["output"] = str
    return read_records(path, fields)


def load_predictions(path: str | Path) -> list[dict]:
    """Load a ``[{"id", "output"}]`` prediction file (``output`` a string or a list whose first item is one).

    Raises:
        DataError: naming the file, the record (index and id) and the field.
    """
    records = read_records(path, {"id": _ID, "output": (str, list)})
    for i, item in enumerate(records):
        out = item["output"]
        if isinstance(out, list) and not (out and isinstance(out[0], str)):
            first = type_name(out[0]) if out else "an empty list"
            raise DataError(
                f"{path}: record {i} (id {item['id']!r}): field 'output' must be a string "
                f"(or a list whose first element is a string), got {first}"
            )
    return records


def chunk_path(save_path: str | Path, save_name: str, idx: int) -> Path:
    """``{save_path}/{save_name}/{save_name}_{idx}.json`` (the published layout)."""
    return Path(save_path) / save_name / f"{save_name}_{idx}.json"


def chunk_bounds(n: int, num_chunks: int, chunk_idx: int) -> tuple[int, int]:
    """``[start, end)`` of chunk ``chunk_idx``: published consecutive chunks of ``ceil(n / num_chunks)``.

    A chunk past the end is empty (the published script raised IndexError there).
    """
    if num_chunks < 1:
        raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
    if not 0 <= chunk_idx < num_chunks:
        raise ValueError(f"chunk_idx must be in [0, {num_chunks}), got {chunk_idx}")
    size = math.ceil(n / num_chunks) if n else 0
    start = min(chunk_idx * size, n)
    return start, min(start + size, n)
