"""``inference_chatgpt.py``: batch inference through any OpenAI-compatible endpoint, then evaluation.

Modes:

* ``--mode chat`` (published ChatGPT baseline): the message is ``instruction + "\\n" + "Thought: Do I need
  to use a tool? "`` (``--template none``, the default in chat mode); a reply that does not start with
  ``Thought:`` gets that prefix back, so the evaluator sees the whole thought.
* ``--mode completions`` with a training template (``--template gpt4tools``): the raw prompt of the
  trained layout goes to ``/v1/completions`` -- a GPT4Tools LoRA served by vLLM or SGLang is
  evaluated exactly as trained.

Requests run ``--max_concurrency`` at a time and stop at the observation marker. A prompt that still
fails after ``--max_retries`` is recorded in ``{save_name}_{idx}.failed.json`` and reported (its id is
missing from the predictions, so ``--resume`` retries it); the exit status is then 1.

Nothing paid for is lost: each reply is appended to ``{save_name}_{idx}.partial.jsonl`` as it arrives
and folded into the chunk file at the end (and at the start of the next run, after a kill). SIGINT /
SIGTERM save what is finished and exit at once with 130 / 143. A run never replaces a chunk file with
fewer predictions (a rerun against a dead server keeps the old file and its evaluation).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from g4t.cli import arg
from g4t.evaluation.io import EvalInputError, atomic_write_json, chunk_path, load_annotations, load_predictions
from g4t.inference import DEFAULT_STOP, RAW, ChunkWriter, build_prompt, join_output, load_chunk
from g4t.interrupts import Interrupted, signals_raise_interrupted
from g4t.llm.base import GenerationConfig

__all__ = ["THOUGHT_PREFIX", "ApiInferenceConfig", "Interrupted", "main", "run"]

THOUGHT_PREFIX = "Thought: Do I need to use a tool? "


@dataclass
class ApiInferenceConfig:
    """``inference_chatgpt.py`` flags (published: ``--ann_path --save_path --save_name --model``)."""

    ann_path: str = arg(help="Annotation file.")
    save_name: str = arg(help="Run name: writes {save_path}/{save_name}/{save_name}_{chunk_idx}.json.")
    model: str = arg("gpt-4o-mini", help="Model name on the server (for vLLM: the served LoRA name).")
    base_url: str | None = arg(None, help="OpenAI-compatible server, e.g. http://localhost:8000/v1 (default: OpenAI).")
    mode: Literal["chat", "completions"] = arg("chat", help="chat: /v1/chat/completions; completions: raw prompt.")
    template: str | None = arg(
        None,
        help="Conversation template for the prompt, or 'none' (raw instruction + the Thought prefix, published). "
        "Default: none in chat mode, gpt4tools in completions mode.",
    )
    thought_prefix: bool | None = arg(
        None, help="Append 'Thought: Do I need to use a tool? ' to the prompt (default: only with --template none)."
    )
    chat_role: Literal["system", "user"] = arg("user", help="Role of the chat message (published: system).")
    save_path: str = arg("output/eval_result", help="Root output folder.")
    num_chunks: int = arg(
        1, help="Split the annotations into chunks (for several processes).", aliases=["--num-chunks"]
    )
    chunk_idx: int = arg(0, help="Which chunk to run.", aliases=["--chunk-idx"])
    max_new_tokens: int = arg(512, help="Completion budget (published ChatGPT run: 400).")
    temperature: float = arg(0.0, help="0 = greedy (published).")
    top_p: float = arg(1.0, help="Nucleus mass (only with temperature > 0).")
    max_concurrency: int = arg(8, help="Requests in flight at once.")
    max_retries: int = arg(5, help="Retries per prompt on 429/5xx/timeouts/connection errors/malformed bodies.")
    timeout: float = arg(60.0, help="Seconds per request.")
    backoff_base: float = arg(1.0, help="First retry delay in seconds (doubles per retry, with jitter).")
    resume: bool = arg(False, help="Keep the predictions already in the chunk file (failed ids are retried).")
    output_format: Literal["full", "completion"] = arg("full", help="'full': instruction + completion; 'completion'.")
    save_every: int = arg(
        32,
        help="Also rewrite the chunk file after this many finished samples (each reply is appended to "
        "{chunk}.partial.jsonl as it arrives, so a kill loses only the requests in flight).",
    )
    evaluate: bool = arg(True, help="Evaluate the chunk when done (needs GT 'output' fields).")

    def __post_init__(self) -> None:
        problems = []
        if self.num_chunks < 1 or not 0 <= self.chunk_idx < self.num_chunks:
            problems.append(f"need 0 <= --chunk-idx < --num-chunks, got {self.chunk_idx} and {self.num_chunks}")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.timeout <= 0 or self.save_every < 1:
            problems.append("--max_concurrency and --save_every must be >= 1, --max_retries >= 0, --timeout > 0")
        if self.max_new_tokens < 1:
            problems.append(f"--max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if problems:
            raise ValueError("; ".join(problems))


def _template(cfg: ApiInferenceConfig) -> str:
    from g4t.inference import resolve_template

    return resolve_template(cfg.template or (RAW if cfg.mode == "chat" else "gpt4tools"), None)


class _Cancelled(Exception):
    pass


class _StoppablePrompts(Sequence):
    """The prompt list handed to the backend: once ``stop`` is set, reading a prompt that has not
    been sent yet raises, so a backend that reads prompts as it sends them sends no more."""

    def __init__(self, prompts: list[str], stop: threading.Event) -> None:
        self._prompts = prompts
        self._stop = stop

    def __len__(self) -> int:
        return len(self._prompts)

    def __getitem__(self, i):
        if self._stop.is_set():
            raise _Cancelled
        return self._prompts[i]


class _SideLog:
    """Append-only JSONL of finished predictions beside the chunk file (``{name}_{idx}.partial.jsonl``).

    Every finished reply is appended (and flushed) at once, so a kill loses at most the requests in
    flight. The log is folded into the chunk file at the end of a run and at the start of the next one.
    """

    def __init__(self, chunk: Path) -> None:
        self.path = chunk.with_suffix(".partial.jsonl")
        self._f = None

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        from g4t.data.io import read_jsonl

        return [r for r in read_jsonl(self.path, allow_partial_last=True) if "id" in r and "output" in r]

    def append(self, record: dict) -> None:
        if self._f is None:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (kept open for the run)
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _fold_side_log(path: Path, order: list, log: _SideLog) -> None:
    """Merge a side log left by an interrupted run into its chunk file (by id; the log's entries win)."""
    leftover = log.read()
    if not leftover:
        log.remove()
        return
    writer = ChunkWriter(path, order, resume=True)
    allowed = set(order)
    for r in leftover:
        if r["id"] in allowed:
            writer.add(r["id"], r["output"])
    writer.flush()
    log.remove()
    print(f"folded {len(leftover)} finished prediction(s) of an interrupted run into {path}", file=sys.stderr)


def _existing_count(path: Path, order: list) -> int:
    if not path.is_file():
        return 0
    allowed = set(order)
    try:
        return sum(1 for p in load_predictions(path) if p["id"] in allowed)
    except EvalInputError:  # an unreadable file holds no usable prediction (--resume reports it instead)
        return 0


def run(cfg: ApiInferenceConfig, backend=None) -> tuple[int, int]:
    """Run one chunk through the API; returns ``(done, failed)``. ``backend`` overrides the ``OpenAIBackend``.

    Every finished reply is appended to ``{chunk}.partial.jsonl`` as it arrives; the chunk file is
    rewritten at the end (and every ``--save_every`` replies), never with fewer predictions than it
    already holds. SIGINT / SIGTERM (when called from the main thread) save what is finished and
    raise ``Interrupted`` within a second; the requests in flight are abandoned.
    """
    from tqdm import tqdm

    from g4t.llm.openai_backend import OpenAIBackend

    template = _template(cfg)
    prefix = cfg.thought_prefix if cfg.thought_prefix is not None else template == RAW
    samples = load_annotations(cfg.ann_path, require_output=False)
    chunk = load_chunk(samples, cfg.num_chunks, cfg.chunk_idx, cfg.ann_path)
    order = [s["id"] for s in chunk]
    path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
    path.parent.mkdir(parents=True, exist_ok=True)
    failed_path = path.with_suffix(".failed.json")
    log = _SideLog(path)
    _fold_side_log(path, order, log)
    existing = _existing_count(path, order)
    writer = ChunkWriter(path, order, resume=cfg.resume)
    todo = [s for s in chunk if s["id"] not in writer.done]
    meta = {**asdict(cfg), "template": template, "thought_prefix": prefix}
    print(
        f"{len(chunk)} samples, {len(chunk) - len(todo)} already done; template {template!r} -> {path}", file=sys.stderr
    )
    backend = backend or OpenAIBackend(
        cfg.model, cfg.base_url, cfg.mode, max_concurrency=cfg.max_concurrency, max_retries=cfg.max_retries,
        timeout=cfg.timeout, chat_role=cfg.chat_role, backoff_base=cfg.backoff_base,
    )  # fmt: skip
    prompts = []
    for s in todo:
        p = build_prompt(s, template)
        prompts.append(p + "\n" + THOUGHT_PREFIX if prefix else p)
    gen = GenerationConfig(
        temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, do_sample=cfg.temperature > 0
    )
    failures: list[dict] = []
    lock = threading.Lock()
    stop = threading.Event()
    pending = [0]
    new = [0]
    bar = tqdm(total=len(todo), desc="api", unit="sample", file=sys.stderr)

    def save() -> None:
        """Write the chunk file unless that would replace more predictions with fewer (caller holds lock)."""
        if len(writer.records) >= existing:
            writer.flush()
            atomic_write_json(path.with_suffix(".meta.json"), meta, indent=2)
            log.remove()
        elif new[0]:
            log.close()
            print(
                f"WARNING: kept the existing {path} ({existing} predictions): this run finished only "
                f"{len(writer.records)}. Its {new[0]} new prediction(s) stay in {log.path} and are merged "
                "into the chunk file (by id) at the start of the next run.",
                file=sys.stderr,
            )
        else:
            print(f"WARNING: this run finished no prediction; kept the existing {path} as it was", file=sys.stderr)

    def on_result(i: int, result) -> None:
        with lock:
            if stop.is_set():
                return  # interrupted: what was saved is final
            if result.ok:
                text = result.text
                if prefix and not text.lstrip().startswith("Thought:"):
                    text = THOUGHT_PREFIX + text
                output = join_output(todo[i]["instruction"], text, cfg.output_format)
                writer.add(todo[i]["id"], output)
                log.append({"id": todo[i]["id"], "output": output})
                new[0] += 1
                pending[0] += 1
                if pending[0] >= cfg.save_every and len(writer.records) >= existing:
                    writer.flush()
                    pending[0] = 0
            else:
                failures.append({"id": todo[i]["id"], "error": result.error, "attempts": result.attempts})
            bar.update(1)

    errors: list[BaseException] = []

    def work() -> None:
        try:
            backend.complete(_StoppablePrompts(prompts, stop), stop=list(DEFAULT_STOP), gen=gen, on_result=on_result)
        except _Cancelled:
            pass
        except BaseException as e:  # re-raised in the calling thread
            errors.append(e)

    # The requests run in a worker thread; this thread waits in short slices so that a signal handler
    # can run at once (a thread pool's shutdown would otherwise wait for every queued request).
    started = time.perf_counter()
    worker = threading.Thread(target=work, name="api-requests", daemon=True)
    with signals_raise_interrupted():
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
        except Interrupted as e:
            stop.set()
            with lock:
                save()
                bar.close()
            if failures:
                atomic_write_json(failed_path, failures, indent=1)
            print(
                f"{e}: saved the {len(writer.records)} finished prediction(s) to {path}; "
                f"{len(todo) - new[0] - len(failures)} not done. Continue with --resume.",
                file=sys.stderr,
            )
            raise
    with lock:
        stop.set()
        save()
        bar.close()
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - started
    if failures:
        atomic_write_json(failed_path, failures, indent=1)
        print(
            f"WARNING: {len(failures)} of {len(todo)} samples failed after retries (ids {[f['id'] for f in failures[:10]]}); "
            f"see {failed_path}. Re-run with --resume to retry them.",
            file=sys.stderr,
        )
    else:
        failed_path.unlink(missing_ok=True)
    usage = getattr(backend, "usage", None)
    print(
        f"{len(todo) - len(failures)} samples in {elapsed:.1f}s; usage: {usage.summary() if usage else 'n/a'}",
        file=sys.stderr,
    )
    return len(todo) - len(failures), len(failures)


def main(cfg: ApiInferenceConfig) -> int:
    """CLI entry point: inference, then evaluation of the chunk.

    Exit status: 0 done; 1 some samples failed after retries; 2 bad input (one line); 130 / 143
    interrupted by SIGINT / SIGTERM (finished predictions saved; the process ends at once, without
    waiting for the requests in flight).
    """
    try:
        done, failed = run(cfg)
    except (EvalInputError, ValueError) as e:
        print(f"inference_chatgpt.py: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.exit_status)  # worker threads still waiting on sockets must not delay the exit
    except KeyboardInterrupt:  # before or after the requests: nothing unsaved
        print("interrupted; finished samples are saved, continue with --resume", file=sys.stderr)
        return 130
    if cfg.evaluate:
        from g4t.evaluation.main import EvalConfig
        from g4t.evaluation.main import main as evaluate

        path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
        if cfg.num_chunks > 1:
            print("evaluate all chunks with evaluate_result.py once every chunk is done", file=sys.stderr)
        elif not path.is_file() or not load_predictions(path):
            print(f"no predictions in {path}; evaluation skipped", file=sys.stderr)
        else:
            status = evaluate(EvalConfig(ann_path=cfg.ann_path, save_name=cfg.save_name, save_path=cfg.save_path))
            if status:
                return status
    return 1 if failed else 0
