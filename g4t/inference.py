"""Batch inference of a GPT4Tools annotation file: the one runner behind ``inference.py`` and
``inference_chatgpt.py`` (``--backend hf``: a local transformers model; ``--backend openai``: any
OpenAI-compatible server).

What a prediction's ``output`` holds (``output_format``):

* ``full`` (default) -- the annotation's ``instruction`` text followed by the completion, exactly
  ``instruction + completion``. The published ``evaluate_result.py`` slices ``output[len(instruction):]``,
  so it scores these files correctly, and without the published tokenizer round trip of the prompt
  (the published script stored the *decoded* prompt, which could shift the slice).
* ``completion`` -- the completion only (what the published ChatGPT baseline stored).

``g4t.evaluation`` accepts both (``--prompt_mode auto``). The completion is what the model generated
after the conversation template's response marker, cut before the observation marker
(``\\nObservation:``) or EOS.

Whatever the backend: chunk files ``{save_path}/{save_name}/{save_name}_{idx}.json`` (``[{"id",
"output"}]``, annotation order); each finished prediction is appended to ``{save_name}_{idx}.partial.jsonl``
as it arrives (``g4t.chunk_store``), so a kill loses only what was in flight; ``--resume`` continues
where a run stopped; a prompt that fails after the backend's retries is listed in
``{save_name}_{idx}.failed.json`` (``--resume`` retries it); SIGINT / SIGTERM save what is finished
and exit at once with 130 / 143; a run never replaces a chunk file with fewer predictions.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from g4t.chunk_store import ChunkStore
from g4t.cli import arg, group
from g4t.data.io import DataError, atomic_write_json
from g4t.evaluation.io import chunk_bounds, chunk_path, load_annotations
from g4t.interrupts import Interrupted, call_in_worker, signals_raise_interrupted
from g4t.llm.base import Backend, GenerationConfig, LLMError, ModelLoadError
from g4t.react import RAW_TEMPLATE, STOP, template_name
from g4t.settings import ModelLoading, OpenAIConnection

if TYPE_CHECKING:
    from g4t.prompts import PromptTemplate

__all__ = [
    "THOUGHT_PREFIX",
    "InferenceConfig",
    "RunResult",
    "build_prompt",
    "join_output",
    "load_chunk",
    "main",
    "run",
]

# The model ends a tool call with "Observation:" (the tool's result follows); stop there.
RAW = RAW_TEMPLATE  # --template none: the raw instruction, as the published b91d319 inference.py did
THOUGHT_PREFIX = "Thought: Do I need to use a tool? "  # appended by the published ChatGPT baseline


@dataclass
class InferenceConfig:
    """``inference.py``: the published flags, the shared settings groups, and the runner's own options."""

    PROG: ClassVar[str] = "inference.py"

    ann_path: str = arg(help="Annotation file (gpt4tools_val_seen.json, gpt4tools_test_unseen.json).")
    save_name: str = arg(help="Run name: writes {save_path}/{save_name}/{save_name}_{chunk_idx}.json.")
    save_path: str = arg("output/eval_result", help="Root output folder.")
    backend: Literal["hf", "openai"] = arg(
        "hf", help="hf: a local model (--base_model, --lora_model ...); openai: an OpenAI-compatible server."
    )
    num_chunks: int = arg(1, help="Split the annotations into this many consecutive chunks (one per process).")
    chunk_idx: int = arg(0, help="Which chunk this process runs (0-based).")
    batch_size: int = arg(8, help="Local model: prompts per generate call (longest first, KV cache).")
    template: str = arg(
        "auto",
        help="Conversation template (templates/*.json), 'chat' (the local tokenizer's own chat template) or 'none' "
        "for the raw instruction. Default: none in OpenAI chat mode; otherwise the template saved in "
        "training_config.json with the adapter, else in the base model folder, else gpt4tools.",
    )
    thought_prefix: bool | None = arg(
        None,
        help="Append 'Thought: Do I need to use a tool? ' to the prompt, as the published ChatGPT baseline "
        "(default: with --backend openai and --template none).",
    )
    resume: bool = arg(False, help="Keep the predictions already in the chunk file and do only the rest.")
    output_format: Literal["full", "completion"] = arg(
        "full", help="'full': output = instruction + completion (published-evaluator compatible); 'completion'."
    )
    stop: list[str] = arg(default_factory=lambda: list(STOP), help="Stop strings (default: the observation marker).")
    save_every: int = arg(
        32,
        help="Also rewrite the chunk file after this many finished samples (each one is appended to "
        "{chunk}.partial.jsonl as it arrives).",
    )
    evaluate: bool = arg(False, help="Evaluate the chunk when done (needs GT 'output' fields; one chunk only).")
    local_rank: int = arg(-1, help="Accepted for compatibility with the published CLI; unused.")
    model: ModelLoading = group(ModelLoading)
    openai: OpenAIConnection = group(OpenAIConnection)
    gen: GenerationConfig = group(GenerationConfig)

    def __post_init__(self) -> None:
        problems = []
        if self.num_chunks < 1:
            problems.append(f"--num-chunks must be >= 1, got {self.num_chunks}")
        elif not 0 <= self.chunk_idx < self.num_chunks:
            problems.append(f"--chunk-idx must be in [0, {self.num_chunks}), got {self.chunk_idx}")
        if self.batch_size < 1:
            problems.append(f"--batch_size must be >= 1, got {self.batch_size}")
        if self.save_every < 1:
            problems.append(f"--save_every must be >= 1, got {self.save_every}")
        if self.backend == "hf" and not self.model.base_model:
            problems.append("--base_model is required with --backend hf")
        if self.backend == "openai" and not self.openai.openai_model:
            problems.append("--openai_model (--model) is required with --backend openai")
        if self.backend == "hf" and self.openai.protocol == "tools":
            problems.append("--protocol tools needs an OpenAI-compatible chat server (--backend openai)")
        if self.backend == "openai" and self.gen.constrain_tools:
            problems.append("--constrain_tools needs a local model (--backend hf): a server cannot restrict tool names")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class RunResult:
    """What ``run`` did: the chunk file, samples finished by this run, samples that failed."""

    path: Path
    done: int
    failed: int


