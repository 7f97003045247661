"""Split by image into train / val-seen / test-unseen, with chosen tools held out of training.

Each image (caption record) goes to exactly one split, so no image is shared between training and
evaluation. ``unseen_tools`` never reach train or val: their samples are kept only on test images
(a sample "uses" its tool and the tool's condition tool). Samples of unseen tools on train/val
images are dropped and counted.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from g4t.data.build import Sample
from g4t.data.catalog import ToolInfo

__all__ = ["SPLITS", "SplitReport", "assign_images", "split_samples"]

SPLITS = ("train", "val", "test")


@dataclass
class SplitReport:
    """Counts of a split.

    Attributes:
        images: images per split.
        samples: samples per split.
        dropped_unseen: samples of unseen tools on train/val images (removed).
    """

    images: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    dropped_unseen: int = 0


def _count(ratio: float, n: int) -> int:
    return 0 if ratio <= 0 or n == 0 else max(1, round(ratio * n))


def assign_images(image_ids: Iterable[str], val_ratio: float, test_ratio: float, seed: int) -> dict[str, str]:
    """``{image id: split}``: a seeded shuffle of the sorted ids; test first, then val, rest train.

    Args:
        image_ids: ids (duplicates ignored).
        val_ratio: fraction of images for val-seen (at least one image when > 0).
        test_ratio: fraction of images for test-unseen (at least one image when > 0).
        seed: shuffle seed.
    """
    if val_ratio < 0 or test_ratio < 0 or val_ratio + test_ratio >= 1:
        raise ValueError(
            f"need 0 <= val_ratio, test_ratio and val_ratio + test_ratio < 1, got {val_ratio}, {test_ratio}"
        )
    ids = sorted(set(image_ids))
    random.Random(seed).shuffle(ids)
    n_test, n_val = _count(test_ratio, len(ids)), _count(val_ratio, len(ids))
    out = {}
    for i, iid in enumerate(ids):
        out[iid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def split_samples(
    samples: Sequence[Sample],
    assignment: dict[str, str],
    unseen_tools: Iterable[str],
    catalog: dict[str, ToolInfo],
) -> tuple[dict[str, list[Sample]], SplitReport]:
    """Distribute samples by their image's split; unseen-tool samples only on test images."""
    unseen = set(unseen_tools)
    out: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    report = SplitReport()
    for s in samples:
        split = assignment[s.image_id]
        used = {s.tool, catalog[s.tool].condition} - {None}
        if split != "test" and used & unseen:
            report.dropped_unseen += 1
            continue
        out[split].append(s)
    report.images = dict(Counter(assignment.values()))
    report.samples = {k: len(v) for k, v in out.items()}
    return out, report
