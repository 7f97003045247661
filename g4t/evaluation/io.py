"""Reading and writing annotation / prediction files, with errors that name the file, item and field."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "EvalInputError",
    "atomic_write_json",
    "chunk_bounds",
    "chunk_path",
    "load_annotations",
    "load_json",
    "load_predictions",
]


class EvalInputError(ValueError):
    """A bad input file; the message names the file, the item index and the field."""


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing file, a directory, an empty file or invalid JSON raises ``EvalInputError``."""
    path = Path(path)
    if path.is_dir():
        raise EvalInputError(f"{path}: is a directory, expected a JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EvalInputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EvalInputError(f"{path}: cannot read: {e}") from None
    if not text.strip():
        raise EvalInputError(f"{path}: is empty (expected a JSON list)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise EvalInputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def _check_list(path: Path, data: Any, what: str) -> list:
    if not isinstance(data, list):
        raise EvalInputError(f"{path}: expected a JSON list of {what} objects, got {type(data).__name__}")
    return data


def _check_id(path: Path, i: int, item: Any) -> Any:
    if not isinstance(item, dict):
        raise EvalInputError(f"{path}: item [{i}]: expected an object, got {type(item).__name__}")
    if "id" not in item:
        raise EvalInputError(f"{path}: item [{i}]: missing field 'id'")
    if not isinstance(item["id"], (int, str)) or isinstance(item["id"], bool):
        raise EvalInputError(f"{path}: item [{i}]: field 'id' must be an integer or a string, got {item['id']!r}")
    return item["id"]


def load_annotations(path: str | Path, require_output: bool = True) -> list[dict]:
    """Load a GPT4Tools annotation file (``instruction``, ``output``, unique ``id``; other fields kept).

    Args:
        path: ``gpt4tools_val_seen.json``-style file.
        require_output: also require a string ``output`` (the GT); inference only needs ``instruction``.

    Raises:
        EvalInputError: naming the file, the item index and the field.
    """
    path = Path(path)
    data = _check_list(path, load_json(path), '{"id", "instruction", "output"}')
    fields = ("instruction", "output") if require_output else ("instruction",)
    for i, item in enumerate(data):
        _check_id(path, i, item)
        for name in fields:
            if name not in item:
                raise EvalInputError(f"{path}: item [{i}] (id {item['id']!r}): missing field {name!r}")
            if not isinstance(item[name], str):
                raise EvalInputError(
                    f"{path}: item [{i}] (id {item['id']!r}): field {name!r} must be a string, "
                    f"got {type(item[name]).__name__}"
                )
    return data


def load_predictions(path: str | Path) -> list[dict]:
    """Load a ``[{"id", "output"}]`` prediction file (``output`` a string or a list whose first item is one).

    Raises:
        EvalInputError: naming the file, the item index and the field.
    """
    path = Path(path)
    data = _check_list(path, load_json(path), '{"id", "output"}')
    for i, item in enumerate(data):
        _check_id(path, i, item)
        if "output" not in item:
            raise EvalInputError(f"{path}: item [{i}] (id {item['id']!r}): missing field 'output'")
        out = item["output"]
        ok = isinstance(out, str) or (isinstance(out, list) and out and isinstance(out[0], str))
        if not ok:
            raise EvalInputError(
                f"{path}: item [{i}] (id {item['id']!r}): field 'output' must be a string "
                f"(or a list whose first element is a string), got {type(out).__name__}"
            )
    return data


def atomic_write_json(path: str | Path, data: Any, indent: int | None = None) -> None:
    """Write JSON to a temporary file in the same folder, fsync it, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
