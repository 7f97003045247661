"""Small file helpers shared by the data modules: JSON/JSONL reading with clear errors, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DataError",
    "read_json",
    "read_jsonl",
    "read_records",
    "write_json_atomic",
    "write_json_set",
    "write_jsonl_atomic",
]


class DataError(ValueError):
    """Bad input data; the message names the file, the line or record, and the field."""


def _check_file(path: Path) -> None:
    """A readable regular file, or a ``DataError`` that says what it is instead."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")


def read_json(path: str | Path) -> Any:
    """Load a JSON file; errors name the file, line and column (and say "is empty" for an empty file)."""
    path = Path(path)
    _check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            raise DataError(f"{path}: is empty (expected JSON)")
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_jsonl(path: str | Path, allow_partial_last: bool = False) -> list[dict]:
    """Load a JSONL file (one object per line; blank lines ignored).

    Args:
        path: the file.
        allow_partial_last: ignore a last line that is not valid JSON and has no trailing newline
            (what a killed writer leaves behind).
    """
    path = Path(path)
    _check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if allow_partial_last and i == len(lines):
                break
            raise DataError(f"{path}:{i}: invalid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
        out.append(obj)
    return out


def read_records(path: str | Path) -> list[dict]:
    """A list of objects from a ``.jsonl`` file or a JSON list file.

    Raises:
        DataError: no such file, a directory, an empty file, invalid JSON, or an item that is not an object.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        _check_file(path)
        if path.stat().st_size == 0 or not path.read_bytes().strip():
            raise DataError(f"{path}: is empty (expected one JSON object per line)")
        return read_jsonl(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise DataError(f"{path}: record {i} is {type(item).__name__}, expected an object")
    return data


def _stage(path: Path, write) -> Path:
    """Write a temporary file next to ``path`` (fsynced, usual permissions); the caller renames it."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _atomic_write(path: Path, write) -> None:
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any, indent: int | None = None) -> None:
    """Write JSON through a temporary file and ``os.replace`` (a crash never leaves half a file)."""
    _atomic_write(Path(path), lambda f: json.dump(data, f, ensure_ascii=False, indent=indent))


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> None:
    """Write JSONL atomically (one object per line)."""

    def write(f):
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    _atomic_write(Path(path), write)


def write_json_set(files: Sequence[tuple[str | Path, Any, int | None]]) -> None:
    """Write several JSON files as one unit: all of them are replaced, or none is.

    Every file is first written to a temporary file beside its target; only when all are written are
    they renamed into place. If a rename fails, the files already replaced are restored from
    hard-link backups (new files are removed), so a failure at any step leaves the old set as it was.

    Args:
        files: ``(path, data, indent)`` triples.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, indent in files:
            path = Path(path)
            staged.append(
                (path, _stage(path, lambda f, d=data, i=indent: json.dump(d, f, ensure_ascii=False, indent=i)))
            )
    except BaseException:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    backups: list[tuple[Path, Path | None]] = []  # (target, backup of its old content or None if new)
    try:
        for path, tmp in staged:
            backup = None
            if path.exists():
                backup = path.with_name(f".{path.name}.{os.getpid()}.bak")
                backup.unlink(missing_ok=True)
                try:
                    os.link(path, backup)
                except OSError:  # no hard links on this filesystem
                    shutil.copy2(path, backup)
            backups.append((path, backup))
            os.replace(tmp, path)
    except BaseException:
        for path, backup in reversed(backups):
            if backup is not None:
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    for _, backup in backups:
        if backup is not None:
            backup.unlink(missing_ok=True)
