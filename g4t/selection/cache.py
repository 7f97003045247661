"""On-disk cache of per-sample scores, keyed by sample hash and indicator configuration.

One JSON-lines file per (indicator, config): ``{cache_dir}/{name}-{config_hash}.jsonl`` holding
``{"h": sample_hash, "v": value}`` lines. New scores are appended as they are computed (per batch for
local models, per answer for API scorers), so an interrupted run loses at most one batch or the
requests in flight, and a rerun only scores what is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["ScoreCache", "config_hash"]


def config_hash(config: dict) -> str:
    """Short stable hash of a JSON-serialisable configuration."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


class ScoreCache:
    """Scores of one indicator configuration; ``None`` as directory disables caching.

    Args:
        cache_dir: folder of the cache files (created on first write), or None.
        name: indicator name (part of the file name).
        config: everything that changes the score (model id, prompt, scale...).
    """

    def __init__(self, cache_dir: str | Path | None, name: str, config: dict) -> None:
        self.path = Path(cache_dir) / f"{name}-{config_hash(config)}.jsonl" if cache_dir else None
        self.values: dict[str, float] = {}
        if self.path and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError:  # a torn last line from an interrupted run
                        continue
                    self.values[item["h"]] = float("nan") if item["v"] is None else float(item["v"])

    def _append(self, items: dict[str, float]) -> None:
        if not self.path or not items:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for h, v in items.items():
                f.write(json.dumps({"h": h, "v": None if math.isnan(v) else v}) + "\n")

    def get_or_compute(
        self, hashes: Sequence[str], items: Sequence, compute: Callable[[list], list[float]], batch_size: int = 64
    ) -> list[float]:
        """Return one value per item, calling ``compute`` (in batches) only for uncached hashes."""
        todo = [i for i, h in enumerate(hashes) if h not in self.values]
        seen: set[str] = set()
        todo = [i for i in todo if not (hashes[i] in seen or seen.add(hashes[i]))]  # duplicates once
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            values = compute([items[i] for i in chunk])
            if len(values) != len(chunk):
                raise RuntimeError(f"indicator returned {len(values)} scores for {len(chunk)} samples")
            new = {hashes[i]: float(v) for i, v in zip(chunk, values, strict=True)}
            self.values.update(new)
            self._append(new)
        return [self.values[h] for h in hashes]

    def get_or_stream(
        self, hashes: Sequence[str], items: Sequence, compute: Callable[[list, Callable[[int, float], None]], None]
    ) -> list[float]:
        """Like ``get_or_compute`` for a scorer that reports each value as it finishes (API calls).

        ``compute(todo_items, on_value)`` calls ``on_value(j, value)`` (from any thread) for every item it
        scored; each value is appended to the cache at once, so an interruption loses only the requests
        in flight. Items it reports no value for (failed requests) come back as NaN, uncached: a rerun
        asks for them again.
        """
        todo = [i for i, h in enumerate(hashes) if h not in self.values]
        seen: set[str] = set()
        todo = [i for i in todo if not (hashes[i] in seen or seen.add(hashes[i]))]
        lock = threading.Lock()

        def on_value(j: int, value: float) -> None:
            new = {hashes[todo[j]]: float(value)}
            with lock:
                self.values.update(new)
                self._append(new)

        if todo:
            compute([items[i] for i in todo], on_value)
        return [self.values.get(h, math.nan) for h in hashes]
