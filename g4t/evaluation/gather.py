"""Gather chunk files ``{save_name}_{idx}.json`` for any number of chunks, reporting what is wrong."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from g4t.data.io import DataError
from g4t.evaluation.io import chunk_path, load_predictions

__all__ = ["Gathered", "gather_chunks"]


@dataclass
class Gathered:
    """Predictions gathered from chunk files.

    Attributes:
        predictions: one record per id (the last one wins, chunk order 0..N-1, as published).
        files: the chunk files read, in order.
        duplicate_ids: ids that occurred more than once (published: dropped silently).
        conflicting_ids: duplicated ids whose outputs differ.
    """

    predictions: list[dict]
    files: list[Path] = field(default_factory=list)
    duplicate_ids: list = field(default_factory=list)
    conflicting_ids: list = field(default_factory=list)


def gather_chunks(save_path: str | Path, save_name: str, num_chunks: int, allow_missing: bool = False) -> Gathered:
    """Read ``{save_path}/{save_name}/{save_name}_{0..num_chunks-1}.json`` and deduplicate by id.

    Every chunk index is read (the published glob ``_[0-N].json`` missed chunks >= 10).

    Args:
        save_path: root output folder.
        save_name: run name.
        num_chunks: number of chunks written by inference.
        allow_missing: skip missing chunk files instead of failing.

    Raises:
        DataError: missing chunk files (listed) or a malformed one (file, item, field).
    """
    paths = [chunk_path(save_path, save_name, i) for i in range(num_chunks)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing and not allow_missing:
        raise DataError(
            f"{len(missing)} of {num_chunks} chunk files are missing: {', '.join(missing)}. "
            "Did an inference process fail? Re-run it with --resume, or pass --allow_missing_chunks."
        )
    merged: dict = {}
    counts: Counter = Counter()
    conflicting = set()
    files = []
    for p in paths:
        if not p.is_file():
            continue
        files.append(p)
        for item in load_predictions(p):
            key = item["id"]
            counts[key] += 1
            if key in merged and merged[key]["output"] != item["output"]:
                conflicting.add(key)
            merged[key] = item
    dups = [k for k, c in counts.items() if c > 1]
    return Gathered(list(merged.values()), files, dups, [k for k in dups if k in conflicting])
