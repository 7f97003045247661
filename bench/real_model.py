"""The paper's Table 1 in miniature, offline, on a real pretrained LLM (SmolLM2-135M-Instruct).

Not a test. One run on a CPU, no downloads, every step through the project's own scripts:

1. **Data.** The offline teacher (``g4t.data.offline_teacher``) writes teacher replies for the
   MagicBrush dev captions in ``data/`` (every registered tool, varied requests) and no-tool chit-chat;
   ``scripts/generate_annotations.py`` builds training records and two image-disjoint evaluation splits:
   *seen* (val images, training tools) and *unseen* (test images, conversations that use one of
   ``--unseen_tools``, which never appear in training, as the paper's test_unseen). A third split,
   *natural*, comes from ``bench/data/natural_requests.jsonl``: requests hand-written apart from the
   teacher's templates, on images the teacher never saw.
2. **Zero-shot.** ``inference.py`` + ``evaluate_result.py`` on each split with the base model.
3. **Fine-tune.** ``lora_finetune.py`` with the recipe below on ``--n_train`` records.
4. **Fine-tuned.** The same evaluation with the adapter (or the fully fine-tuned model), then once more
   with ``inference.py --constrain_tools`` (tool names restricted to those the prompt lists).
5. **Report.** A table in the paper's shape (SR_t, SR_act, SR_args, SR, IoU per split, plus tool-call SR,
   tool-choice accuracy and the training cost) to ``bench/results/real_model.md``, ``.json`` and ``.png``.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python bench/real_model.py

Stages whose outputs exist are skipped on a rerun (training resumes from its last checkpoint); delete
``--work_dir`` to start over. ``--n_train`` / ``--n_eval`` trade time for precision.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from g4t.cli import arg, parse_args, split_list
from g4t.data.augment import rename_tools
from g4t.data.build import session_key
from g4t.data.io import atomic_write_json
from g4t.train.config import CONFIG_FILE
from g4t.train.trainer import has_weights

ROOT = Path(__file__).resolve().parent.parent

SPLITS = ("seen", "unseen", "natural")
# Result rows: the base model, the fine-tuned one, and the fine-tuned one with tool names constrained.
ROWS = ("zero_shot", "fine_tuned", "fine_tuned_constrained")
METRIC_KEYS = ("SR_t", "SR_act", "SR_args", "SR", "IoU")


@dataclass
class RealModelConfig:
    """Knobs of the run (defaults: about an hour on 2 CPU cores)."""

    work_dir: str = arg("output/real_model", help="Everything the run writes (stages are resumable).")
    results: str = arg(str(ROOT / "bench/results/real_model"), help="Results stem: .md, .json and .png are written.")
    base_model: str = arg("smollm2", help="Base model (Hub id, folder, .gguf file or smollm2).")
    captions: str = arg(str(ROOT / "data/magicbrush_dev_captions.json"), help="Caption list {file_name, caption}.")
    natural: str = arg(
        str(ROOT / "bench/data/natural_requests.jsonl"), help="Hand-written requests (teacher-reply format)."
    )
    unseen_tools: list[str] = arg(
        default_factory=lambda: [
            "Text Detection On Image",
            "Segment the given object",
            "Line Detection On Image",
            "Predict Normal Map On Image",
            "Generate Image Condition On Normal Map",
        ],
        help="Tools held out of training entirely (the unseen split uses them).",
    )
    n_train: int = arg(1150, help="Training records.")
    answer_share: float = arg(
        0.3, help="Share of final-answer (no tool) records in the training set; the rest call a tool."
    )
    chitchat_share: float | None = arg(
        None,
        help="Share of the final-answer records that answer chit-chat, the rest relaying a tool's result "
        "(default: as the teacher's data has them).",
    )
    balance_tools: bool = arg(
        False, help="Spread the tool-call records evenly over the tools (default: as the teacher's data has them)."
    )
    rename_tools: float = arg(
        0.0,
        help="Share of the tools in training prompts given a made-up name (g4t.data.augment.rename_tools), so the "
        "model learns to choose a tool by its description; 0: the published names only. Evaluation keeps them.",
    )
    chain_targets: bool = arg(
        True,
        help="Train a record cut before a chain of tool calls (a condition tool, then the tool it feeds) to write "
        "the whole chain, as the published val/test ground truth scores it from one generation "
        "(generate_annotations.py --chain_targets), and let inference run past 'Observation:' as the published "
        "inference.py does (the model ends its reply with EOS). False: the next call only, stopped at "
        "'Observation:', which caps SR on chain records at 0.",
    )
    negatives_ratio: float = arg(0.6, help="No-tool chit-chat conversations per tool conversation (alpaca_ratio).")
    sessions: bool = arg(
        True,
        help="Training records in sessions (generate_annotations.py --session_prompts: one image, one tool list, "
        "several requests), trained with lora_finetune.py --share_prefix, which computes each shared prompt once. "
        "--n_train then takes whole sessions in random order, as the teacher's data has them (--answer_share, "
        "--chitchat_share and --balance_tools do not apply).",
    )
    n_eval: int = arg(60, help="Records per evaluation split (same records for zero-shot and fine-tuned).")
    curve_points: int = arg(3, help="Checkpoints kept along training, each evaluated for the learning curve.")
    curve_n: int = arg(30, help="Seen-split records evaluated at each checkpoint of the curve.")
    template: str = arg("gpt4tools", help="Conversation template (gpt4tools, chat, ...).")
    full_finetune: bool = arg(
        True,
        help="Train every weight (lora_finetune.py --full_finetune; the --lora_* options do not apply) and "
        "evaluate the saved model folder; False: a LoRA adapter on the base model.",
    )
    lora_r: int = arg(16, help="LoRA rank.")
    lora_alpha: int = arg(32, help="LoRA alpha.")
    lora_target_modules: str = arg("all-linear", help="LoRA target modules.")
    lora_layers: int = arg(10, help="Adapt only the last N layers (0: all).")
    learning_rate: float | None = arg(None, help="Peak learning rate (default: 2e-4 fully, 1e-3 with LoRA).")
    num_epochs: int = arg(1, help="Epochs over the training records.")
    train_on_chitchat: bool = arg(
        True, help="Train on the text of chit-chat answers (False: only on the decision to answer without a tool)."
    )
    micro_batch_size: int = arg(16, help="Samples per forward pass.")
    batch_size: int = arg(16, help="Samples per optimizer step.")
    warmup_steps: int = arg(3, help="Warmup steps.")
    dtype: str = arg("auto", help="Training and inference precision (auto: bf16 where the CPU has bf16 units).")
    constrain_tools: bool = arg(
        True,
        help="Also evaluate the fine-tuned model with inference.py --constrain_tools (every 'Action:' line may only "
        "name a tool listed in its prompt; the model's scores choose among them): the 'fine-tuned, constrained' rows.",
    )
    max_new_tokens: int = arg(
        96, help="Generation budget per record (a tool call is about 30 tokens, a two-call chain about 80)."
    )
    seed: int = arg(0, help="Seed of the teacher, splits and sampling.")

    def __post_init__(self) -> None:
        self.unseen_tools = split_list(self.unseen_tools)
        if self.learning_rate is None:
            self.learning_rate = 2e-4 if self.full_finetune else 1e-3
        if not 0 <= self.answer_share < 1:
            raise ValueError(f"--answer_share must be in [0, 1), got {self.answer_share}")
        if self.chitchat_share is not None and not 0 <= self.chitchat_share <= 1:
            raise ValueError(f"--chitchat_share must be in [0, 1], got {self.chitchat_share}")


def _run(cmd: list[str], log: Path, desc: str, total: int | None = None, pattern: str | None = None) -> float:
    """Run a project script, its output to ``log``; a progress bar follows ``pattern`` (``(\\d+)/``) lines."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t = time.time()
    bar = tqdm(total=total, desc=desc, unit="step" if pattern else "it", leave=True, dynamic_ncols=True)
    rx = re.compile(pattern) if pattern else None
    with log.open("w", buffering=1) as f:  # line by line, so the log can be followed while it runs
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ, text=True, bufsize=1
        )
        for line in proc.stdout:
            f.write(line)
            if rx and (m := rx.search(line)):
                bar.n = int(m.group(1))
                bar.refresh()
        proc.wait()
    bar.close()
    if proc.returncode:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        sys.exit(f"failed ({proc.returncode}): {shlex.join(cmd)}\n{tail}")
    return time.time() - t


