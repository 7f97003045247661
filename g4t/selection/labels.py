"""Genuine quality labels: fine-tune on each subset, evaluate SR on a validation split.

For every label subset the loop runs this project's three scripts as subprocesses, exactly as a
user would: ``lora_finetune.py`` (LoRA, or ``--full_finetune``) on the subset, ``inference.py`` on
the validation annotations, ``evaluate_result.py``; the label is the published SR (or another
metric of the evaluation report). Labels are cached in ``labels.json`` under the work folder,
keyed by the subset's content and the whole training/evaluation setup, so an interrupted loop
resumes where it stopped and a changed setup never reuses stale labels. A SIGINT / SIGTERM is
forwarded to the running script, which saves its work (``lora_finetune.py``: a checkpoint of the
current step, resumed by the rerun) and exits; the interrupted subset is labelled by the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from g4t.data.io import atomic_write_json
from g4t.interrupts import Interrupted
from g4t.selection.cache import config_hash
from g4t.selection.samples import sample_hash

__all__ = ["REPO_ROOT", "LabelFn", "SubprocessLabeler", "label_subsets", "subset_key"]

REPO_ROOT = Path(__file__).resolve().parents[2]
LabelFn = Callable[[list[dict], str], float]
"""``label(records, name) -> float``: the quality label of a training subset (higher is better)."""


def subset_key(records: Sequence[dict], setup: dict | None = None) -> str:
    """Cache key of a subset: its sample hashes (order-free) and the labelling setup."""
    return config_hash({"samples": sorted(sample_hash(r) for r in records), "setup": setup or {}})


@dataclass
class SubprocessLabeler:
    """Label = ``metric`` of a model fine-tuned on the subset, evaluated on ``val_path``.

    Attributes:
        base_model: model to fine-tune (id or directory); every subset starts from it.
        val_path: validation annotations (records with ``id``), disjoint from the final test split.
        work_dir: where subsets, models, predictions and reports go.
        train_args: extra ``lora_finetune.py`` flags, identical for every subset (fix ``--max_steps``
            so every subset gets the same number of optimiser steps).
        infer_args: extra ``inference.py`` flags (e.g. ``--max_new_tokens 64 --batch_size 16``).
        metric: key of the published metrics in the evaluation report (``SR``, ``SR_act``, ``IoU``...).
        python: interpreter running the scripts.
        keep_models: keep each subset's trained weights (off: deleted once evaluated).
        env: extra environment variables for the subprocesses.
    """

    base_model: str
    val_path: str
    work_dir: str
    train_args: list[str] = field(default_factory=list)
    infer_args: list[str] = field(default_factory=list)
    metric: str = "SR"
    python: str = sys.executable
    keep_models: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def setup(self) -> dict:
        """What the label depends on besides the subset (part of the cache key)."""
        return {
            "base_model": self.base_model,
            "val_path": str(Path(self.val_path).resolve()),
            "train_args": self.train_args,
            "infer_args": self.infer_args,
            "metric": self.metric,
        }

    def _run(self, script: str, args: list[str], log: Path) -> None:
        cmd = [self.python, str(REPO_ROOT / script), *args]
        env = {**os.environ, **self.env}
        with log.open("a") as f:  # appended: the log of an interrupted attempt stays readable
            f.write(" ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
            try:
                proc.wait()
            except BaseException as e:  # SIGINT / SIGTERM here: the child saves its work and stops too
                sig = signal.SIGINT if isinstance(e, KeyboardInterrupt) else signal.SIGTERM
                _stop_child(proc, e.signum if isinstance(e, Interrupted) else sig)
                raise
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"{script} failed with exit status {proc.returncode} (log: {log}):\n{tail}")

    def model_args(self, model_dir: Path) -> list[str]:
        """``inference.py`` model flags for the weights ``lora_finetune.py`` wrote."""
        if "--full_finetune" in self.train_args:
            return ["--base_model", str(model_dir), "--lora_model", "none"]
        return ["--base_model", self.base_model, "--lora_model", str(model_dir)]

    def __call__(self, records: list[dict], name: str) -> float:
        out = Path(self.work_dir) / name
        out.mkdir(parents=True, exist_ok=True)
        data = out / "train.json"
        data.write_text(json.dumps(records, ensure_ascii=False))
        model_dir = out / "model"
        self._run(
            "lora_finetune.py",
            [
                "--base_model",
                self.base_model,
                "--data_path",
                str(data),
                "--output_dir",
                str(model_dir),
                "--val_set_size",
                "0",
                *self.train_args,
            ],
            out / "train.log",
        )
        pred = out / "pred"
        self._run(
            "inference.py",
            [
                *self.model_args(model_dir),
                "--ann_path",
                self.val_path,
                "--save_name",
                name,
                "--save_path",
                str(pred),
                *self.infer_args,
            ],
            out / "inference.log",
        )
        self._run(
            "evaluate_result.py",
            ["--ann_path", self.val_path, "--save_name", name, "--save_path", str(pred)],
            out / "evaluate.log",
        )
        report = json.loads((pred / name / f"{name}_report.json").read_text())
        if not self.keep_models:
            import shutil

            shutil.rmtree(model_dir, ignore_errors=True)
        return float(report["published"][self.metric])


# How long a child (lora_finetune.py finishing its step and saving a checkpoint) may take to stop.
CHILD_GRACE_S = 30.0


def _stop_child(proc: subprocess.Popen, signum: int) -> None:
    """Forward the signal to the child, give it ``CHILD_GRACE_S`` to save and exit, then kill it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signum)
    try:
        proc.wait(timeout=CHILD_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def label_subsets(
    pool: Sequence[dict],
    subsets: Sequence[Sequence[int]],
    label_fn: LabelFn,
    cache_path: str | Path,
    setup: dict | None = None,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Label every subset (resumable): cached labels are reused, new ones written after each subset.

    Args:
        pool: all records.
        subsets: index lists into ``pool``.
        label_fn: ``label(records, name)``, e.g. a ``SubprocessLabeler``.
        cache_path: ``labels.json`` holding ``{subset key: {"label", "name", "size"}}``.
        setup: what the labels depend on (default: ``label_fn.setup()`` when it has one).
    """
    cache_path = Path(cache_path)
    if setup is None and hasattr(label_fn, "setup"):
        setup = label_fn.setup()
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    labels = []
    for i, idx in enumerate(subsets):
        records = [pool[j] for j in idx]
        key = subset_key(records, setup)
        if key not in cache:
            name = f"subset_{i:03d}_{key[:8]}"
            log(f"labelling subset {i + 1}/{len(subsets)} ({len(records)} samples) -> {name}")
            value = float(label_fn(records, name))
            cache[key] = {"label": value, "name": name, "size": len(records)}
            atomic_write_json(cache_path, cache, indent=1)
            log(f"  label {value:.4f}")
        labels.append(cache[key]["label"])
    return labels
