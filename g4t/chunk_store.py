"""The predictions of one chunk on disk: the chunk file, its append-only side log and the never-fewer rule.

``{save_name}_{idx}.json`` (``[{"id", "output"}]`` in annotation order) is rewritten atomically.
Every finished prediction is first appended (and flushed) to ``{save_name}_{idx}.partial.jsonl``, so a
kill -- even ``kill -9`` -- loses only what was in flight; the log is folded into the chunk file when
the chunk file is written, and at the start of the next run. The chunk file is never replaced by one
with fewer predictions than it held when the run started: the new predictions then stay in the log
and are merged (by id) on the next run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from g4t.data.io import DataError, JsonlAppender, atomic_write_json
from g4t.evaluation.io import load_predictions

__all__ = ["ChunkStore"]


class ChunkStore:
    """Finished predictions of one chunk (thread-safe).

    Args:
        path: the chunk file.
        order: ids of the chunk in annotation order (the file keeps that order; other ids are dropped).
        resume: keep the predictions already in ``path`` (a fresh run starts empty, but still never
            replaces the file with fewer predictions).
        save_every: also rewrite the chunk file after this many new predictions.

    Attributes:
        records: ``{id: {"id", "output"}}`` of this run (with ``resume``: and of the file).
        existing: predictions the chunk file held at the start (the floor for rewriting it).
        new: predictions finished by this run.
    """

    def __init__(self, path: Path, order: Sequence, resume: bool = False, save_every: int = 32) -> None:
        self.path = Path(path)
        self.log_path = self.path.with_suffix(".partial.jsonl")
        self.order = list(order)
        self.save_every = save_every
        self.records: dict = {}
        self.new = 0
        self._pending = 0
        self._log = None
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fold_log()
        allowed = set(self.order)
        kept = self._read(allowed)
        if kept is None and resume:
            load_predictions(self.path)  # unreadable: raises DataError naming the file and the fault
        self.existing = len(kept or {})  # a fresh run may replace an unreadable file
        if resume:
            self.records = {i: {"id": i, "output": o} for i, o in kept.items()}

    @property
    def done(self) -> set:
        """Ids with a prediction."""
        return set(self.records)

    def add(self, sample_id, output: str) -> None:
        """Record a finished prediction: appended to the side log at once, the chunk file every ``save_every``."""
        record = {"id": sample_id, "output": output}
        with self._lock:
            self.records[sample_id] = record
            if self._log is None:
                self._log = JsonlAppender(self.log_path)
            self._log.write(record)
            self.new += 1
            self._pending += 1
            if self._pending >= self.save_every and len(self.records) >= self.existing:
                self._write()

    def save(self, meta: dict | None = None) -> bool:
        """Write the chunk file (and ``meta`` beside it) unless that would hold fewer predictions than it had.

        Returns:
            True if the file was written; False if the existing file was kept (a warning says why).
        """
        with self._lock:
            if len(self.records) >= self.existing:
                self._write()
                if meta is not None:
                    atomic_write_json(self.path.with_suffix(".meta.json"), meta, indent=2)
                self._close_log()
                self.log_path.unlink(missing_ok=True)
                return True
            self._close_log()
            if self.new:
                print(
                    f"WARNING: kept the existing {self.path} ({self.existing} predictions): this run finished only "
                    f"{len(self.records)}. Its {self.new} new prediction(s) stay in {self.log_path} and are merged "
                    "into the chunk file (by id) at the start of the next run.",
                    file=sys.stderr,
                )
            else:
                print(
                    f"WARNING: this run finished no prediction; kept the existing {self.path} as it was",
                    file=sys.stderr,
                )
            return False

    # -- internals -------------------------------------------------------------------------------

    def _write(self) -> None:
        atomic_write_json(self.path, [self.records[i] for i in self.order if i in self.records])
        self._pending = 0

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _read(self, allowed: set) -> dict | None:
        """``{id: output}`` of the chunk file ({} if absent, None if unreadable)."""
        if not self.path.is_file():
            return {}
        try:
            return {p["id"]: p["output"] for p in load_predictions(self.path) if p["id"] in allowed}
        except DataError:
            return None

    def _fold_log(self) -> None:
        """Merge a side log left by an interrupted run into the chunk file (by id; the log's entries win)."""
        if not self.log_path.is_file():
            return
        from g4t.data.io import read_jsonl

        allowed = set(self.order)
        leftover = [
            r
            for r in read_jsonl(self.log_path, allow_partial_last=True)
            if isinstance(r, dict) and "id" in r and "output" in r and r["id"] in allowed
        ]
        if leftover:
            merged = self._read(allowed)
            if merged is None:
                load_predictions(self.path)  # raises DataError: never fold into (and so replace) a bad file
            merged.update((r["id"], r["output"]) for r in leftover)
            atomic_write_json(self.path, [{"id": i, "output": merged[i]} for i in self.order if i in merged])
            print(
                f"folded {len(leftover)} finished prediction(s) of an interrupted run into {self.path}",
                file=sys.stderr,
            )
        self.log_path.unlink()