def _uses(record: dict, tools: set[str]) -> bool:
    """Whether a record's conversation calls one of ``tools`` (remaining steps or earlier in the prompt)."""
    called = set(record.get("Action") or []) | set(re.findall(r"^Action: (.+)$", record["instruction"], re.M))
    return bool(called & tools)


def make_data(cfg: RealModelConfig, work: Path) -> dict[str, Path]:
    """Teacher replies -> training records and the three evaluation splits (each file skipped when present)."""
    data = work / "data"
    out = {"train": data / "train.json", **{s: data / f"eval_{s}.json" for s in SPLITS}}
    built = ["train_all", "train_all_val_seen", "train_all_test_unseen"]
    built += ["natural_train_unused_val_seen", "natural_train_unused_test_unseen"]
    build_knobs = ("seed", "unseen_tools", "negatives_ratio", "sessions", "chain_targets", "captions", "natural")
    pick_knobs = ("n_train", "answer_share", "chitchat_share", "balance_tools", "rename_tools")
    if not all((data / f"{name}.json").is_file() for name in built):
        _build_records(cfg, data)
        _stamp(cfg, data / "train_all.recipe.json", build_knobs)
    _check_stamp(cfg, data / "train_all.recipe.json", build_knobs, data / "train_all.json")
    if not out["train"].is_file():
        picked = pick_train(json.loads((data / "train_all.json").read_text()), cfg)
        atomic_write_json(out["train"], rename_tools(picked, cfg.rename_tools, cfg.seed))
        _stamp(cfg, data / "train.recipe.json", build_knobs + pick_knobs)
    _check_stamp(cfg, data / "train.recipe.json", build_knobs + pick_knobs, out["train"])
    unseen = set(cfg.unseen_tools)
    pools = {
        "seen": lambda: json.loads((data / "train_all_val_seen.json").read_text()),
        "unseen": lambda: [
            r for r in json.loads((data / "train_all_test_unseen.json").read_text()) if _uses(r, unseen)
        ],
        "natural": lambda: (
            json.loads((data / "natural_train_unused_val_seen.json").read_text())
            + json.loads((data / "natural_train_unused_test_unseen.json").read_text())
        ),
    }
    for split, pool in pools.items():
        if out[split].is_file():  # kept, so a new training mix is scored on the same records
            continue
        records = pool()
        picked = random.Random(f"{cfg.seed}-{split}").sample(records, min(cfg.n_eval, len(records)))
        for i, r in enumerate(picked):  # ids unique per file (the natural split merges two files)
            r["id"] = i
        atomic_write_json(out[split], picked)
    return out


