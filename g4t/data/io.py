"""The one home of the project's file helpers: ``DataError``, JSON / JSONL / record readers, atomic writers.

Every module that reads a data file (annotations, predictions, training records, captions, teacher
replies) or writes a result goes through here, so errors read the same everywhere and name the file,
the line or record, and the field; and every result file is written atomically with the usual
permissions (``0666`` minus the umask, like ``open(..., "w")``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DataError",
    "JsonlAppender",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
    "read_jsonl",
    "read_records",
    "type_name",
    "write_json_set",
]

_MAX_REPORTED = 20


class DataError(ValueError):
    """Bad input data; the message names the file, the line or record, and the field."""


def type_name(value: object) -> str:
    """The JSON-ish name of a value's type for error messages (``null`` for None, else the Python name)."""
    return "null" if value is None else type(value).__name__


def _read_text(path: Path) -> str:
    """The file's text, or a ``DataError`` saying why not (missing, a directory, not UTF-8, unreadable)."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _loads(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def _parse_lines(path: Path, text: str, allow_partial_last: bool = False) -> tuple[list, list[int]]:
    """JSON values of the non-blank lines of a JSON Lines text, and their 1-based line numbers."""
    lines = text.split("\n")
    items, numbers = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as e:
            if allow_partial_last and i == len(lines):  # a killed writer's cut last line
                break
            raise DataError(f"{path}:{i}: invalid JSON ({e.msg} at column {e.colno})") from None
        numbers.append(i)
    return items, numbers


def read_json(path: str | Path) -> Any:
    """Load a JSON file; errors name the file, line and column (and say "is empty" for an empty file)."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: is empty (expected JSON)")
    return _loads(path, text)


def read_jsonl(path: str | Path, allow_partial_last: bool = False) -> list[dict]:
    """Load a JSONL file (one object per line; blank lines ignored).

    Args:
        path: the file.
        allow_partial_last: ignore a last line that is not valid JSON and has no trailing newline
            (what a killed writer leaves behind).

    Raises:
        DataError: ``path:line: ...`` for a line that is not valid JSON or not an object.
    """
    path = Path(path)
    items, numbers = _parse_lines(path, _read_text(path), allow_partial_last)
    for obj, i in zip(items, numbers, strict=True):
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{i}: expected a JSON object, got {type_name(obj)}")
    return items


FieldType = type | tuple[type, ...]
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}


def _type_words(types: tuple[type, ...]) -> str:
    return " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _where(i: int, item: dict | None, line: int | None) -> str:
    notes = [f"line {line}"] if line is not None else []
    key = item.get("id") if isinstance(item, dict) else None
    if isinstance(key, (int, str)) and not isinstance(key, bool):
        notes.append(f"id {key!r}")
    return f"record {i}" + (f" ({', '.join(notes)})" if notes else "")


def read_records(
    path: str | Path, required: Mapping[str, FieldType] | None = None, optional: Mapping[str, FieldType] | None = None
) -> list[dict]:
    """The records (JSON objects) of a data file, every one checked.

    Accepted layouts: a JSON list (the published annotation / prediction / training files), a
    ``.jsonl`` file, JSON Lines in a ``.json`` file (what ``datasets.load_dataset("json")`` accepts),
    and ``{"data": [...]}``. Fields not named are kept unchecked.

    Args:
        path: the file.
        required: ``{field: type or types}`` every record must have (``bool`` never passes for ``int``).
        optional: ``{field: type or types}`` checked when present and not null.

    Raises:
        DataError: a file-level problem (``path: no such file``, ``is empty``, ``invalid JSON at line L,
            column C``, ``path:line: invalid JSON`` for JSONL, not a list), or the record problems --
            one line ``path: record I (line L, id X): missing field 'f'`` / ``field 'f' must be a
            string, got int`` / ``expected an object, got str``; several: all listed (up to 20).
    """
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        expected = "one JSON object per line" if path.suffix == ".jsonl" else "JSON"
        raise DataError(f"{path}: is empty (expected {expected})")
    numbers: list[int] | None = None
    if path.suffix == ".jsonl":
        items, numbers = _parse_lines(path, text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            if e.msg != "Extra data" or not text.lstrip().startswith("{"):
                raise DataError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
            items, numbers = _parse_lines(path, text)  # JSON Lines named .json
        else:
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data = data["data"]
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of records, got a {type_name(data)}")
            items = data
    checks = [(name, t if isinstance(t, tuple) else (t,), True) for name, t in (required or {}).items()]
    checks += [(name, t if isinstance(t, tuple) else (t,), False) for name, t in (optional or {}).items()]
    problems: list[str] = []
    for i, item in enumerate(items):
        line = numbers[i] if numbers else None
        if not isinstance(item, dict):
            problems.append(f"{_where(i, None, line)}: expected an object, got {type_name(item)}")
            continue
        for name, types, needed in checks:
            value = item.get(name)
            if type(value) in types:  # the usual case, checked first: JSON values have exact builtin types
                continue
            if value is None and (not needed or name not in item):
                if needed:
                    problems.append(f"{_where(i, item, line)}: missing field {name!r}")
            elif not _has_type(value, types):
                problems.append(
                    f"{_where(i, item, line)}: field {name!r} must be {_type_words(types)}, got {type_name(value)}"
                )
    if len(problems) == 1:
        raise DataError(f"{path}: {problems[0]}")
    if problems:
        shown = "\n  ".join(problems[:_MAX_REPORTED])
        more = f"\n  ... and {len(problems) - _MAX_REPORTED} more" if len(problems) > _MAX_REPORTED else ""
        raise DataError(f"{path}: {len(problems)} problem(s) in the records:\n  {shown}{more}")
    return items


# --------------------------------------------------------------------------------------- writing


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (``os.umask`` is process-wide)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stage(path: Path, write: Callable) -> Path:
    """Write a temporary file next to ``path`` (fsynced, usual permissions); the caller renames it."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory, cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600: give the file the permissions open() gives
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _json_writer(data: Any, indent: int | None) -> Callable:
    # One dumps + one write: several times faster than json.dump's chunked writes on large lists.
    return lambda f: f.write(json.dumps(data, ensure_ascii=False, indent=indent))


def _replace(path: Path, write: Callable) -> None:
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, data: Any, indent: int | None = None) -> None:
    """Write JSON through a temporary file, fsync and ``os.replace``: a crash never leaves half a file.

    Args:
        path: the target (its folder is created); it gets mode ``0666 & ~umask``, as ``open`` gives.
        data: any JSON-serialisable value (non-ASCII text is written as UTF-8).
        indent: ``json`` indentation (None: one line).

    Raises:
        DataError: ``path`` is a directory.
    """
    _replace(Path(path), _json_writer(data, indent))


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (temporary file, fsync, ``os.replace``; mode ``0666 & ~umask``)."""
    _replace(Path(path), lambda f: f.write(text))


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
            staged.append((path, _stage(path, _json_writer(data, indent))))
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


class JsonlAppender:
    """Thread-safe JSON Lines appender: one ``write`` of a whole line, flushed, per record (the
    persist-as-it-arrives log of the long jobs).

    Flushed to the OS at once, so a killed process loses nothing it reported; no ``fsync`` per line
    (that would serialise the workers on the disk for protection against power loss only). After
    ``close`` (an interrupted run) later records are dropped.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115  (open until close)
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if self._f.closed:  # interrupted: what was written is final
                return
            self._f.write(line)
            self._f.flush()

    def close(self) -> None:
        with self._lock:  # waits for a line being written: the file never ends in a cut line
            self._f.close()