def build_prompt(sample: dict, template: str | PromptTemplate, tokenizer=None) -> str:
    """The exact text the model was trained on for this annotation: ``template.render(instruction, input)``.

    ``template`` is a name (``none`` = the raw instruction) or a loaded ``PromptTemplate``; the name
    ``chat`` needs the model's ``tokenizer``.
    """
    from g4t.prompts import load_template

    if template == RAW:
        return sample["instruction"]
    if isinstance(template, str):
        template = load_template(template, tokenizer=tokenizer)
    return template.render(sample["instruction"], sample.get("input") or "")


def join_output(instruction: str, completion: str, output_format: str) -> str:
    """The stored ``output``: ``instruction + completion`` (``full``) or ``completion``."""
    return instruction + completion if output_format == "full" else completion


def load_chunk(samples: list[dict], num_chunks: int, chunk_idx: int, ann_path: str) -> list[dict]:
    """This process's consecutive slice of the annotations (ids must be unique inside it)."""
    start, end = chunk_bounds(len(samples), num_chunks, chunk_idx)
    chunk = samples[start:end]
    seen: set = set()
    for i, s in enumerate(chunk, start):
        if s["id"] in seen:
            raise DataError(f"{ann_path}: record {i} (id {s['id']!r}): duplicate id in chunk")
        seen.add(s["id"])
    return chunk


def _template_name(cfg: InferenceConfig) -> str:
    if cfg.template in (None, "auto") and cfg.backend == "openai" and cfg.openai.openai_mode == "chat":
        return RAW  # the server applies the model's own chat template
    return template_name(cfg.template, cfg.model.lora, cfg.model.base_model)


def build_backend(cfg: InferenceConfig) -> Backend:
    """The backend of ``cfg.backend``: a local model (loaded here) or an OpenAI-compatible client."""
    return cfg.model.load_backend(cfg.batch_size) if cfg.backend == "hf" else cfg.openai.backend()