# Knobs added after a stamp was written: the value the output was made with before the knob existed.
_BEFORE_KNOB = {"rename_tools": 0.0, "chain_targets": False}


def _stamp(cfg: RealModelConfig, path: Path, knobs: tuple[str, ...]) -> None:
    """Record the knobs a stage's output was made with."""
    atomic_write_json(path, {k: getattr(cfg, k) for k in knobs})


def _check_stamp(cfg: RealModelConfig, path: Path, knobs: tuple[str, ...], output: Path) -> None:
    """Refuse to reuse ``output`` made with other knobs (a rerun would mix recipes); unstamped outputs pass."""
    if not path.is_file():
        return
    saved = {**_BEFORE_KNOB, **json.loads(path.read_text())}
    diffs = [f"--{k} {saved[k]!r} -> {getattr(cfg, k)!r}" for k in knobs if k in saved and saved[k] != getattr(cfg, k)]
    if diffs:
        sys.exit(
            f"{output} was made with other settings ({'; '.join(diffs)}); use another --work_dir (copy its "
            "eval_*.json and pred/zero_shot_* there to score the new recipe on the same records) or delete it"
        )


def _kind(record: dict) -> tuple[str, str | None]:
    """``("call", tool)``, ``("relay", None)`` (final answer after a tool) or ``("chitchat", None)``."""
    from g4t.agent import parse_reply
    from g4t.chat_prompt import parse_published_prompt

    reply = parse_reply(record["output"])
    if reply.kind == "tool":
        return "call", reply.tool
    return ("relay" if parse_published_prompt(record["instruction"]).steps else "chitchat"), None


