"""Offline proof of the whole loop: data -> training -> inference -> evaluation -> data selection.

Not a test. On a CPU, with no downloads, in one run:

1. Offline teacher (``g4t.data.offline_teacher``) writes teacher replies for the MagicBrush
   dev captions shipped in ``data/`` (CC BY 4.0, see data/README.md); the project's own builder,
   ``scripts/generate_annotations.py``, turns them into training records and two image-disjoint
   evaluation splits: ``label_val`` (genuine selection labels) and ``heldout`` (every SR below).
2. A small *randomly initialised* Llama (``testkit.tiny.build_llama``; tokenizer trained on the data).
3. SR before training: ``inference.py`` + ``evaluate_result.py`` on the held-out split.
4. ``lora_finetune.py --full_finetune`` on the whole training set -> SR after training.
5. Stage 1 / stage 2, as MiniGPT-4 -> InstructionGPT-4: the full run's checkpoint at
   ``stage1_steps`` is the starting point of every selection fine-tune. The ``select_data.py``
   machinery with genuine labels (each label subset fine-tuned from stage 1 and evaluated through
   the same three scripts, as subprocesses) picks ``budget`` samples; the same budget drawn at
   random is the baseline; both are fine-tuned identically from stage 1 -> SR selected vs random.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python bench/e2e_loop.py --work_dir output/e2e_loop

Stages whose outputs exist are skipped on a rerun (delete the work folder to start over); the
figures are printed and written to ``bench/results/e2e_loop.txt``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from g4t.cli import arg, parse_args

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class E2EConfig:
    """Knobs of the offline loop (defaults: about 25 minutes on 2 CPU cores)."""

    work_dir: str = arg("output/e2e_loop", help="Everything the run writes (stages are resumable).")
    captions: str = arg(str(ROOT / "data/magicbrush_dev_captions.json"), help="Caption list {file_name, caption}.")
    results: str = arg(str(ROOT / "bench/results/e2e_loop.txt"), help="Where the figures go.")
    tools_per_caption: int = arg(8, help="Teacher instructions per caption.")
    noise: float = arg(0.1, help="Share of mislabelled teacher lines (request of another tool).")
    max_train: int = arg(2400, help="Cap on training records.")
    n_heldout: int = arg(120, help="Held-out records evaluated for every SR figure.")
    n_label_val: int = arg(20, help="Validation records used for each genuine label.")
    base_model: str = arg(
        "",
        help="Start from this model (Hub id, folder, .gguf file, or smollm2) instead of the randomly initialised "
        "Llama below (its width/depth/vocabulary flags are then ignored).",
    )
    hidden_size: int = arg(128, help="Model width.")
    num_layers: int = arg(4, help="Model depth.")
    vocab_size: int = arg(2000, help="BPE vocabulary trained on the data.")
    epochs: int = arg(2, help="Epochs of the full training run (capped by full_steps).")
    stage1_steps: int = arg(
        150, help="Checkpoint of the full run used as the starting point of every selection fine-tune (stage 1)."
    )
    full_steps: int = arg(600, help="Optimizer steps of the full training run (8 samples each).")
    train_on_inputs: bool = arg(
        False,
        help="Loss on the prompt too. Off: the loss on the response alone is what teaches the tool choice "
        "(with it on, the constant prompt dominated the loss and tool-call SR stayed near 0).",
    )
    lr: float = arg(2e-3, help="Learning rate of every training run.")
    budget: int = arg(200, help="Selected subset size (and the random baseline's).")
    subset_steps: int = arg(40, help="Optimizer steps of each 200-sample run (selected / random).")
    n_subsets: int = arg(4, help="Genuine-label subsets.")
    subset_size: int = arg(40, help="Samples per label subset.")
    label_steps: int = arg(15, help="Optimizer steps of each label fine-tune.")
    max_new_tokens: int = arg(48, help="Generation budget (a full tool call is about 40 tokens).")
    seed: int = arg(0, help="Seed of the teacher, splits, model and baseline draw.")


def _run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    t = time.time()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n" + "\n".join(log.read_text().splitlines()[-20:]))
    print(f"  {Path(cmd[1]).name}: {time.time() - t:.0f}s", flush=True)


def train_args(cfg: E2EConfig, extra: list[str]) -> list[str]:
    return [
        "--full_finetune",
        "--cutoff_len",
        "1024",
        "--micro_batch_size",
        "8",
        "--batch_size",
        "8",
        "--learning_rate",
        str(cfg.lr),
        "--warmup_steps",
        "20",
        "--lr_scheduler_type",
        "cosine",
        "--logging_steps",
        "20",
        "--packing",
        "--train_on_inputs",
        str(cfg.train_on_inputs),
        "--seed",
        str(cfg.seed),
        *extra,
    ]


def infer_args(cfg: E2EConfig) -> list[str]:
    return ["--max_new_tokens", str(cfg.max_new_tokens), "--batch_size", "8", "--llm_device", "cpu"]


def train(cfg: E2EConfig, base: str, data: Path, out: Path, extra: list[str]) -> Path:
    if not (out / "config.json").is_file():
        _run(
            [
                sys.executable,
                "lora_finetune.py",
                "--base_model",
                base,
                "--data_path",
                str(data),
                "--output_dir",
                str(out),
                "--val_set_size",
                "0",
                *train_args(cfg, extra),
            ],
            out.with_suffix(".train.log"),
        )
    return out


def success_rate(cfg: E2EConfig, model: Path | str, ann: Path, name: str) -> float:
    pred = Path(cfg.work_dir) / "pred"
    report = pred / name / f"{name}_report.json"
    if not report.is_file():
        _run(
            [
                sys.executable,
                "inference.py",
                "--base_model",
                str(model),
                "--lora_model",
                "none",
                "--ann_path",
                str(ann),
                "--save_name",
                name,
                "--save_path",
                str(pred),
                *infer_args(cfg),
            ],
            pred / f"{name}.infer.log",
        )
        _run(
            [
                sys.executable,
                "evaluate_result.py",
                "--ann_path",
                str(ann),
                "--save_name",
                name,
                "--save_path",
                str(pred),
            ],
            pred / f"{name}.eval.log",
        )
    return float(json.loads(report.read_text())["published"]["SR"])


def split_sr(cfg: E2EConfig, name: str) -> tuple[float, float]:
    """SR on the held-out samples whose ground truth calls a tool, and on the final-answer ones."""
    report = json.loads((Path(cfg.work_dir) / "pred" / name / f"{name}_report.json").read_text())
    groups = report["per_tool"]
    tool = [(g["n"], g["SR"]) for k, g in groups.items() if k != "(no tool)"]
    n_tool = sum(n for n, _ in tool)
    no_tool = groups.get("(no tool)", {"SR": float("nan")})["SR"]
    return sum(n * sr for n, sr in tool) / max(n_tool, 1), no_tool


def make_data(cfg: E2EConfig, work: Path) -> tuple[Path, Path, Path]:
    from g4t.data.offline_teacher import write_replies

    train, label_val, heldout = work / "train.json", work / "label_val.json", work / "heldout.json"
    if heldout.is_file():
        return train, label_val, heldout
    captions = json.loads(Path(cfg.captions).read_text())
    n = write_replies(
        captions, work / "replies.jsonl", tools_per_caption=cfg.tools_per_caption, noise=cfg.noise, seed=cfg.seed
    )
    print(f"teacher: {n} instructions for {len(captions)} captions (noise {cfg.noise})")
    # generate_annotations splits by image: its "val" -> genuine labels, its "test" -> held-out figures.
    _run(
        [
            sys.executable,
            "scripts/generate_annotations.py",
            "--input_path",
            str(work / "replies.jsonl"),
            "--output_path",
            str(train),
            "--complement",
            "--val_ratio",
            "0.1",
            "--test_ratio",
            "0.15",
            "--max_num_samples",
            str(cfg.max_train),
            "--seed",
            str(cfg.seed),
            "--val_path",
            str(work / "val_all.json"),
            "--test_path",
            str(work / "test_all.json"),
        ],
        work / "data.log",
    )
    rng = random.Random(cfg.seed)
    for src, dst, k in (
        (work / "val_all.json", label_val, cfg.n_label_val),
        (work / "test_all.json", heldout, cfg.n_heldout),
    ):
        records = json.loads(src.read_text())
        dst.write_text(json.dumps(rng.sample(records, min(k, len(records))), indent=1))
    return train, label_val, heldout


def main(cfg: E2EConfig) -> int:
    from g4t.selection.labels import SubprocessLabeler
    from g4t.selection.pipeline import SelectDataConfig, run
    from testkit.tiny import build_llama

    t0 = time.time()
    work = Path(cfg.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    train_path, label_val, heldout = make_data(cfg, work)
    records = json.loads(train_path.read_text())
    print(
        f"data: {len(records)} train, {len(json.loads(label_val.read_text()))} label-val, "
        f"{len(json.loads(heldout.read_text()))} held-out records"
    )

    base = cfg.base_model or work / "base_model"
    if not cfg.base_model and not (base / "config.json").is_file():
        texts = [r["instruction"] + r["output"] for r in random.Random(cfg.seed).sample(records, 400)]
        build_llama(
            base,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            num_heads=4,
            num_kv_heads=2,
            vocab_size=cfg.vocab_size,
            seed=cfg.seed,
            tokenizer_texts=texts,
        )
    figures: dict[str, float | str] = {}
    print("SR before training ...", flush=True)
    figures["SR before training"] = success_rate(cfg, base, heldout, "before")
    print(f"  {figures['SR before training']:.3f}\nfull training ...", flush=True)
    full = train(
        cfg,
        str(base),
        train_path,
        work / "full",
        [
            "--num_epochs",
            str(cfg.epochs),
            "--max_steps",
            str(cfg.full_steps),
            "--save_steps",
            str(cfg.stage1_steps),
            "--save_total_limit",
            "10",
        ],
    )
    figures["SR after training"] = success_rate(cfg, full, heldout, "after")
    tool_sr, answer_sr = split_sr(cfg, "after")
    figures["SR after training, tool-call samples"] = tool_sr
    figures["SR after training, final-answer samples"] = answer_sr
    print(f"  {figures['SR after training']:.3f}\nselection with genuine labels ...", flush=True)

    # Genuine labels: each label subset is fine-tuned from the base model and evaluated on label_val,
    # through lora_finetune.py / inference.py / evaluate_result.py (subprocesses).
    # Stage 1 (as MiniGPT-4's stage 1 before InstructionGPT-4's 200-sample stage 2): the full run's
    # early checkpoint knows the format; every selection fine-tune starts from it.
    stage1 = work / "full" / f"checkpoint-{cfg.stage1_steps}"
    labeler = SubprocessLabeler(
        str(stage1),
        str(label_val),
        str(work / "labels"),
        train_args(cfg, ["--max_steps", str(cfg.label_steps)]),
        infer_args(cfg),
    )
    sel_cfg = SelectDataConfig(
        data_path=str(train_path),
        output_path=str(work / "selected.json"),
        budget=cfg.budget,
        indicators=["length", "steps", "validity"],
        cache_dir=str(work / "cache"),
        device="cpu",
        n_clusters=10,
        n_subsets=cfg.n_subsets,
        subset_size=cfg.subset_size,
        label_work_dir=str(work / "labels"),
        cv_folds=3,
        seed=cfg.seed,
    )
    result = run(sel_cfg, label_fn=labeler)
    rng = random.Random(cfg.seed + 1)
    (work / "random.json").write_text(json.dumps(rng.sample(records, cfg.budget)))
    steps = ["--max_steps", str(cfg.subset_steps)]
    for name in ("selected", "random"):
        model = train(cfg, str(stage1), work / f"{name}.json", work / f"model_{name}", steps)
        figures[f"SR after training on {cfg.budget} {name}"] = success_rate(cfg, model, heldout, name)
        print(f"  {name}: {figures[f'SR after training on {cfg.budget} {name}']:.3f}", flush=True)
    figures["genuine labels (SR of label subsets)"] = " ".join(f"{v:.3f}" for v in result.labels)
    for k, c in result.cv.items():
        figures[f"cross-validated spearman vs labels: {k}"] = round(c["spearman"], 3)
    figures["minutes"] = round((time.time() - t0) / 60, 1)
    lines = [f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in figures.items()]
    header = (
        f"# bench/e2e_loop.py (offline, CPU): {len(records)} train records, held-out n={cfg.n_heldout}, "
        f"model h{cfg.hidden_size}xL{cfg.num_layers} random init, noise {cfg.noise}"
    )
    Path(cfg.results).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.results).write_text(header + "\n" + "\n".join(lines) + "\n")
    print(header, *lines, sep="\n")
    return 0


if __name__ == "__main__":
    (config,) = parse_args(E2EConfig, description=__doc__.split("\n\n")[0])
    sys.exit(main(config))
