"""Evaluator speed: the published ``evaluate_result.py`` procedure vs ``g4t.evaluation`` on 10K predictions.

Issue 12 item 9: the project's evaluator must be at least as fast as the published one, end to end
(gather the chunk files, load the annotations, score, write the results), with the same figures.

* **Data.** Records in the published val/test format, built by the project's own pipeline: the
  offline teacher writes requests for every registered tool over the MagicBrush dev captions
  (``data/magicbrush_dev_captions.json``) plus no-tool chit-chat, and ``g4t.data.annotate``
  (``scripts/generate_annotations.py``) makes an evaluation-only build of them, so the records hold
  real 2-5-tool prompts, chains cut at a random step, and ``Action`` / ``Action Input`` fields (the
  layout of ``tests/assets/eval/published_records.json``).
* **Predictions.** One per record, as ``inference.py`` writes them (``instruction + completion``), in
  ``--num_chunks`` chunk files, with 30 ids written twice (a resumed chunk), 10 ids without GT and 20 GT
  ids without prediction. Completions are a seeded mix (``perturb``): correct first step, the whole
  chain (multi-step), wrong tool, wrong arguments (another image, other words, a comma inside a text
  argument, no image), missing ``Thought``, ``No`` instead of a call, an extra step, empty; for no-tool
  records: the answer, a needless tool call, ``AI:`` without its space, no thought, empty.
* **Variants**, each run ``--repeats`` times, interleaved, each in a fresh copy of the chunk files:
  ``published`` (``bench/published_evaluator.py``, the baseline) and ``project``
  (``g4t.evaluation.main.run`` with its defaults: file validation, duplicate / conflict reports,
  atomic writes, ``eval.txt``, the JSON report and the per-tool table), in process; ``project_strict_chart``
  (``--strict --chart``, opt-in extras); and the two command lines as subprocesses
  (``published_cli``: ``python bench/published_evaluator.py``; ``project_cli``: ``python
  evaluate_result.py``), which add interpreter start and imports.
* **Checks.** Every variant's ``eval.txt`` is byte-identical to the baseline's, and so is every
  per-sample score (compared as floats, in process). A mismatch exits 1 without writing figures.

The data is built once into ``--work_dir`` and reused (delete the folder to rebuild).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/evaluator_speed.py     # ~3 min on 2 cores

Writes ``bench/results/evaluator_speed.json`` (atomically): the median wall time and CPU time (user +
system, this process and its children: the robust figure on a shared machine) of each variant, every
run, the speed-ups (published / project) and the five figures.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from g4t.cli import arg, parse_args
from g4t.data.io import atomic_write_json

try:
    from bench.published_evaluator import PublishedEvaluator
except ModuleNotFoundError:  # run as a script: bench/ itself is on sys.path
    from published_evaluator import PublishedEvaluator

ROOT = Path(__file__).resolve().parent.parent
NAME = "preds"


@dataclass
class SpeedConfig:
    """Knobs of the benchmark."""

    num_predictions: int = arg(10000, help="GT records (and predictions) to evaluate.")
    num_chunks: int = arg(2, help="Chunk files the predictions are spread over (as batch_inference.sh writes).")
    repeats: int = arg(5, help="Timed runs of each variant (the median is reported).")
    seed: int = arg(0, help="Seed of the data build and of the perturbations.")
    work_dir: str = arg("output/evaluator_speed", help="Data and run folders (the data is reused when present).")
    out: str = arg("bench/results/evaluator_speed.json", help="Figures (JSON; relative to the repository).")


# --------------------------------------------------------------------------------------------- data


def build_annotations(cfg: SpeedConfig, work: Path) -> Path:
    """``num_predictions`` val/test records built by the project's data pipeline (cached in ``work``)."""
    from g4t.data.annotate import AnnotateConfig
    from g4t.data.annotate import run as annotate
    from g4t.data.offline_teacher import extra_tools, generator_tools, write_negatives, write_replies

    ann = work / "annotations.json"
    if ann.is_file() and len(json.loads(ann.read_text())) == cfg.num_predictions:
        return ann
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    captions = json.loads((ROOT / "data/magicbrush_dev_captions.json").read_text())
    records: list[dict] = []
    seed = cfg.seed
    while len(records) < cfg.num_predictions:  # ~9.9K records per build of the 266 captions
        write_replies(captions, data / "replies.jsonl", tools=generator_tools(), seed=seed)
        write_negatives(captions, data / "negatives.json", seed=seed)
        acfg = AnnotateConfig(
            input_path=str(data / "replies.jsonl"),
            output_path=str(data / "train_unused.json"),
            complement=True,
            insert_alpaca=True,
            alpaca_path=str(data / "negatives.json"),
            alpaca_ratio=0.25,
            val_ratio=0.5,
            test_ratio=0.499,
            tools=extra_tools(),
            seed=seed,
        )
        annotate(acfg)
        for split in ("_val_seen.json", "_test_unseen.json"):
            records += json.loads(Path(acfg.derived(split)).read_text())
        seed += 1
    random.Random(cfg.seed).shuffle(records)
    records = records[: cfg.num_predictions]
    for i, r in enumerate(records):
        r["id"] = i
    atomic_write_json(ann, records)
    return ann


