"""The selection report: counts per tool and per cluster, correlations, indicator distributions (PNG)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from g4t.data.io import atomic_write_text
from g4t.selection.samples import parse_sample

__all__ = ["NO_TOOL", "plot_distributions", "tool_counts", "write_report"]

NO_TOOL = "(no tool)"


def tool_counts(records: Sequence[dict]) -> dict[str, int]:
    """Samples per tool of their first tool call (``(no tool)`` for final answers), most common first."""
    counts = Counter((parse_sample(r).actions or [NO_TOOL])[0] for r in records)
    return dict(counts.most_common())


def plot_distributions(values: dict[str, np.ndarray], selected: np.ndarray, path: str | Path) -> Path:
    """One histogram per indicator: the pool against the selected subset (densities)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(values)
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols) if names else 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        v = np.asarray(values[name], dtype=float)
        pool, sel = v[np.isfinite(v)], v[selected][np.isfinite(v[selected])]
        if len(pool) == 0:
            ax.set_title(f"{name} (no values)")
            continue
        lo, hi = float(pool.min()), float(pool.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
        ax.hist(pool, bins=bins, density=True, alpha=0.5, label=f"pool (n={len(pool)})")
        if len(sel):
            ax.hist(sel, bins=bins, density=True, alpha=0.6, label=f"selected (n={len(sel)})")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _stats(v: np.ndarray) -> dict[str, float]:
    v = v[np.isfinite(v)]
    if not len(v):
        return {"n": 0}
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def write_report(
    out_dir: str | Path,
    records: Sequence[dict],
    selected: np.ndarray,
    clusters: np.ndarray,
    values: dict[str, np.ndarray],
    extra: dict | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``indicators.png`` into ``out_dir``.

    Args:
        records: the whole pool.
        selected: indices of the selected samples.
        clusters: diversity cluster of every sample.
        values: per-sample indicator values and the selector score (plotted and summarised).
        extra: anything else to record (configuration, correlations, labels...).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [records[i] for i in selected]
    pool_tools, sel_tools = tool_counts(records), tool_counts(chosen)
    cl_pool = Counter(clusters.tolist())
    cl_sel = Counter(clusters[selected].tolist())
    report = {
        "pool_size": len(records),
        "selected": len(chosen),
        "per_tool": {t: {"pool": n, "selected": sel_tools.get(t, 0)} for t, n in pool_tools.items()},
        "per_cluster": {str(c): {"pool": n, "selected": cl_sel.get(c, 0)} for c, n in sorted(cl_pool.items())},
        "indicators": {
            k: {"pool": _stats(np.asarray(v, float)), "selected": _stats(np.asarray(v, float)[selected])}
            for k, v in values.items()
        },
        **(extra or {}),
    }
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "png": out_dir / "indicators.png"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, default=float))
    lines = [
        f"# Data selection report\n\nSelected {len(chosen)} of {len(records)} samples.\n",
        "## Per tool\n\n| tool | pool | selected |\n|---|---:|---:|",
    ]
    lines += [f"| {t} | {r['pool']} | {r['selected']} |" for t, r in report["per_tool"].items()]
    lines += ["\n## Per cluster\n\n| cluster | pool | selected |\n|---|---:|---:|"]
    lines += [f"| {c} | {r['pool']} | {r['selected']} |" for c, r in report["per_cluster"].items()]
    lines += ["\n## Indicators (mean: pool -> selected)\n\n| indicator | pool | selected |\n|---|---:|---:|"]
    for k, r in report["indicators"].items():
        p, s = r["pool"].get("mean", math.nan), r["selected"].get("mean", math.nan)
        lines.append(f"| {k} | {p:.3f} | {s:.3f} |")
    for title in ("held_out_correlations", "cv_correlations"):
        if title in report:
            lines += [f"\n## {title.replace('_', ' ')}\n\n| predictor | pearson | spearman |\n|---|---:|---:|"]
            lines += [f"| {k} | {c['pearson']:.3f} | {c['spearman']:.3f} |" for k, c in report[title].items()]
    atomic_write_text(paths["md"], "\n".join(lines) + "\n")
    plot_distributions(values, np.asarray(selected, dtype=int), paths["png"])
    return paths
