"""Score a prediction set, then write the published ``eval.txt`` and the extra named outputs.

Extra outputs never change the published numbers: a per-tool table and a JSON report, and on request
(``strict`` / ``chart``, off by default so the default run stays fast) a strict mode and a bar chart
PNG of per-tool success.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from g4t.data.io import DataError, atomic_write_json, atomic_write_text
from g4t.evaluation.kinds import KindScores, format_by_kind
from g4t.evaluation.metrics import SampleScore, extract_prediction, score_sample

__all__ = ["METRICS", "EvalResult", "evaluate_predictions", "format_per_tool", "published_record", "write_outputs"]

# (key in our reports, label printed by the published evaluator, name in the paper)
METRICS = [
    ("thought", "Thought Acc", "SR_t"),
    ("action", "Action Acc", "SR_act"),
    ("args", "Action Args Acc", "SR_args"),
    ("success", "Acc", "SR"),
    ("iou", "IoU", "IoU"),
]
NO_TOOL = "(no tool)"


@dataclass
class EvalResult:
    """Everything computed for one prediction set.

    Attributes:
        published: the five published means (over predictions whose id has a GT), as ``np.float64``.
        strict: the strict-mode means over *all* GT ids (missing predictions score 0); None unless asked.
        per_tool: ``{group: {"n", metric means... [, "strict_success"]}}``; group = GT tool chain.
        scored_ids: ids scored, in prediction order.
        missing_ids: GT ids without a prediction.
        unknown_ids: prediction ids without a GT (published: "Empty Gt", skipped).
        duplicate_gt_ids: ids that occur more than once in the annotation file (the last one is used).
        prompt_handling: how many predictions were sliced as prompt+completion (exact / approximate)
            or taken as completion-only.
        samples: per-sample published scores, for debugging and tests.
        kinds: counts per record kind (first call, next step, chain, relay, chit-chat), right or why not,
            and the tool-call SR and tool-choice accuracy (``g4t.evaluation.kinds``).
    """

    published: dict[str, float]
    strict: dict[str, float] | None
    per_tool: dict[str, dict]
    scored_ids: list = field(default_factory=list)
    missing_ids: list = field(default_factory=list)
    unknown_ids: list = field(default_factory=list)
    duplicate_gt_ids: list = field(default_factory=list)
    prompt_handling: dict[str, int] = field(default_factory=dict)
    samples: list[SampleScore] = field(default_factory=list)
    kinds: KindScores = field(default_factory=KindScores)


def _means(scores: list[SampleScore]) -> dict[str, float]:
    """``np.mean`` of each metric over ``scores`` (the published means; nan when there is none)."""
    if not scores:
        return {k: float("nan") for k, _, _ in METRICS}
    columns = zip(*((s.thought, s.action, s.args, s.success, s.iou) for s in scores), strict=True)
    return {k: np.mean(column) for (k, _, _), column in zip(METRICS, columns, strict=True)}


def evaluate_predictions(
    annotations: list[dict],
    predictions: list[dict],
    prompt_mode: str = "auto",
    ann_path: str = "annotations",
    strict: bool = False,
) -> EvalResult:
    """Score ``predictions`` against ``annotations`` (both already validated by ``g4t.evaluation.io``).

    Args:
        annotations: GT samples (``id``, ``instruction``, ``output``).
        predictions: ``[{"id", "output"}]``.
        prompt_mode: ``auto`` / ``full`` / ``completion`` (see ``extract_prediction``).
        ann_path: shown in error messages.
        strict: also compute the strict-mode scores (``EvalResult.strict``, per-tool ``strict_success``).

    Raises:
        DataError: a GT ``output`` with unpaired ``Action:`` / ``Action Input:`` lines.
    """
    gt_by_id = {}
    id_counts = Counter(a["id"] for a in annotations)
    for a in annotations:
        gt_by_id[a["id"]] = a
    published: list[SampleScore] = []
    strict_by_id: dict = {}  # every scored id -> its strict score (None unless ``strict``)
    groups: dict[str, list[tuple[SampleScore, SampleScore | None]]] = defaultdict(list)
    handling: Counter = Counter()
    kinds = KindScores()
    scored, unknown = [], []
    for pred in predictions:
        gt = gt_by_id.get(pred["id"])
        if gt is None:
            unknown.append(pred["id"])
            continue
        text, how = extract_prediction(pred["output"], gt["instruction"], prompt_mode)
        handling[how] += 1
        try:
            score = score_sample(gt["output"], text)
        except ValueError as e:
            raise DataError(f"{ann_path}: id {pred['id']!r}: field 'output': {e}") from None
        strict_score = score_sample(gt["output"], text, strict=True) if strict else None
        published.append(score)
        kinds.add(gt, text, score.success == 1)
        strict_by_id[pred["id"]] = strict_score
        scored.append(pred["id"])
        groups[" -> ".join(score.gt_tools) if score.uses_tool else NO_TOOL].append((score, strict_score))
    missing = [k for k in gt_by_id if k not in strict_by_id]
    per_tool = {}
    for name in sorted(groups, key=lambda g: (g == NO_TOOL, g)):
        pairs = groups[name]
        row = {"n": len(pairs), **_means([p for p, _ in pairs])}
        if strict:
            row["strict_success"] = np.mean([s.success for _, s in pairs])
        per_tool[name] = row
    strict_means = None
    if strict:
        zero = SampleScore(0.0, 0.0, 0.0, 0.0, 0.0, False)
        strict_means = _means([strict_by_id.get(k) or zero for k in gt_by_id])
    return EvalResult(
        published=_means(published),
        strict=strict_means,
        per_tool=per_tool,
        scored_ids=scored,
        missing_ids=missing,
        unknown_ids=unknown,
        duplicate_gt_ids=[k for k, c in id_counts.items() if c > 1],
        prompt_handling=dict(handling),
        samples=published,
        kinds=kinds,
    )


def published_record(result: EvalResult) -> str:
    """The published ``eval.txt`` text, byte for byte (same f-string over the same numpy means)."""
    p = result.published
    return f"""
        Thought Acc: {p["thought"]}
        Action Acc: {p["action"]}
        Action Args Acc: {p["args"]}
        Acc: {p["success"]}
        IoU: {p["iou"]}
        """


def format_per_tool(result: EvalResult) -> str:
    """A markdown table: one row per GT tool chain (published metrics [+ strict success]), in percent."""
    strict = result.strict is not None
    head = "| tool | n | SR_t | SR_act | SR_args | SR | IoU |" + (" strict SR |" if strict else "")
    head += "\n|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if strict else "") + "\n"
    rows = []
    for name, r in result.per_tool.items():
        vals = " | ".join(f"{100 * r[k]:.1f}" for k, _, _ in METRICS)
        extra = f" {100 * r['strict_success']:.1f} |" if strict else ""
        rows.append(f"| {name} | {r['n']} | {vals} |{extra}")
    return head + "\n".join(rows) + "\n"


def _plain(x):
    return None if isinstance(x, float) and np.isnan(x) else float(x)


def _report_dict(result: EvalResult, sources: dict) -> dict:
    return {
        "published": {paper: _plain(result.published[k]) for k, _, paper in METRICS},
        "strict": None if result.strict is None else {paper: _plain(result.strict[k]) for k, _, paper in METRICS},
        "per_tool": {
            name: {
                "n": r["n"],
                **{paper: _plain(r[k]) for k, _, paper in METRICS},
                **({"strict_SR": _plain(r["strict_success"])} if "strict_success" in r else {}),
            }
            for name, r in result.per_tool.items()
        },
        "tool_call_SR": result.kinds.tool_call_sr,
        "tool_choice": result.kinds.tool_choice,
        "by_kind": result.kinds.by_kind,
        "counts": {
            "scored": len(result.scored_ids),
            "missing_predictions": len(result.missing_ids),
            "unknown_ids": len(result.unknown_ids),
            "duplicate_gt_ids": len(result.duplicate_gt_ids),
            **sources.pop("counts", {}),
        },
        "missing_ids": result.missing_ids,
        "unknown_ids": result.unknown_ids,
        "duplicate_gt_ids": result.duplicate_gt_ids,
        "prompt_handling": result.prompt_handling,
        **sources,
    }


def _bar_chart(result: EvalResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.per_tool)
    sr = [100 * result.per_tool[n]["success"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * max(len(names), 1)))
    y = np.arange(len(names))
    if result.strict is None:
        ax.barh(y, sr, height=0.6, label="SR (published)")
    else:
        strict = [100 * result.per_tool[n]["strict_success"] for n in names]
        ax.barh(y - 0.2, sr, height=0.4, label="SR (published)")
        ax.barh(y + 0.2, strict, height=0.4, label="SR (strict)")
    ax.set_yticks(y, [f"{n} (n={result.per_tool[n]['n']})" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("success rate (%)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    result: EvalResult, out_dir: str | Path, name: str, sources: dict | None = None, chart: bool = False
) -> dict[str, Path]:
    """Write ``eval.txt`` (published), ``{name}_report.json``, ``{name}_per_tool.md`` (all atomically)
    and, with ``chart``, ``{name}_per_tool.png`` (matplotlib is imported only then)."""
    out_dir = Path(out_dir)
    paths = {
        "eval_txt": out_dir / "eval.txt",
        "report": out_dir / f"{name}_report.json",
        "per_tool": out_dir / f"{name}_per_tool.md",
        "by_kind": out_dir / f"{name}_by_kind.md",
    }
    atomic_write_text(paths["eval_txt"], published_record(result))
    atomic_write_json(paths["report"], _report_dict(result, dict(sources or {})), indent=2)
    atomic_write_text(paths["per_tool"], format_per_tool(result))
    atomic_write_text(paths["by_kind"], format_by_kind(result.kinds))
    if chart:
        paths["chart"] = out_dir / f"{name}_per_tool.png"
        _bar_chart(result, paths["chart"], f"{name}: per-tool success")
    return paths