def _tool_names() -> list[str]:
    from g4t.data.catalog import registered_tools

    return sorted(registered_tools())


def _call(tool: str, args: str, thought: bool = True) -> str:
    head = "Thought: Do I need to use a tool? Yes\n" if thought else ""
    return f"{head}Action: {tool}\nAction Input: {args}"


def _bad_args(args: str, rng: random.Random) -> str:
    pieces = [p.strip() for p in args.split(",")]
    kind = rng.randrange(4)
    if kind == 0 and ".png" in pieces[0]:  # another image
        pieces[0] = re.sub(r"[a-z]{8}\.png", "".join(rng.choices("abcdefghij", k=8)) + ".png", pieces[0])
    elif kind == 1 and len(pieces) > 1:  # other / fewer words
        words = pieces[-1].split()
        pieces[-1] = " ".join(rng.sample(words, max(1, len(words) // 2))) + " " + rng.choice(["thing", "red", "it"])
    elif kind == 2 and len(pieces) > 1:  # a comma inside the text argument
        words = pieces[-1].split()
        cut = max(1, len(words) // 2)
        pieces[-1] = " ".join(words[:cut]) + ", " + " ".join(words[cut:] or ["too"])
    else:  # no image
        pieces = pieces[1:] or ["the picture"]
    return ", ".join(pieces)


def perturb(gt_output: str, rng: random.Random, tools: list[str]) -> tuple[str, str]:
    """A plausible model completion for a GT ``output`` and the kind of answer it is (seeded mix)."""
    calls = [t.strip() for t in re.findall(r"Action: (.*)", gt_output)]
    args = [a.strip() for a in re.findall(r"Action Input: (.*)", gt_output)]
    r = rng.random()
    if not calls:
        answer = (re.findall(r"AI: (.*)", gt_output) or ["Sure."])[0]
        if r < 0.6:
            return f"Thought: Do I need to use a tool? No\nAI: {answer}", "no-tool correct"
        if r < 0.75:
            return _call(rng.choice(tools), "image/abcdefgh.png"), "no-tool needless call"
        if r < 0.85:
            return f"Thought: Do I need to use a tool? No\nAI:{answer}", "no-tool 'AI:' without space"
        if r < 0.95:
            return f"AI: {answer}", "no-tool missing thought"
        return "", "empty"
    if r < 0.40:
        return _call(calls[0], args[0]), "correct first step"
    if r < 0.50:
        return gt_output.rstrip(), "whole chain (multi-step)"
    if r < 0.62:
        return _call(rng.choice([t for t in tools if t != calls[0]]), args[0]), "wrong tool"
    if r < 0.74:
        return _call(calls[0], _bad_args(args[0], rng)), "wrong args"
    if r < 0.82:
        return _call(calls[0], args[0], thought=False), "missing thought"
    if r < 0.90:
        return "Thought: Do I need to use a tool? No\nAI: I cannot do that.", "no call"
    if r < 0.95:
        return _call(calls[0], args[0]) + "\nObservation: done\n" + _call(calls[0], args[0]), "extra step"
    return "", "empty"


def write_predictions(cfg: SpeedConfig, ann_path: Path, folder: Path) -> dict:
    """Chunk files ``{folder}/preds_{i}.json`` as ``inference.py`` writes them; returns the mix."""
    rng = random.Random(cfg.seed)
    tools = _tool_names()
    mix: Counter = Counter()
    preds = []
    for a in json.loads(ann_path.read_text()):
        completion, kind = perturb(a["output"], rng, tools)
        mix[kind] += 1
        preds.append({"output": a["instruction"] + completion, "id": a["id"]})
    del preds[-20:]  # GT ids without prediction
    preds += [{"output": "no such sample", "id": cfg.num_predictions + i} for i in range(10)]  # ids without GT
    size = -(-len(preds) // cfg.num_chunks)
    chunks = [preds[i * size : (i + 1) * size] for i in range(cfg.num_chunks)]
    for dup in rng.sample(range(len(chunks[0])), min(30, len(chunks[0]))):  # a resumed chunk wrote them again
        chunks[-1].append(dict(chunks[0][dup]))
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, chunk in enumerate(chunks):
        (tmp / f"{NAME}_{i}.json").write_text(json.dumps(chunk))
    (tmp / "mix.json").write_text(json.dumps(dict(mix)))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return dict(mix)


# ------------------------------------------------------------------------------------------ timing


def _fresh(work: Path, variant: str, source: Path, num_chunks: int) -> Path:
    """A run folder ``runs/{variant}/{NAME}/`` holding a fresh copy of the chunk files only."""
    run_dir = work / "runs" / variant
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / NAME).mkdir(parents=True)
    for i in range(num_chunks):
        shutil.copyfile(source / f"{NAME}_{i}.json", run_dir / NAME / f"{NAME}_{i}.json")
    return run_dir


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _quiet(fn):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn()


def _published(ann: Path, run_dir: Path, cfg: SpeedConfig):
    ev = PublishedEvaluator(str(ann), str(run_dir), NAME, cfg.num_chunks)
    _quiet(ev.evaluate)
    return ev.samples


def _project(ann: Path, run_dir: Path, cfg: SpeedConfig, extras: bool = False):
    from g4t.evaluation.main import EvalConfig, run
    from g4t.evaluation.metrics import bleu1

    bleu1.cache_clear()  # every run starts cold, as a command line does (the baseline has no cache)

    ecfg = EvalConfig(
        ann_path=str(ann),
        save_name=NAME,
        save_path=str(run_dir),
        num_chunks=cfg.num_chunks,
        strict=extras,
        chart=extras,
    )
    result = _quiet(lambda: run(ecfg))
    return [(s.thought, s.action, s.args, s.success, s.iou) for s in result.samples]


def _cli(argv: list[str]) -> None:
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Per-sample scores equal as floats (nan equals nan)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if not (float(u) == float(v) or (math.isnan(float(u)) and math.isnan(float(v)))):
                return False
    return True


def main(cfg: SpeedConfig) -> dict:
    """Build the data, time every variant, check the figures agree, write the JSON; returns it."""
    work = (ROOT / cfg.work_dir).resolve()
    ann = build_annotations(cfg, work)
    source = work / "chunks"
    mix_file = source / "mix.json"
    mix = json.loads(mix_file.read_text()) if mix_file.is_file() else write_predictions(cfg, ann, source)
    records = json.loads(ann.read_text())
    n_tool = sum("Action:" in r["output"] for r in records)
    print(f"data: {ann} ({len(records)} GT records, {n_tool} tool calls); chunks in {source}")

    py, flags = sys.executable, ["--ann_path", str(ann), "--save_name", NAME, "--num-chunks", str(cfg.num_chunks)]
    variants = {
        "published": lambda d: _published(ann, d, cfg),
        "project": lambda d: _project(ann, d, cfg),
        "project_strict_chart": lambda d: _project(ann, d, cfg, extras=True),
        "published_cli": lambda d: _cli([py, "bench/published_evaluator.py", *flags, "--save_path", str(d)]),
        "project_cli": lambda d: _cli([py, "evaluate_result.py", *flags, "--save_path", str(d)]),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    texts: dict[str, str] = {}
    samples: dict[str, list] = {}
    for rep in range(cfg.repeats):
        for name, fn in variants.items():
            d = _fresh(work, name, source, cfg.num_chunks)
            c0, t0 = _cpu_seconds(), time.perf_counter()
            out = fn(d)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(_cpu_seconds() - c0)
            texts[name] = (d / NAME / "eval.txt").read_text()
            if out is not None:
                samples[name] = out
        print(
            f"repeat {rep + 1}/{cfg.repeats} (wall / cpu s): "
            + ", ".join(f"{k} {times[k][-1]:.2f} / {cpu[k][-1]:.2f}" for k in variants)
        )

    shutil.rmtree(work / "runs", ignore_errors=True)  # ~60 MB per variant; the data stays cached
    reference = texts["published"]
    same_text = {k: t == reference for k, t in texts.items()}
    same_samples = {k: _same(samples["published"], s) for k, s in samples.items()}
    if not all(same_text.values()) or not all(same_samples.values()):
        sys.exit(f"figures differ: eval.txt identical {same_text}; per-sample scores identical {same_samples}")
    median = {k: statistics.median(v) for k, v in times.items()}
    median_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    figures = dict(line.strip().split(": ", 1) for line in reference.strip().splitlines())
    result = {
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": _cpu_model(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "data": {
            "gt_records": len(records),
            "gt_tool_records": n_tool,
            "predictions_mix": mix,
            "chunk_bytes": sum(p.stat().st_size for p in source.glob(f"{NAME}_*.json")),
        },
        "median_wall_s": {k: round(v, 3) for k, v in median.items()},
        "median_cpu_s": {k: round(v, 3) for k, v in median_cpu.items()},
        "runs_wall_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "runs_cpu_s": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
        "speedup": {
            basis: {
                "in_process": round(m["published"] / m["project"], 2),
                "in_process_with_strict_and_chart": round(m["published"] / m["project_strict_chart"], 2),
                "command_line": round(m["published_cli"] / m["project_cli"], 2),
            }
            for basis, m in (("wall", median), ("cpu", median_cpu))
        },
        "identical": {"eval_txt": same_text, "per_sample_scores": same_samples},
        "figures": figures,
    }
    atomic_write_json(ROOT / cfg.out, result, indent=2)
    shown = {k: result[k] for k in ("median_wall_s", "median_cpu_s", "speedup", "figures")}
    print(json.dumps(shown, indent=2))
    print(f"wrote {cfg.out}")
    return result


if __name__ == "__main__":
    (config,) = parse_args(SpeedConfig, description=__doc__.split("\n\n")[0])
    main(config)
