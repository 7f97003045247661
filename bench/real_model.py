"""The recipe of the shipped GPT4Tools model, and the paper's Table 1 in miniature, offline, on a real
pretrained LLM (SmolLM2-135M-Instruct). Not a test: one run on a CPU, no downloads, every step through the
project's own scripts.

1. **Evaluation records** (``bench/data/eval/``, committed, made once by ``make_eval`` and then only read):
   *seen* (training tools), *unseen* (conversations that use one of ``--unseen_tools``, never trained),
   *natural* (hand-written requests, ``bench/data/natural_requests.jsonl``) and *followup* (hand-written
   turns after an earlier tool result: "thanks!", a general question, a further tool request), 220 each.
   ``images.json`` lists their images; training never sees one of them.
2. **Training data.** The offline teacher (``g4t.data.offline_teacher``) on every other MagicBrush caption,
   built by ``scripts/generate_annotations.py`` in sessions (one image, one tool list, several requests;
   half of the later ones after the earlier exchanges in the chat history), whole chains as targets.
3. **Fine-tune.** ``lora_finetune.py --full_finetune`` on ``--n_train`` records (bf16 autocast where the CPU
   has bf16 units), checkpoints kept for the learning curve.
4. **Ship.** The fine-tune as a rank-``--ship_rank`` delta on the packaged base (``g4t.llm.delta``), merged
   back: the model every row is measured on. Copy ``<work_dir>/delta/*`` to ``models/gpt4tools-smollm2-135m/``
   to ship it (``--base_model gpt4tools-smollm2``).
5. **Evaluate.** ``inference.py`` + ``evaluate_result.py`` on each split: the shipped model constrained to
   listed tool names (``--constrain_tools``, as the demo runs it), the base model zero-shot (predictions
   committed next to the records), the learning curve and the full weights on the first ``--curve_n`` seen
   records, and the shipped model unconstrained on ``--unconstrained_splits``.
6. **Report.** The paper's metrics per split, tool-call SR, right first tool, the follow-ups answered
   without a tool, the counts by record kind, training cost and the learning curve (minutes to each point)
   to ``bench/results/real_model.md``, ``.json`` and ``.png``.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 python bench/real_model.py     # about 2.5 h on 2 cores

Stages whose outputs exist are skipped on a rerun (training resumes from its last checkpoint); delete
``--work_dir`` to start over.
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
from g4t.data.build import pick_sessions
from g4t.data.io import atomic_write_json, atomic_write_text
from g4t.evaluation.kinds import OUTCOMES
from g4t.train.config import CONFIG_FILE
from g4t.train.trainer import has_weights

ROOT = Path(__file__).resolve().parent.parent

SPLITS = ("seen", "unseen", "natural", "followup")
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
    followups: str = arg(
        str(ROOT / "bench/data/followups.jsonl"), help="Hand-written follow-up turns on the natural images."
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
    n_train: int = arg(4000, help="Training records (whole sessions in random order).")
    history_share: float = arg(
        0.5,
        help="Share of a session's later requests whose chat history holds the exchanges before them "
        "(generate_annotations.py --history_share): requests and 'thanks!' in the middle of a chat.",
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
    n_eval: int = arg(220, help="Records per evaluation split when the committed records are made (make_eval).")
    curve_points: int = arg(3, help="Checkpoints kept along training, each evaluated for the learning curve.")
    curve_n: int = arg(60, help="Seen-split records evaluated at each checkpoint of the curve.")
    template: str = arg("gpt4tools", help="Conversation template (gpt4tools, chat, ...).")
    learning_rate: float = arg(3e-4, help="Peak learning rate (full fine-tuning, cosine decay).")
    num_epochs: int = arg(1, help="Epochs over the training records.")
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

    unconstrained_splits: list[str] = arg(
        default_factory=lambda: ["seen"],
        help="Splits also scored without --constrain_tools (the 'fine-tuned' rows: what the constraint changes; the "
        "demo runs local models constrained). Any of seen, unseen, natural, followup.",
    )
    ship_rank: int = arg(
        64, help="Rank of the low-rank delta the fine-tune is shipped as (g4t.llm.delta; 64: about 45 MB in fp16)."
    )

    def __post_init__(self) -> None:
        self.unseen_tools = split_list(self.unseen_tools)
        self.unconstrained_splits = split_list(self.unconstrained_splits)
        if unknown := set(self.unconstrained_splits) - set(SPLITS):
            raise ValueError(f"--unconstrained_splits: unknown {sorted(unknown)}; use some of {', '.join(SPLITS)}")


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


EVAL_DIR = ROOT / "bench/data/eval"
EXCLUDED = EVAL_DIR / "images.json"  # every image of the evaluation records: never in training
ZERO_SHOT_DIR = EVAL_DIR / "zero_shot"  # the base model's predictions on them, computed once


def make_eval(cfg: RealModelConfig, only: tuple[str, ...] = ()) -> dict[str, Path]:
    """The committed evaluation records (``bench/data/eval/<split>.json``), made once and then only read, so
    every run and recipe is scored on the same files. Missing files are made (``--n_eval`` per split):

    * *seen* / *unseen*: one build of the offline teacher's replies on the MagicBrush captions (``--seed``),
      split by image (12 % val: training tools; 20 % test: conversations that use ``--unseen_tools``);
    * *natural*: the hand-written requests of ``--natural`` (their own 60 images);
    * *followup*: the hand-written follow-ups of ``--followups`` (a turn after an earlier tool result on a
      natural image: "thanks!", a general question, or a further tool request).

    ``images.json`` lists every image of these builds (val, test and natural); the training build leaves
    them out, so training is image-disjoint from every split."""
    out = {s: EVAL_DIR / f"{s}.json" for s in SPLITS}
    if all(p.is_file() for p in out.values()) and EXCLUDED.is_file() and not only:
        return out
    from g4t.data.offline_teacher import generator_tools, write_negatives, write_replies

    tmp = Path(cfg.work_dir) / "eval_build"
    tmp.mkdir(parents=True, exist_ok=True)
    natural = [json.loads(line) for line in Path(cfg.natural).read_text().splitlines() if line.strip()]
    natural_images = {r["file_name"] for r in natural}
    captions = [c for c in json.loads(Path(cfg.captions).read_text()) if c["file_name"] not in natural_images]
    write_replies(captions, tmp / "replies.jsonl", tools=generator_tools(), seed=cfg.seed)
    write_negatives(captions, tmp / "negatives.json", seed=cfg.seed)
    _annotate(cfg, tmp / "replies.jsonl", tmp / "all.json", ["--val_ratio", "0.12", "--test_ratio", "0.2"],
              negatives=tmp / "negatives.json")  # fmt: skip
    _annotate(cfg, Path(cfg.natural), tmp / "natural.json", ["--val_ratio", "0.5", "--test_ratio", "0.499"])
    excluded = set(natural_images)
    for name in ("all_val_seen", "all_test_unseen"):
        excluded |= {r["filename"] for r in json.loads((tmp / f"{name}.json").read_text()) if r.get("filename")}
    unseen = set(cfg.unseen_tools)
    pools = {
        "seen": lambda: json.loads((tmp / "all_val_seen.json").read_text()),
        "unseen": lambda: [r for r in json.loads((tmp / "all_test_unseen.json").read_text()) if _uses(r, unseen)],
        "natural": lambda: (
            json.loads((tmp / "natural_val_seen.json").read_text())
            + json.loads((tmp / "natural_test_unseen.json").read_text())
        ),
        "followup": lambda: followup_records(cfg, natural),
    }
    if only:
        pools = {k: v for k, v in pools.items() if k in only}
    EVAL_DIR.mkdir(parents=True, exist_ok=True)
    for split, pool in pools.items():
        if out[split].is_file():
            continue
        records = pool()
        picked = random.Random(f"{cfg.seed}-{split}").sample(records, min(cfg.n_eval, len(records)))
        for i, r in enumerate(picked):  # ids unique per file (the natural split merges two files)
            r["id"] = i
        atomic_write_json(out[split], picked)
    if not EXCLUDED.is_file():
        atomic_write_json(EXCLUDED, sorted(excluded), indent=0)
    return out


def followup_records(cfg: RealModelConfig, natural: list[dict]) -> list[dict]:
    """Evaluation records of the hand-written follow-ups (``--followups``): the chat history holds the image
    and the earlier request with its result (``Human:`` / ``AI:``, as the demo's memory writes it); the
    ground truth is a direct answer (``expect: answer``) or the tool call (``expect: tool``)."""
    from g4t.data.build import (
        Conversation,
        Sample,
        Session,
        build_conversation,
        eval_record,
        random_image_name,
        tool_list,
    )
    from g4t.data.catalog import registered_tools, tool_catalog
    from g4t.data.offline_teacher import extra_tools
    from g4t.data.parse import parse_teacher_reply
    from g4t.data.teacher import published_tool_names
    from g4t.prompts import TRAINING

    catalog = tool_catalog(list(registered_tools()))
    pool = [n for n in dict.fromkeys(published_tool_names() + extra_tools()) if n in catalog]
    n_args = {n: t.n_args for n, t in catalog.items()}
    needs_image = {n: t.needs_image for n, t in catalog.items()}
    by_image = {r["file_name"]: r for r in natural}
    rng = random.Random(f"{cfg.seed}-followup")
    records = []
    for line in Path(cfg.followups).read_text().splitlines():
        if not line.strip():
            continue
        f = json.loads(line)
        image = by_image[f["file_name"]]
        requests = {int(m.group(1)): m.group(0) for m in re.finditer(r"^(\d+)\. .*$", image["instructions"], re.M)}
        (prev,) = parse_teacher_reply(requests[f["previous"]], n_args, needs_image)
        calls = [prev.tool]
        if f["expect"] == "tool":
            (nxt,) = parse_teacher_reply(f'1. "{f["followup"]}", {f["call"]}', n_args, needs_image)
            calls.append(nxt.tool)
        tools = tool_list(calls[-1], catalog, pool, rng)
        tools += [t for c in calls for t in (c, catalog[c].condition) if t and t not in tools]
        session = Session(tools, random_image_name(rng), image["caption"], image["file_name"])

        def sample(inst):
            return Sample(inst.instruction, inst.tool, inst.args, image["caption"], image["file_name"], "", inst.raw)

        before = build_conversation(sample(prev), catalog, pool, rng, session=session)
        if f["expect"] == "tool":
            conv = build_conversation(sample(nxt), catalog, pool, rng, session=session)
        else:
            conv = Conversation(tools=session.tools, chat_history="", user_input=f["followup"], answer=f["answer"],
                                caption=image["caption"], image=session.image, file_name=image["file_name"],
                                descriptions={n: catalog[n].description for n in session.tools})  # fmt: skip
        history = [TRAINING.image_history(session.image, image["caption"])]
        conv.chat_history = TRAINING.chat_history(
            [*history, TRAINING.exchange(before.user_input, before.answer.strip())]
        )
        record = eval_record(conv, 0, len(records))
        record["filename"] = image["file_name"]
        records.append(record)
    return records


def _annotate(cfg: RealModelConfig, replies: Path, output: Path, split_args: list[str], negatives: Path | None = None,
              train_args: list[str] = ()) -> None:  # fmt: skip
    """``scripts/generate_annotations.py`` on teacher replies (``--complement``, the bench's tools and seed)."""
    from g4t.data.offline_teacher import extra_tools

    cmd = [
        sys.executable,
        "scripts/generate_annotations.py",
        "--input_path",
        str(replies),
        "--output_path",
        str(output),
    ]
    cmd += ["--complement", "--seed", str(cfg.seed), "--tools", ",".join(extra_tools()), *split_args, *train_args]
    cmd += ["--unseen_tools", ",".join(cfg.unseen_tools)]
    if negatives:
        cmd += ["--insert_alpaca", "--alpaca_path", str(negatives), "--alpaca_ratio", str(cfg.negatives_ratio)]
    _run(cmd, output.with_suffix(".log"), f"build {output.stem}")


def make_data(cfg: RealModelConfig, work: Path) -> dict[str, Path]:
    """The evaluation records (``make_eval``) and the training records: the offline teacher on every caption
    that no evaluation record uses, ``--n_train`` records picked (each file skipped when present)."""
    out = {"train": work / "data" / "train.json", **make_eval(cfg)}
    data = work / "data"
    build_knobs = ("seed", "unseen_tools", "negatives_ratio", "chain_targets", "history_share", "captions")
    pick_knobs = ("n_train",)
    if not (data / "train_all.json").is_file():
        from g4t.data.offline_teacher import generator_tools, write_negatives, write_replies

        data.mkdir(parents=True, exist_ok=True)
        excluded = set(json.loads(EXCLUDED.read_text()))
        captions = [c for c in json.loads(Path(cfg.captions).read_text()) if c["file_name"] not in excluded]
        n_lines = write_replies(captions, data / "replies.jsonl", tools=generator_tools(), seed=cfg.seed)
        n_neg = write_negatives(captions, data / "negatives.json", seed=cfg.seed)
        print(f"teacher: {n_lines} requests and {n_neg} chit-chat exchanges for {len(captions)} training captions")
        train_args = ["--session_prompts", "--history_share", str(cfg.history_share)]
        train_args += ["--chain_targets"] if cfg.chain_targets else []
        _annotate(cfg, data / "replies.jsonl", data / "train_all.json", [], negatives=data / "negatives.json",
                  train_args=train_args)  # fmt: skip
        _stamp(cfg, data / "train_all.recipe.json", build_knobs)
    _check_stamp(cfg, data / "train_all.recipe.json", build_knobs, data / "train_all.json")
    if not out["train"].is_file():
        records = json.loads((data / "train_all.json").read_text())
        atomic_write_json(out["train"], pick_sessions(records, cfg.n_train, random.Random(f"{cfg.seed}-train")))
        _stamp(cfg, data / "train.recipe.json", build_knobs + pick_knobs)
    _check_stamp(cfg, data / "train.recipe.json", build_knobs + pick_knobs, out["train"])
    return out


def _stamp(cfg: RealModelConfig, path: Path, knobs: tuple[str, ...]) -> None:
    """Record the knobs a stage's output was made with."""
    atomic_write_json(path, {k: getattr(cfg, k) for k in knobs})


def _check_stamp(cfg: RealModelConfig, path: Path, knobs: tuple[str, ...], output: Path) -> None:
    """Refuse to reuse ``output`` made with other knobs (a rerun would mix recipes)."""
    saved = json.loads(path.read_text())
    diffs = [f"--{k} {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in knobs if saved.get(k) != getattr(cfg, k)]
    if diffs:
        sys.exit(f"{output} was made with other settings ({'; '.join(diffs)}); use another --work_dir or delete it")


def evaluate(
    cfg: RealModelConfig, work: Path, name: str, ann: Path, model: str | None = None, constrain: bool = False
) -> dict:
    """``inference.py`` + ``evaluate_result.py`` on one split; returns the figures (the published metrics and
    inference time cached in a JSON file; the cheap per-record scores are always made afresh).

    ``model``: None for the base model, else a model folder (the shipped merge, the full fine-tune or a
    checkpoint); ``constrain``: decode with ``inference.py --constrain_tools``."""
    # Zero-shot predictions of the default base on the committed records are committed next to them.
    pred = ZERO_SHOT_DIR if model is None and cfg.base_model == "smollm2" else work / "pred"
    figures = pred / name / "figures.json"
    if figures.is_file():
        result = json.loads(figures.read_text())
    else:
        n = len(json.loads(ann.read_text()))
        py = sys.executable
        infer = [py, "inference.py", "--base_model", model or cfg.base_model, "--lora_model", "none"]
        infer += ["--ann_path", str(ann)]
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


def _scores(ann: Path, predictions: Path) -> dict:
    """The published SR of ``predictions`` on the records of ``ann``, with the tool-call SR, the right first
    tool and the counts by record kind (``g4t.evaluation.kinds``: right, or why not)."""
    from g4t.evaluation.report import evaluate_predictions

    result = evaluate_predictions(json.loads(ann.read_text()), json.loads(predictions.read_text()))
    kinds = result.kinds
    rounded = lambda x: None if x is None else round(float(x), 4)  # noqa: E731
    return {
        "SR": rounded(result.published["success"]),
        "tool_call_SR": rounded(kinds.tool_call_sr),
        "tool_choice_acc": rounded(kinds.tool_choice),
        "n_tool_calls": len(kinds.calls),
        "by_kind": kinds.by_kind,
    }


def train(cfg: RealModelConfig, work: Path, data: Path) -> tuple[Path, dict]:
    """Full fine-tuning (``lora_finetune.py --full_finetune``, shared prompt prefixes computed once); resumes."""
    out = work / "model"
    n = len(json.loads(data.read_text()))
    steps = max(1, -(-n // cfg.batch_size) * cfg.num_epochs)  # the last, partial batch is a step too
    if not has_weights(out):
        cmd = [sys.executable, "lora_finetune.py", "--base_model", cfg.base_model, "--data_path", str(data)]
        cmd += ["--output_dir", str(out), "--prompt_template_name", cfg.template, "--val_set_size", "0"]
        cmd += ["--batch_size", str(cfg.batch_size), "--micro_batch_size", str(cfg.micro_batch_size)]
        cmd += ["--num_epochs", str(cfg.num_epochs), "--learning_rate", str(cfg.learning_rate), "--full_finetune"]
        cmd += ["--packing", "--cutoff_len", "1024"]
        cmd += ["--warmup_steps", str(cfg.warmup_steps), "--lr_scheduler_type", "cosine", "--dtype", cfg.dtype]
        every = max(1, steps // cfg.curve_points)
        cmd += ["--logging_steps", "2", "--save_steps", str(every), "--save_total_limit", str(cfg.curve_points + 1)]
        cmd += ["--seed", str(cfg.seed), "--share_prefix", "--resume_from_checkpoint", "last"]
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


def curve_subset(cfg: RealModelConfig, work: Path, seen: Path) -> Path:
    """The first ``--curve_n`` seen records (the learning curve's and the compression check's)."""
    subset = work / "data" / "curve_seen.json"
    if not subset.is_file():
        atomic_write_json(subset, json.loads(seen.read_text())[: cfg.curve_n])
    return subset


def curve(cfg: RealModelConfig, work: Path, seen: Path, model: Path, train: dict) -> list[dict]:
    """SR on the first ``curve_n`` seen records before training, at every kept checkpoint and at the end
    (full weights, unconstrained), with the training minutes each point took.

    The ends reuse the zero-shot and uncompressed fine-tuned predictions of the seen split; only the
    intermediate checkpoints are run again."""
    subset = curve_subset(cfg, work, seen)
    final = train["steps"]
    per_step = train["minutes"] / max(final, 1)
    zero = ZERO_SHOT_DIR / "zero_shot_seen" / "zero_shot_seen.json"
    points = [(0, zero)] if zero.is_file() else []
    for ckpt in sorted(model.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        step = int(ckpt.name.split("-")[1])
        if step < final:
            name = f"curve_{step}"
            evaluate(cfg, work, name, subset, str(ckpt))
            points.append((step, work / "pred" / name / f"{name}.json"))
    points.append((final, work / "pred" / "uncompressed_seen" / "uncompressed_seen.json"))
    out = []
    for step, predictions in points:
        scored = _scores(subset, predictions)
        samples = min(step * cfg.batch_size, train["samples"])
        out.append({"samples": samples, "minutes": round(step * per_step, 1), "SR": scored["SR"],
                    "tool_call_SR": scored["tool_call_SR"]})  # fmt: skip
    return out


def ship(cfg: RealModelConfig, work: Path, model: Path) -> Path:
    """The fine-tune as the compact delta it ships as (``g4t.llm.delta``, ``--ship_rank``) in ``work/delta``,
    merged back onto the packaged base into ``work/shipped`` (what ``--base_model gpt4tools-smollm2`` loads
    once the delta is copied to ``models/``): the model every figure of the report is measured on."""
    from g4t.llm.delta import MANIFEST_FILE, apply_delta, compress
    from g4t.llm.sources import PACKAGED, _sha256, resolve_model

    delta, merged = work / "delta", work / "shipped"
    if not (delta / MANIFEST_FILE).is_file():
        gguf = PACKAGED["smollm2"].gguf_path()
        base_id = {"package": PACKAGED["smollm2"].pip, "gguf": gguf.name, "sha256": _sha256(gguf)} if gguf else {}
        manifest = compress(model, resolve_model(cfg.base_model), delta, cfg.ship_rank, base_id)
        print(
            f"delta: rank {cfg.ship_rank}, {manifest['parameters']:,} parameters, energy kept {manifest['energy_kept']}"
        )
    if not (merged / "config.json").is_file():
        apply_delta(resolve_model(cfg.base_model), delta, merged)
    return merged


def _label(row: str) -> str:
    return {"uncompressed": "fine-tuned, full weights"}.get(row) or row.replace(
        "_constrained", ", constrained"
    ).replace("_", "-")


def report(cfg: RealModelConfig, result: dict) -> str:
    """The Markdown table (paper's shape), the follow-up row, the breakdown by record kind, training and curve."""
    head = "| model | split | n | " + " | ".join(METRIC_KEYS) + " | tool-call SR | tool choice |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731
    rows = [row for row in (*ROWS, "uncompressed") if result.get(row)]
    for row in rows:
        for split, f in result[row].items():
            cells = [pct(f[k]) for k in METRIC_KEYS] + [pct(f["tool_call_SR"]), pct(f["tool_choice_acc"])]
            lines.append(f"| {_label(row)} | {split} | {f['n']} | " + " | ".join(cells) + " |")
    lines += ["", 'Follow-ups that need no tool ("thanks!", a general question), answered directly:', ""]
    for row in (r for r in ROWS if result.get(r)):
        c = result[row].get("followup", {}).get("by_kind", {}).get("chitchat")
        if c:
            lines.append(f"- {_label(row)}: {c['right']} / {c['n']} ({pct(c['right'] / c['n'])} %)")
    for row in (row for row in rows if row.startswith("fine_tuned")):
        lines += ["", f"{_label(row).capitalize()}, by record kind (right, or why not):", ""]
        lines += [
            "| split | kind | n | right | tool call not due | no tool call | wrong tool | wrong args/steps | bad format |"
        ]
        lines += ["|---|---|---|---|---|---|---|---|---|"]
        for split in (s for s in SPLITS if s in result[row]):
            for kind, c in sorted(result[row][split]["by_kind"].items()):
                lines.append(f"| {split} | {kind} | {c['n']} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
    t = result["train"]
    lines += [
        "",
        f"Training: {t['samples']} samples, {t['tokens']:,} tokens ({t['loss_tokens']:,} with loss; "
        f"{t['computed_tokens']:,} computed, shared prompts once), {t['steps']} steps, "
        f"{t['minutes']} min, {t['tok_per_s']} tok/s, {t['compute_dtype']}, final loss {t['final_loss']:.4f}.",
        f"Shipped as: `--base_model {result['shipped']['base_model']} --lora_model {result['shipped']['lora_model']}` "
        f"(rank-{result['shipped']['rank']} delta on the packaged base; the rows above are that model).",
        f"Recipe: {json.dumps(result['recipe'])}",
        "",
        *(
            [
                f"Compression: on the first {result['compression']['records']} seen records the full weights "
                f"(unconstrained) score SR {pct(result['compression']['full_SR'])}, the shipped "
                f"rank-{result['shipped']['rank']} delta "
                f"{'(constrained) ' if result['compression'].get('shipped_constrained') else '(unconstrained) '}"
                f"{pct(result['compression']['shipped_SR'])}.",
                "",
            ]
            if result.get("compression")
            else []
        ),
        "Learning curve (first seen records, full weights, unconstrained): "
        + ", ".join(
            f"{p['samples']} samples ({p['minutes']} min): SR {pct(p['SR'])}, tool-call SR {pct(p['tool_call_SR'])}"
            for p in result["curve"]
        ),
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [*METRIC_KEYS, "tool_call_SR", "tool_choice_acc"]
    fig, axes = plt.subplots(1, len(SPLITS) + 1, figsize=(5 * (len(SPLITS) + 1), 3.6), sharey=True)
    rows = [row for row in ROWS if result.get(row)]
    width = 0.8 / len(rows)
    for ax, split in zip(axes, SPLITS, strict=False):
        for i, row in enumerate(rows):
            if split not in result[row]:
                continue
            values = [result[row][split][k] or 0.0 for k in keys]
            ax.bar([x + width * i for x in range(len(keys))], values, width=width, label=_label(row))
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys, rotation=45, ha="right", fontsize=8)
        n = next((result[row][split]["n"] for row in rows if split in result[row]), 0)
        ax.set_title(f"{split} (n={n})")
        ax.set_ylim(0, 1)
    axes[0].legend()
    points = result["curve"]
    for key in ("SR", "tool_call_SR"):
        axes[-1].plot([p["minutes"] for p in points], [p[key] or 0.0 for p in points], marker="o", label=key)
    axes[-1].set_xlabel("training minutes")
    axes[-1].set_title("learning curve (seen subset)")
    axes[-1].legend()
    fig.suptitle(
        f"SmolLM2-135M-Instruct, {result['train']['samples']} training samples, {result['train']['minutes']} min"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(cfg: RealModelConfig, result: dict) -> None:
    """The report so far (written after every stage, so a run cut short still leaves its figures)."""
    stem = Path(cfg.results)
    stem.parent.mkdir(parents=True, exist_ok=True)
    table = report(cfg, result)
    title = "# bench/real_model.py: SmolLM2-135M-Instruct, zero-shot vs fine-tuned (SR etc. in %)\n\n"
    atomic_write_text(stem.with_suffix(".md"), title + table + "\n")
    atomic_write_json(stem.with_suffix(".json"), result, indent=1)
    plot(result, stem.with_suffix(".png"))
    print(f"wrote {stem}.md, .json, .png")


def main() -> None:
    (cfg,) = parse_args(RealModelConfig, description=__doc__.split("\n\n")[0])
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    files = make_data(cfg, work)
    model, train_figures = train(cfg, work, files["train"])
    shipped = ship(cfg, work, model)
    skip = {"work_dir", "results", "captions", "natural", "followups"}
    result: dict = {
        "zero_shot": {},
        "fine_tuned": {},
        "fine_tuned_constrained": {},
        "uncompressed": {},
        "train": train_figures,
        "curve": [],
        "adapter": str(shipped),
        "shipped": {"base_model": "gpt4tools-smollm2", "lora_model": "none", "rank": cfg.ship_rank},
        "recipe": {k: v for k, v in asdict(cfg).items() if k not in skip},
    }
    for split in SPLITS:  # the shipped model as the demo runs it (constrained) first: the headline
        result["fine_tuned_constrained"][split] = evaluate(
            cfg, work, f"fine_tuned_constrained_{split}", files[split], str(shipped), constrain=True
        )
        _write(cfg, result)
    subset = curve_subset(cfg, work, files["seen"])  # the full weights on the curve's records (unconstrained)
    result["uncompressed"]["seen"] = evaluate(cfg, work, "uncompressed_seen", subset, str(model))
    result["curve"] = curve(cfg, work, files["seen"], model, train_figures)
    _write(cfg, result)
    for split in SPLITS:
        result["zero_shot"][split] = evaluate(cfg, work, f"zero_shot_{split}", files[split])
        _write(cfg, result)
    result["curve"] = curve(cfg, work, files["seen"], model, train_figures)  # now from 0 samples
    for split in cfg.unconstrained_splits:
        result["fine_tuned"][split] = evaluate(cfg, work, f"fine_tuned_{split}", files[split], str(shipped))
        if split == "seen":  # the compact form against the full weights, on the same records
            shipped_sr = _scores(subset, work / "pred" / "fine_tuned_seen" / "fine_tuned_seen.json")["SR"]
            result["compression"] = {"records": cfg.curve_n, "full_SR": result["uncompressed"]["seen"]["SR"],
                                     "shipped_SR": shipped_sr}  # fmt: skip
        _write(cfg, result)


if __name__ == "__main__":
    main()