def pick_train(records: list[dict], cfg: RealModelConfig) -> list[dict]:
    """``n_train`` records: ``answer_share`` final answers (``chitchat_share`` of them chit-chat), the rest tool
    calls, spread evenly over the tools when ``balance_tools`` (round robin over shuffled per-tool lists),
    else drawn at random as the teacher's data has them."""
    rng = random.Random(f"{cfg.seed}-train")
    if cfg.sessions:
        return _pick_sessions(records, cfg.n_train, rng)
    groups: dict[str, list[dict]] = {}
    for r in records:
        kind, tool = _kind(r)
        groups.setdefault(tool if kind == "call" else kind, []).append(r)
    for g in groups.values():
        rng.shuffle(g)
    n_answers = round(cfg.n_train * cfg.answer_share)
    chat, relay = groups.get("chitchat", []), groups.get("relay", [])
    share = len(chat) / max(1, len(chat) + len(relay)) if cfg.chitchat_share is None else cfg.chitchat_share
    n_chat = min(round(n_answers * share), len(chat))
    chosen = chat[:n_chat] + relay[: n_answers - n_chat]
    tools = {k: v for k, v in groups.items() if k not in ("chitchat", "relay")}
    n_calls = cfg.n_train - len(chosen)
    if cfg.balance_tools:
        calls: list[dict] = []
        while len(calls) < n_calls and any(tools.values()):
            for tool in sorted(tools):
                if tools[tool] and len(calls) < n_calls:
                    calls.append(tools[tool].pop())
    else:
        every = [r for g in tools.values() for r in g]
        calls = rng.sample(every, min(n_calls, len(every)))
    chosen += calls
    rng.shuffle(chosen)
    return chosen