def run(cfg: InferenceConfig, backend: Backend | None = None) -> RunResult:
    """Run one chunk through ``backend`` (default: built from ``cfg``) and save its predictions.

    Each finished prediction is appended to the side log at once; the chunk file is rewritten every
    ``--save_every`` results and at the end, never with fewer predictions than it held. SIGINT / SIGTERM
    (when called from the main thread) save what is finished and raise ``Interrupted`` within a second;
    what is in flight is abandoned.

    Raises:
        DataError: bad annotation or chunk file. ModelLoadError: the model cannot be loaded.
        Interrupted: SIGINT / SIGTERM. Any error of the backend, after the finished results are saved.
    """
    from tqdm import tqdm

    template = _template_name(cfg)
    react = cfg.backend == "openai" and cfg.openai.protocol == "react"  # --protocol tools builds its own messages
    prefix = cfg.thought_prefix if cfg.thought_prefix is not None else (template == RAW and react)
    samples = load_annotations(cfg.ann_path, require_output=False)
    chunk = load_chunk(samples, cfg.num_chunks, cfg.chunk_idx, cfg.ann_path)
    path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
    failed_path = path.with_suffix(".failed.json")
    store = ChunkStore(path, [s["id"] for s in chunk], resume=cfg.resume, save_every=cfg.save_every)
    todo = [s for s in chunk if s["id"] not in store.done]
    meta = {**asdict(cfg), "template": template, "thought_prefix": prefix}
    print(
        f"chunk {cfg.chunk_idx}/{cfg.num_chunks}: {len(chunk)} samples, {len(chunk) - len(todo)} already done, "
        f"backend {cfg.backend}, template {template!r} -> {path}",
        file=sys.stderr,
    )
    if not todo:
        store.save(meta)
        failed_path.unlink(missing_ok=True)
        return RunResult(path, 0, 0)

    failures: list[dict] = []
    lock = threading.Lock()
    stopped = threading.Event()
    bar = None

    def on_result(i: int, result) -> bool | None:
        with lock:
            if stopped.is_set():
                return False  # interrupted or failed: what was saved is final
            if result.ok:
                text = result.text
                if prefix and not text.lstrip().startswith("Thought:"):
                    text = THOUGHT_PREFIX + text
                store.add(todo[i]["id"], join_output(todo[i]["instruction"], text, cfg.output_format))
            else:
                failures.append({"id": todo[i]["id"], "error": result.error, "attempts": result.attempts})
            bar.update(1)
        return None

    def finish() -> None:
        """Stop taking results and save what is finished (the first call only)."""
        with lock:
            if stopped.is_set():
                return
            stopped.set()
            if store.new or not interrupted:
                store.save(meta)
            if bar is not None:
                bar.close()
        if failures:
            atomic_write_json(failed_path, failures, indent=1)

    started = time.perf_counter()
    interrupted = False
    with signals_raise_interrupted():
        try:
            backend = backend if backend is not None else build_backend(cfg)
            tpl = template
            if template != RAW:  # load once (``chat`` renders the loaded tokenizer's chat template)
                from g4t.prompts import load_template

                tpl = load_template(template, tokenizer=getattr(backend, "tokenizer", None))
            prompts = [build_prompt(s, tpl) + ("\n" + THOUGHT_PREFIX if prefix else "") for s in todo]
            bar = tqdm(total=len(todo), desc=f"chunk {cfg.chunk_idx}", unit="sample", file=sys.stderr)
            # In a worker thread: this thread stays free to take a signal at once (a model's generate or a
            # thread pool's shutdown would otherwise hold it until every queued prompt is done).
            call_in_worker(backend.complete, prompts, stop=list(cfg.stop), gen=cfg.gen, on_result=on_result)
        except Interrupted as e:
            interrupted = True
            finish()
            print(
                f"{e}: saved the {len(store.records)} finished prediction(s) to {path}; "
                f"{len(todo) - store.new - len(failures)} not done. Continue with --resume.",
                file=sys.stderr,
            )
            raise
        except BaseException:
            if bar is not None:  # the backend failed part way: keep what it finished
                finish()
            raise
    finish()
    elapsed = time.perf_counter() - started
    if failures:
        print(
            f"WARNING: {len(failures)} of {len(todo)} samples failed (ids {[f['id'] for f in failures[:10]]}); "
            f"see {failed_path}. Re-run with --resume to retry them.",
            file=sys.stderr,
        )
    else:
        failed_path.unlink(missing_ok=True)
    usage = getattr(backend, "usage", None)
    print(
        f"{store.new} samples in {elapsed:.1f}s ({store.new / max(elapsed, 1e-9):.2f} samples/s)"
        + (f"; usage: {usage.summary()}" if usage is not None else "")
        + f" -> {path}",
        file=sys.stderr,
    )
    return RunResult(path, store.new, len(failures))


def _evaluate(cfg: InferenceConfig) -> int:
    from g4t.evaluation.io import load_predictions
    from g4t.evaluation.main import EvalConfig
    from g4t.evaluation.main import main as evaluate

    path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
    if cfg.num_chunks > 1:
        print("evaluate all chunks with evaluate_result.py once every chunk is done", file=sys.stderr)
        return 0
    if not path.is_file() or not load_predictions(path):
        print(f"no predictions in {path}; evaluation skipped", file=sys.stderr)
        return 0
    return evaluate(EvalConfig(ann_path=cfg.ann_path, save_name=cfg.save_name, save_path=cfg.save_path))


def main(cfg: InferenceConfig, backend: Backend | None = None) -> int:
    """CLI entry point: inference of one chunk, then (``--evaluate``) its evaluation.

    Exit status: 0 done; 1 some samples failed, or the model / server failed; 2 bad input (one line);
    130 / 143 interrupted by SIGINT / SIGTERM (finished predictions saved; the process ends at once,
    without waiting for what is in flight).
    """
    try:
        result = run(cfg, backend)
    except (DataError, ValueError) as e:
        print(f"{cfg.PROG}: error: {e}", file=sys.stderr)
        return 2
    except (ModelLoadError, LLMError) as e:
        print(f"{cfg.PROG}: error: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.exit_status)  # a worker still in generate / on a socket must not delay the exit
    except KeyboardInterrupt:  # outside the run's signal handling: nothing unsaved
        print(f"{cfg.PROG}: interrupted; finished samples are saved, continue with --resume", file=sys.stderr)
        return 130
    if cfg.evaluate:
        status = _evaluate(cfg)
        if status:
            return status
    return 1 if result.failed else 0
