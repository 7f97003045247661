"""``scripts/select_data.py``: indicators -> features -> labels -> selector -> diversity quotas -> subset.

The InstructionGPT-4 method on GPT4Tools annotations (docs/selection.md):

1. Quality indicators per sample (cached): length, steps, tool-call validity, reward model, LLM
   judge, CLIP where the image exists.
2. Features: MiniLM embeddings of the request and the output, PCA fit once on the pool.
3. Genuine labels: equal-size k-means++ subsets, each fine-tuned with ``lora_finetune.py`` and
   evaluated (SR) with ``inference.py`` + ``evaluate_result.py`` (resumable).
4. The selector (attention within a subset only) trained on those labels with a held-out split,
   and compared with the plain indicators (Pearson/Spearman, held out and cross-validated).
5. Spectral clusters of the pool, quotas proportional to cluster size summing to the budget, the
   top selector scores inside each cluster.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from g4t.cli import arg, group, split_list
from g4t.data.io import atomic_write_json, read_records
from g4t.interrupts import signals_raise_interrupted
from g4t.settings import OpenAIConnection

__all__ = ["INDICATORS", "SelectDataConfig", "SelectionResult", "run"]

INDICATORS = ("length", "steps", "validity", "reward", "judge", "clip")


@dataclass
class SelectDataConfig:
    """Configuration of ``scripts/select_data.py`` (one attribute per flag)."""

    data_path: str = arg(None, help="Annotation pool (.json list or .jsonl of instruction/input/output records).")
    output_path: str = arg("output/selected.json", help="Selected subset, in the same annotation format.")
    report_dir: str | None = arg(None, help="Report folder (default: <output_path without .json>_report).")
    budget: int = arg(200, help="Samples to select (InstructionGPT-4: 200, about 6 percent of its pool).")
    indicators: list[str] = arg(
        default_factory=lambda: ["length", "steps", "validity", "reward"],
        help=f"Quality indicators, any of {', '.join(INDICATORS)} (judge needs an endpoint, clip needs images).",
    )
    cache_dir: str = arg("output/selection_cache", help="On-disk cache of indicator scores and embeddings.")
    device: str = arg("auto", help="Torch device of the scoring models: auto, cpu, cuda...")
    # --- indicator models ---
    reward_model: str = arg(
        "OpenAssistant/reward-model-deberta-v3-large-v2", help="Sequence-classification reward model."
    )
    reward_max_length: int = arg(512, help="Token budget of the (request, output) pair for the reward model.")
    # the LLM judge's server: the connection group of every script (--openai_model, --openai_base_url,
    # --max_concurrency ...; the judge indicator only)
    judge: OpenAIConnection = group(lambda: OpenAIConnection(openai_model="gpt-4o-mini"))
    clip_model: str = arg("openai/clip-vit-large-patch14", help="CLIPModel id or directory.")
    image_root: str = arg(".", help="Folder the records' image paths are relative to (CLIP score).")
    clip_text: Literal["caption", "output", "request"] = arg("caption", help="Text compared with the image.")
    # --- features and diversity ---
    embedding_model: str | None = arg(None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
    pca_components: int = arg(6, help="PCA components per embedding (request, output); published: 6.")
    n_clusters: int = arg(10, help="Diversity clusters (published: 10 spectral clusters).")
    cluster_method: Literal["auto", "spectral", "kmeans"] = arg(
        "auto", help="spectral (kNN graph, published), kmeans (MiniBatch), auto (spectral up to 20k samples)."
    )
    # --- genuine labels ---
    labels: Literal["train", "none"] = arg(
        "train",
        help="train: fine-tune + evaluate each label subset (genuine labels); none: no selector, rank by the mean "
        "of the standardised indicators.",
    )
    n_subsets: int = arg(30, help="Label subsets (published: 30; more gives steadier labels).")
    subset_size: int = arg(0, help="Samples per label subset (0: min(budget, pool // n_subsets)).")
    base_model: str | None = arg(
        None,
        help="Model every label subset is fine-tuned from (labels=train): Hub id, folder, .gguf file or smollm2.",
    )
    val_path: str | None = arg(None, help="Validation annotations with ids, for the labels (labels=train).")
    label_work_dir: str = arg("output/selection_labels", help="Subsets, models, predictions and labels.json.")
    label_train_args: str = arg(
        "--max_steps 100 --warmup_steps 10 --micro_batch_size 4 --batch_size 16",
        help="Extra lora_finetune.py flags, the same for every subset (one quoted string).",
    )
    label_infer_args: str = arg("--max_new_tokens 128", help="Extra inference.py flags (one quoted string).")
    label_metric: str = arg("SR", help="Metric of the evaluation report used as the label (SR, SR_act, IoU...).")
    # --- selector ---
    selector_layers: int = arg(2, help="Attention layers (published: 2).")
    selector_heads: int = arg(4, help="Attention heads (published: 4).")
    selector_lr: float = arg(1e-2, help="Adam learning rate (published: 0.01).")
    selector_epochs: int = arg(400, help="Maximum epochs (early stopping on held-out subsets).")
    val_fraction: float = arg(0.2, help="Share of labelled subsets held out for early stopping and correlations.")
    cv_folds: int = arg(5, help="Folds of the cross-validated comparison (0: skip).")
    seed: int = arg(42, help="Seed of the subsets, clustering, selector and scoring.")

    def __post_init__(self) -> None:
        problems = []
        self.indicators = split_list(self.indicators)
        if not self.data_path:
            problems.append("--data_path is required")
        bad = [i for i in self.indicators if i not in INDICATORS]
        if bad:
            problems.append(f"--indicators: unknown {bad}; choose from {list(INDICATORS)}")
        if self.budget < 1:
            problems.append(f"--budget must be positive, got {self.budget}")
        if self.judge.protocol != "react":
            problems.append("--protocol: the judge answers in text; only react applies to select_data.py")
        if self.labels == "train" and self.n_subsets < 2:
            problems.append("--n_subsets must be >= 2 to train the selector")
        if self.pca_components < 1 or self.n_clusters < 1:
            problems.append("--pca_components and --n_clusters must be positive")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class SelectionResult:
    """What ``run`` computed (returned for tests and notebooks)."""

    selected: np.ndarray
    scores: np.ndarray
    clusters: np.ndarray
    indicators: dict[str, np.ndarray]
    subsets: list[np.ndarray] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    held_out: dict = field(default_factory=dict)
    cv: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)


def build_indicators(cfg: SelectDataConfig) -> list:
    """The indicator objects named in ``cfg.indicators``."""
    from g4t.selection.indicators import LengthIndicator, StepsIndicator, ToolValidityIndicator

    out = []
    for name in cfg.indicators:
        if name == "length":
            out.append(LengthIndicator())
        elif name == "steps":
            out.append(StepsIndicator())
        elif name == "validity":
            out.append(ToolValidityIndicator())
        elif name == "reward":
            from g4t.selection.models import RewardScorer

            out.append(RewardScorer(cfg.reward_model, cfg.reward_max_length, device=cfg.device))
        elif name == "judge":
            from g4t.selection.judge import LLMJudge

            judge = cfg.judge
            out.append(LLMJudge(judge.openai_model, judge.openai_base_url, connection=judge))
        elif name == "clip":
            from g4t.selection.models import ClipScorer

            out.append(ClipScorer(cfg.clip_model, cfg.image_root, cfg.clip_text, cfg.device))
    return out


def _input_matrix(values: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    cols = []
    for v in values.values():
        cols.append(v)
        if np.isnan(v).any() and not np.isnan(v).all():  # e.g. CLIP without an image: add a missing flag
            cols.append(np.isnan(v).astype(float))
    ind = np.stack(cols, axis=1) if cols else np.zeros((features.shape[0], 0))
    ind = ind[:, ~np.isnan(ind).all(axis=0)] if ind.size else ind
    return np.concatenate([ind, features], axis=1).astype(np.float64)


def _plain_score(values: dict[str, np.ndarray]) -> np.ndarray:
    z = []
    for v in values.values():
        sd = np.nanstd(v)
        if np.isfinite(sd) and sd > 0:
            z.append(np.nan_to_num((v - np.nanmean(v)) / sd))
    return np.mean(z, axis=0) if z else np.zeros(len(next(iter(values.values()))))


def run(cfg: SelectDataConfig, label_fn=None, log=print) -> SelectionResult:
    """Select ``cfg.budget`` samples and write the subset and its report.

    Every stage keeps what it finished on disk as it goes (indicator scores and embeddings in
    ``cache_dir``, labels in ``labels.json``), so a rerun after an interruption starts where it stopped.

    Args:
        cfg: the configuration.
        label_fn: ``label(records, name) -> float`` overriding the subprocess fine-tune+evaluate loop
            (tests use a cheap one; the scripts always use ``SubprocessLabeler``).
        log: progress printer.

    Raises:
        Interrupted: SIGINT / SIGTERM (when called from the main thread): the finished stage results are
            saved, a running ``lora_finetune.py`` got the signal and saved a checkpoint.
    """
    with signals_raise_interrupted():
        return _run(cfg, label_fn, log)


def _run(cfg: SelectDataConfig, label_fn, log) -> SelectionResult:
    from g4t.selection.clustering import diversity_clusters, kmeans_subsets, select_by_quota
    from g4t.selection.compare import cross_validate, held_out
    from g4t.selection.features import pool_features
    from g4t.selection.indicators import compute_indicators
    from g4t.selection.labels import SubprocessLabeler, label_subsets
    from g4t.selection.report import write_report
    from g4t.selection.selector import SelectorConfig, train_selector

    records = read_records(cfg.data_path)
    n = len(records)
    if cfg.budget > n:
        raise ValueError(f"--budget {cfg.budget} exceeds the pool of {n} samples")
    log(f"pool: {n} samples; indicators: {', '.join(cfg.indicators) or '(none)'}")
    values = compute_indicators(records, build_indicators(cfg), cfg.cache_dir)
    device = "cpu" if cfg.device == "auto" else cfg.device
    pca, raw = pool_features(records, cfg.embedding_model, cfg.pca_components, device, cfg.cache_dir, cfg.seed)
    x = _input_matrix(values, pca)
    clusters = diversity_clusters(raw, cfg.n_clusters, cfg.cluster_method, seed=cfg.seed)
    result = SelectionResult(np.array([], dtype=int), np.zeros(n), clusters, values)
    extra: dict = {"config": asdict(cfg)}
    if cfg.labels == "train":
        size = cfg.subset_size or min(cfg.budget, n // cfg.n_subsets)
        result.subsets = kmeans_subsets(raw, cfg.n_subsets, size, cfg.seed)
        if label_fn is None:
            if not cfg.base_model or not cfg.val_path:
                raise ValueError("--labels train needs --base_model and --val_path (or use --labels none)")
            label_fn = SubprocessLabeler(
                cfg.base_model,
                cfg.val_path,
                cfg.label_work_dir,
                shlex.split(cfg.label_train_args),
                shlex.split(cfg.label_infer_args),
                cfg.label_metric,
            )
        result.labels = label_subsets(
            records, result.subsets, label_fn, Path(cfg.label_work_dir) / "labels.json", log=log
        )
        scfg = SelectorConfig(
            nhead=cfg.selector_heads,
            num_layers=cfg.selector_layers,
            lr=cfg.selector_lr,
            epochs=cfg.selector_epochs,
            val_fraction=cfg.val_fraction,
            seed=cfg.seed,
        )
        selector = train_selector(x, result.subsets, result.labels, scfg)
        result.held_out = held_out(selector, x, result.subsets, result.labels, values)
        if cfg.cv_folds:
            result.cv = cross_validate(x, result.subsets, result.labels, values, scfg, cfg.cv_folds)
        result.scores = selector.score_samples(x, size)
        extra.update(
            {
                "labels": [
                    {"subset": i, "size": len(s), "label": lab}
                    for i, (s, lab) in enumerate(zip(result.subsets, result.labels, strict=True))
                ],
                "selector": {
                    "train_subsets": selector.train_ids,
                    "held_out_subsets": selector.val_ids,
                    "best_epoch": selector.best_epoch,
                    "epochs_run": len(selector.history),
                },
                "held_out_correlations": result.held_out,
                "cv_correlations": result.cv,
            }
        )
        for title, table in (("held-out", result.held_out), ("cross-validated", result.cv)):
            for k, c in table.items():
                log(f"{title:>15} {k:>10}: pearson {c['pearson']:+.3f}  spearman {c['spearman']:+.3f}")
    else:
        result.scores = _plain_score(values)
    result.selected = select_by_quota(result.scores, clusters, cfg.budget)
    out = Path(cfg.output_path)
    atomic_write_json(out, [records[i] for i in result.selected], indent=1)
    report_dir = cfg.report_dir or str(out.with_suffix("")) + "_report"
    result.paths = write_report(
        report_dir, records, result.selected, clusters, {**values, "selector_score": result.scores}, extra
    )
    result.paths["output"] = out
    log(f"selected {len(result.selected)} samples -> {out}; report in {report_dir}")
    return result
