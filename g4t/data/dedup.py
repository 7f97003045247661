"""Exact and near-duplicate filtering of instructions.

The published ``--filter`` removed only verbatim-identical reply lines (numbering included). Here two
instructions for the same tool are duplicates when their normalised text (lower case, punctuation
and extra spaces removed) is equal, or near-duplicates when the Jaccard similarity of their content
word sets reaches ``threshold``. The text compared is the request plus its non-image arguments.
Near-duplicate search is exact (no sampling): a prefix-filter index over rare words keeps it fast.
The first occurrence is kept, so the result depends only on the input order.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DedupReport", "dedup", "normalize", "words"]

T = TypeVar("T")

_STOP = frozenset(
    "a an the this that these those of in on at to for from with and or is are be please can you "
    "me my it its image picture photo".split()
)


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, whitespace collapsed."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def words(text: str) -> frozenset[str]:
    """Content words of a text (stop words removed, plural ``s`` dropped)."""
    out = set()
    for w in normalize(text).split():
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.add(w)
    return frozenset(out)


@dataclass
class DedupReport:
    """Counts of one dedup run.

    Attributes:
        total: items in.
        exact: removed as exact duplicates.
        near: removed as near-duplicates.
        kept: items out.
    """

    total: int = 0
    exact: int = 0
    near: int = 0
    kept: int = 0


def dedup(
    items: Sequence[T],
    key: Callable[[T], tuple[str, str]],
    threshold: float = 0.85,
    near: bool = True,
) -> tuple[list[T], DedupReport]:
    """Remove exact and near-duplicate items, keeping the first of each group.

    Args:
        items: anything.
        key: ``item -> (group, text)``; items are compared only within a group (the tool name).
        threshold: Jaccard similarity of content words at or above which two texts are near-duplicates
            (0.85 removes rephrasings that differ by one or two words; 1.0 = same word set).
        near: also remove near-duplicates (False: exact only).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    report = DedupReport(total=len(items))
    keys = [key(it) for it in items]
    wsets = [words(text) for _, text in keys]
    freq: Counter = Counter()
    for (group, _), ws in zip(keys, wsets, strict=True):
        freq.update((group, w) for w in ws)
    seen_exact: set[tuple[str, str]] = set()
    index: dict[tuple[str, str], list[int]] = defaultdict(list)  # (group, word) -> kept item positions
    kept: list[T] = []
    for i, ((group, text), ws) in enumerate(zip(keys, wsets, strict=True)):
        norm = (group, normalize(text))
        if norm in seen_exact:
            report.exact += 1
            continue
        if near and ws:
            ordered = sorted(ws, key=lambda w: (freq[(group, w)], w))
            prefix = ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]
            candidates = {j for w in prefix for j in index[(group, w)]}
            if any(_jaccard(ws, wsets[j]) >= threshold for j in candidates):
                report.near += 1
                continue
            for w in prefix:
                index[(group, w)].append(i)
        seen_exact.add(norm)
        kept.append(items[i])
    report.kept = len(kept)
    return kept, report


def _jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