def _pick_sessions(records: list[dict], n: int, rng: random.Random) -> list[dict]:
    """Whole sessions (records whose prompts agree up to the request) in random order, until ``n`` records."""
    sessions: dict[str, list[dict]] = {}
    for r in records:
        sessions.setdefault(session_key(r), []).append(r)
    order = sorted(sessions)
    rng.shuffle(order)
    chosen: list[dict] = []
    for key in order:
        if len(chosen) >= n:
            break
        chosen += sessions[key][: n - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def _build_records(cfg: RealModelConfig, data: Path) -> None:
    """Teacher replies and chit-chat -> ``train_all*.json`` and the natural split's files."""
    from g4t.data.offline_teacher import extra_tools, generator_tools, write_negatives, write_replies

    data.mkdir(parents=True, exist_ok=True)
    natural_images = {json.loads(line)["file_name"] for line in Path(cfg.natural).read_text().splitlines() if line}
    captions = [c for c in json.loads(Path(cfg.captions).read_text()) if c["file_name"] not in natural_images]
    n_lines = write_replies(captions, data / "replies.jsonl", tools=generator_tools(), seed=cfg.seed)
    n_neg = write_negatives(captions, data / "negatives.json", seed=cfg.seed)
    print(f"teacher: {n_lines} requests and {n_neg} chit-chat exchanges for {len(captions)} captions")
    py = sys.executable
    common = ["--complement", "--seed", str(cfg.seed), "--tools", ",".join(extra_tools())]
    _run(
        [
            py,
            "scripts/generate_annotations.py",
            "--input_path",
            str(data / "replies.jsonl"),
            "--output_path",
            str(data / "train_all.json"),
            "--insert_alpaca",
            "--alpaca_path",
            str(data / "negatives.json"),
            "--alpaca_ratio",
            str(cfg.negatives_ratio),
            "--val_ratio",
            "0.12",
            "--test_ratio",
            "0.15",
            "--unseen_tools",
            ",".join(cfg.unseen_tools),
            *(["--session_prompts"] if cfg.sessions else []),
            *(["--chain_targets"] if cfg.chain_targets else []),
            *common,
        ],
        data / "annotate.log",
        "build records",
    )
    _run(
        [
            py,
            "scripts/generate_annotations.py",
            "--input_path",
            cfg.natural,
            "--output_path",
            str(data / "natural_train_unused.json"),
            "--val_ratio",
            "0.5",
            "--test_ratio",
            "0.499",
            *common,
        ],
        data / "annotate_natural.log",
        "build natural split",
    )


def evaluate(
    cfg: RealModelConfig, work: Path, name: str, ann: Path, model: str | None = None, constrain: bool = False
) -> dict:
    """``inference.py`` + ``evaluate_result.py`` on one split; returns the figures (the published metrics and
    inference time cached in a JSON file; the cheap per-record scores are always made afresh).

    ``model``: None for the base model, else an adapter (LoRA) or a fully fine-tuned model folder;
    ``constrain``: decode with ``inference.py --constrain_tools``."""
    pred = work / "pred"
    figures = pred / name / "figures.json"
    if figures.is_file():
        result = json.loads(figures.read_text())
    else:
        n = len(json.loads(ann.read_text()))
        py = sys.executable
        base, lora = (model, "none") if model and cfg.full_finetune else (cfg.base_model, model or "none")
        infer = [py, "inference.py", "--base_model", base, "--lora_model", lora, "--ann_path", str(ann)]
        infer += ["--save_name", name, "--save_path", str(pred), "--max_new_tokens", str(cfg.max_new_tokens)]
        infer += ["--batch_size", "8", "--llm_device", "cpu", "--dtype", cfg.dtype, "--resume"]
        infer += ["--template", cfg.template, *(["--stop", ""] if cfg.chain_targets else [])]
        infer += ["--constrain_tools"] if constrain else []
        pattern = r"chunk \d+:\s+\d+%\|[^|]*\|\s*(\d+)/\d+"
        seconds = _run(infer, pred / f"{name}.infer.log", f"infer {name}", n, pattern)
        _run(
            [py, "evaluate_result.py", "--ann_path", str(ann), "--save_name", name, "--save_path", str(pred)],
            pred / f"{name}.eval.log",
            f"evaluate {name}",
        )
        report = json.loads((pred / name / f"{name}_report.json").read_text())
        result = {k: report["published"][k] for k in METRIC_KEYS}
        result.update(n=n, inference_s=round(seconds, 1))
        atomic_write_json(figures, result)
    scored = _scores(ann, pred / name / f"{name}.json")
    return result | {k: scored[k] for k in ("tool_call_SR", "tool_choice_acc", "n_tool_calls", "by_kind")}


OUTCOMES = ("right", "said_yes", "said_no", "wrong_tool", "wrong_args", "bad_format")


def _eval_kind(record: dict) -> str:
    """``_kind`` refined for scoring: a tool call is a ``call`` (first step), a ``continue`` (the next step
    after an observation) or a ``chain`` (the ground truth holds two steps or more from one generation)."""
    from g4t.chat_prompt import parse_published_prompt

    if len(record.get("Action") or []) > 1:
        return "chain"
    kind, _ = _kind(record)
    if kind == "call" and parse_published_prompt(record["instruction"]).steps:
        return "continue"
    return kind


def _scores(ann: Path, predictions: Path) -> dict:
    """Per-sample published scoring of ``predictions`` on the records of ``ann``: SR, tool-call SR (SR over
    records whose ground truth calls a tool), tool-choice accuracy (first predicted action), and ``by_kind``:
    per record kind (``_eval_kind``) how many are right or why not (``OUTCOMES``: a tool call where none was
    due, no tool call where one was, a wrong first tool, a right tool with wrong arguments or steps, a
    final answer missing the published format)."""
    from g4t.evaluation.metrics import extract_prediction, score_sample

    gt = {r["id"]: r for r in json.loads(ann.read_text())}
    success, calls, choice = [], [], []
    by_kind: dict[str, dict[str, int]] = {}
    for p in json.loads(predictions.read_text()):
        g = gt.get(p["id"])
        if g is None:
            continue
        text, _ = extract_prediction(p["output"], g["instruction"])
        success.append(score_sample(g["output"], text).success)
        first = re.search(r"Action: (.*)", text)
        if g.get("Action"):
            calls.append(success[-1])
            choice.append(float(bool(first) and first.group(1).strip() == g["Action"][0]))
        if success[-1]:
            outcome = "right"
        elif not g.get("Action"):
            outcome = "said_yes" if first else "bad_format"  # no ``Thought: ... No`` + ``AI:`` answer
        elif not first:
            outcome = "said_no"
        else:
            outcome = "wrong_tool" if first.group(1).strip() != g["Action"][0] else "wrong_args"
        counts = by_kind.setdefault(_eval_kind(g), dict.fromkeys(("n", *OUTCOMES), 0))
        counts["n"] += 1
        counts[outcome] += 1
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    return {
        "SR": mean(success),
        "tool_call_SR": mean(calls),
        "tool_choice_acc": mean(choice),
        "n_tool_calls": len(calls),
        "by_kind": by_kind,
    }


def train(cfg: RealModelConfig, work: Path, data: Path) -> tuple[Path, dict]:
    out, other = (work / "model", work / "adapter") if cfg.full_finetune else (work / "adapter", work / "model")
    if other.exists():  # its fine-tuned predictions are cached in work/pred and would be reported as this recipe's
        sys.exit(f"{work} holds {other}, trained with --full_finetune {not cfg.full_finetune}; use another --work_dir")
    n = len(json.loads(data.read_text()))
    steps = max(1, -(-n // cfg.batch_size) * cfg.num_epochs)  # the last, partial batch is a step too
    if not has_weights(out):
        cmd = [sys.executable, "lora_finetune.py", "--base_model", cfg.base_model, "--data_path", str(data)]
        cmd += ["--output_dir", str(out), "--prompt_template_name", cfg.template, "--val_set_size", "0"]
        cmd += ["--batch_size", str(cfg.batch_size), "--micro_batch_size", str(cfg.micro_batch_size)]
        cmd += ["--num_epochs", str(cfg.num_epochs), "--learning_rate", str(cfg.learning_rate)]
        if cfg.full_finetune:
            cmd += ["--full_finetune"]
        else:
            cmd += ["--lora_r", str(cfg.lora_r), "--lora_alpha", str(cfg.lora_alpha)]
            cmd += ["--lora_layers", str(cfg.lora_layers), "--lora_target_modules", cfg.lora_target_modules]
        cmd += ["--packing", "--cutoff_len", "1024"]
        cmd += ["--warmup_steps", str(cfg.warmup_steps), "--lr_scheduler_type", "cosine", "--dtype", cfg.dtype]
        every = max(1, steps // cfg.curve_points)
        cmd += ["--logging_steps", "2", "--save_steps", str(every), "--save_total_limit", str(cfg.curve_points + 1)]
        cmd += ["--seed", str(cfg.seed), *(["--share_prefix"] if cfg.sessions else [])]
        cmd += ["--train_on_chitchat", str(cfg.train_on_chitchat)]
        cmd += ["--resume_from_checkpoint", "last"]
        _run(cmd, work / "train.log", "fine-tune", steps, r"step (\d+)/\d+")
    saved = json.loads((out / CONFIG_FILE).read_text())["resolved"]
    tokens = saved["train"]["tokens"]
    runtime = saved.get("train_runtime_s") or 0.0
    figures = {
        "samples": n,
        "tokens": tokens,
        "loss_tokens": saved["train"]["label_tokens"],
        "computed_tokens": (saved.get("shared_prefix") or {}).get("computed_tokens", tokens),
        "steps": saved.get("global_step"),
        "minutes": round(runtime / 60, 1),
        "tok_per_s": round(tokens * cfg.num_epochs / runtime, 1) if tokens and runtime else None,
        "compute_dtype": saved.get("compute_dtype"),
        "final_loss": saved.get("train_loss"),
    }
    return out, figures


def _curve_figures(ann: Path, predictions: Path) -> dict:
    scored = _scores(ann, predictions)
    return {"SR": scored["SR"], "tool_call_SR": scored["tool_call_SR"]}


def curve(cfg: RealModelConfig, work: Path, seen: Path, adapter: Path, batch: int, n_train: int) -> list[dict]:
    """SR on the first ``curve_n`` seen records before training, at every kept checkpoint and at the end.

    The two ends reuse the zero-shot and fine-tuned predictions of the seen split; only the
    intermediate checkpoints are run again.
    """
    subset = work / "data" / "curve_seen.json"
    if not subset.is_file():
        atomic_write_json(subset, json.loads(seen.read_text())[: cfg.curve_n])
    pred = work / "pred"
    out = [{"samples": 0, **_curve_figures(subset, pred / "zero_shot_seen" / "zero_shot_seen.json")}]
    final = json.loads((adapter / CONFIG_FILE).read_text())["resolved"]["global_step"]
    for ckpt in sorted(adapter.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(ckpt.name.split("-")[1])
        if step < final:
            name = f"curve_{step * batch}"
            evaluate(cfg, work, name, subset, str(ckpt))
            out.append({"samples": step * batch, **_curve_figures(subset, pred / name / f"{name}.json")})
    out.append({"samples": n_train, **_curve_figures(subset, pred / "fine_tuned_seen" / "fine_tuned_seen.json")})
    return out


def _label(row: str) -> str:
    return row.replace("_constrained", ", constrained").replace("_", "-")


def report(cfg: RealModelConfig, result: dict) -> str:
    """The Markdown table (paper's shape) plus the training row."""
    head = "| model | split | n | " + " | ".join(METRIC_KEYS) + " | tool-call SR | tool choice |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731
    rows = [row for row in ROWS if row in result]
    for row in rows:
        for split in SPLITS:
            f = result[row][split]
            cells = [pct(f[k]) for k in METRIC_KEYS] + [pct(f["tool_call_SR"]), pct(f["tool_choice_acc"])]
            lines.append(f"| {_label(row)} | {split} | {f['n']} | " + " | ".join(cells) + " |")
    for row in (row for row in rows if row.startswith("fine_tuned")):
        lines += ["", f"{_label(row).capitalize()}, by record kind (right, or why not):", ""]
        lines += [
            "| split | kind | n | right | tool call not due | no tool call | wrong tool | wrong args/steps | bad format |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|---|"]
        for split in SPLITS:
            for kind, c in sorted(result[row][split]["by_kind"].items()):
                lines.append(f"| {split} | {kind} | {c['n']} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    t = result["train"]
    lines += [
        "",
        f"Training: {t['samples']} samples, {t['tokens']:,} tokens ({t['loss_tokens']:,} with loss"
        + (
            f"; {t['computed_tokens']:,} computed, shared prompts once"
            if t.get("computed_tokens", t["tokens"]) < t["tokens"]
            else ""
        )
        + f"), {t['steps']} steps, "
        f"{t['minutes']} min, {t['tok_per_s']} tok/s, {t['compute_dtype']}, final loss {t['final_loss']:.4f}.",
        f"Recipe: {json.dumps(result['recipe'])}",
        f"{'Model' if result['recipe'].get('full_finetune') else 'Adapter'}: {result['adapter']}",
        "",
        "Learning curve (seen split, first records): "
        + ", ".join(
            f"{p['samples']} samples: SR {pct(p['SR'])}, tool-call SR {pct(p['tool_call_SR'])}" for p in result["curve"]
        ),
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [*METRIC_KEYS, "tool_call_SR", "tool_choice_acc"]
    fig, axes = plt.subplots(1, len(SPLITS) + 1, figsize=(5 * (len(SPLITS) + 1), 3.6), sharey=True)
    rows = [row for row in ROWS if row in result]
    width = 0.8 / len(rows)
    for ax, split in zip(axes, SPLITS, strict=False):
        for i, row in enumerate(rows):
            values = [result[row][split][k] or 0.0 for k in keys]
            ax.bar([x + width * i for x in range(len(keys))], values, width=width, label=_label(row))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{split} (n={result['fine_tuned'][split]['n']})")
        ax.set_ylim(0, 1)
    axes[0].legend()
    points = result["curve"]
    for key in ("SR", "tool_call_SR"):
        axes[-1].plot([p["samples"] for p in points], [p[key] or 0.0 for p in points], marker="o", label=key)
    axes[-1].set_xlabel("training samples")
    axes[-1].set_title("learning curve (seen subset)")
    axes[-1].legend()
    fig.suptitle(
        f"SmolLM2-135M-Instruct, {result['train']['samples']} training samples, {result['train']['minutes']} min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    (cfg,) = parse_args(RealModelConfig, description=__doc__.split("\n\n")[0])
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    files = make_data(cfg, work)
    result: dict = {"zero_shot": {}, "fine_tuned": {}}
    for split in SPLITS:
        result["zero_shot"][split] = evaluate(cfg, work, f"zero_shot_{split}", files[split])
    adapter, result["train"] = train(cfg, work, files["train"])
    for split in SPLITS:
        result["fine_tuned"][split] = evaluate(cfg, work, f"fine_tuned_{split}", files[split], str(adapter))
    if cfg.constrain_tools:
        result["fine_tuned_constrained"] = {
            split: evaluate(cfg, work, f"fine_tuned_constrained_{split}", files[split], str(adapter), constrain=True)
            for split in SPLITS
        }
    result["curve"] = curve(cfg, work, files["seen"], adapter, cfg.batch_size, result["train"]["samples"])
    result["adapter"] = str(adapter)
    skip = {"work_dir", "results", "captions", "natural"} | (
        {k for k in asdict(cfg) if k.startswith("lora_")} if cfg.full_finetune else set()
    )
    result["recipe"] = {k: v for k, v in asdict(cfg).items() if k not in skip}
    stem = Path(cfg.results)
    stem.parent.mkdir(parents=True, exist_ok=True)
    table = report(cfg, result)
    print(table)
    stem.with_suffix(".md").write_text(
        "# bench/real_model.py: SmolLM2-135M-Instruct, zero-shot vs fine-tuned (SR etc. in %)\n\n" + table + "\n"
    )
    atomic_write_json(stem.with_suffix(".json"), result, indent=1)
    plot(result, stem.with_suffix(".png"))
    print(f"wrote {stem}.md, .json, .png")


if __name__ == "__main__":
    main()
