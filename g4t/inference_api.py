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
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Literal

from g4t.cli import arg
from g4t.evaluation.io import EvalInputError, atomic_write_json, chunk_path, load_annotations
from g4t.inference import DEFAULT_STOP, RAW, ChunkWriter, build_prompt, join_output, load_chunk
from g4t.llm.base import GenerationConfig

__all__ = ["THOUGHT_PREFIX", "ApiInferenceConfig", "main", "run"]

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
    save_every: int = arg(32, help="Rewrite the chunk file after this many finished samples.")
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


def run(cfg: ApiInferenceConfig, backend=None) -> tuple[int, int]:
    """Run one chunk through the API; returns ``(done, failed)``. ``backend`` overrides the ``OpenAIBackend``."""
    from tqdm import tqdm

    from g4t.llm.openai_backend import OpenAIBackend

    template = _template(cfg)
    prefix = cfg.thought_prefix if cfg.thought_prefix is not None else template == RAW
    samples = load_annotations(cfg.ann_path, require_output=False)
    chunk = load_chunk(samples, cfg.num_chunks, cfg.chunk_idx, cfg.ann_path)
    path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
    failed_path = path.with_suffix(".failed.json")
    writer = ChunkWriter(path, [s["id"] for s in chunk], resume=cfg.resume)
    todo = [s for s in chunk if s["id"] not in writer.done]
    meta = {**asdict(cfg), "template": template, "thought_prefix": prefix}
    atomic_write_json(path.with_suffix(".meta.json"), meta, indent=2)
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
    pending = [0]
    bar = tqdm(total=len(todo), desc="api", unit="sample", file=sys.stderr)

    def on_result(i: int, result) -> None:
        with lock:
            if result.ok:
                text = result.text
                if prefix and not text.lstrip().startswith("Thought:"):
                    text = THOUGHT_PREFIX + text
                writer.add(todo[i]["id"], join_output(todo[i]["instruction"], text, cfg.output_format))
                pending[0] += 1
                if pending[0] >= cfg.save_every:
                    writer.flush()
                    pending[0] = 0
            else:
                failures.append({"id": todo[i]["id"], "error": result.error, "attempts": result.attempts})
            bar.update(1)

    started = time.perf_counter()
    try:
        backend.complete(prompts, stop=list(DEFAULT_STOP), gen=gen, on_result=on_result)
    finally:
        with lock:
            writer.flush()
            bar.close()
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
    """CLI entry point: inference, then evaluation of the chunk; exit 1 when samples failed."""
    try:
        _, failed = run(cfg)
    except (EvalInputError, ValueError) as e:
        print(f"inference_chatgpt.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished samples are saved, continue with --resume", file=sys.stderr)
        return 130
    if cfg.evaluate:
        from g4t.evaluation.main import EvalConfig
        from g4t.evaluation.main import main as evaluate

        if cfg.num_chunks > 1:
            print("evaluate all chunks with evaluate_result.py once every chunk is done", file=sys.stderr)
        else:
            status = evaluate(EvalConfig(ann_path=cfg.ann_path, save_name=cfg.save_name, save_path=cfg.save_path))
            if status:
                return status
    return 1 if failed else 0
