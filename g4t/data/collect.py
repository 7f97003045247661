"""``scripts/get_instruction.py``: ask a teacher LLM for instructions, one JSONL record per caption.

Fixes the published script: it lost up to 9 trailing results (no final dump), retried forever with
no backoff, ran one request at a time and could not resume. Here every caption ends as either a
reply record in ``--instruction_path`` (appended and flushed as it arrives) or a failure record in
``<instruction_path>.failed.jsonl``; a rerun skips the captions already answered (a line cut by a
kill is discarded and its caption asked again) and retries the failures. Requests go through
``g4t.llm.openai_backend.OpenAIBackend`` (bounded concurrency, exponential backoff with jitter on
429/5xx/timeouts/malformed bodies).

Reply record: ``{"id", "file_name", "caption", "instructions", "model", "usage", "attempts",
"latency_s", "prompt_sha1"}`` -- ``instructions`` is the raw teacher reply (published field name).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from g4t.cli import arg, group, split_list
from g4t.data.captions import Caption, load_captions
from g4t.data.io import DataError, JsonlAppender, read_jsonl
from g4t.data.teacher import teacher_prompt, teacher_tool_lines
from g4t.interrupts import Interrupted, call_in_worker, signals_raise_interrupted
from g4t.settings import OpenAIConnection

__all__ = ["CollectConfig", "collect", "main"]


@dataclass
class CollectConfig:
    """Options of ``scripts/get_instruction.py`` (published flag spellings are accepted)."""

    caption_path: str = arg(
        aliases=["--caption-path"], help="Captions: published [{file_name, caption}] list, COCO captions JSON or JSONL."
    )
    instruction_path: str = arg(aliases=["--instruction-path"], help="Output JSONL (appended; rerun to resume).")
    openai: OpenAIConnection = group(
        lambda: OpenAIConnection(
            openai_model="gpt-3.5-turbo",  # published teacher
            chat_role="system",  # published: the filled prompt is a single system message
            max_concurrency=16,  # published: 1
            max_retries=6,
            timeout=120.0,  # 26 instructions take ~1,000-1,500 tokens
        )
    )
    temperature: float = arg(0.7, help="Sampling temperature (published 0.7).")
    max_tokens: int = arg(2048, help="Completion budget per caption (26 instructions take ~1,000-1,500 tokens).")
    tools: list[str] = arg(
        default_factory=list, help="Tools appended to the 26 published ones, e.g. 'Edit Image Using Text'."
    )
    limit: int | None = arg(
        None, help="Only the first N captions of the file (after resume skipping: the first N overall)."
    )
    price_prompt: float = arg(0.0, help="Price per 1M prompt tokens, for the cost summary (0 = tokens only).")
    price_completion: float = arg(0.0, help="Price per 1M completion tokens, for the cost summary.")
    progress: bool = arg(True, help="Show a progress bar.")

    def __post_init__(self) -> None:
        self.tools = split_list(self.tools)
        problems = []
        if self.openai.protocol != "react":
            problems.append("--protocol: the teacher answers in text; only react applies to get_instruction.py")
        if self.limit is not None and self.limit < 0:
            problems.append(f"--limit must be >= 0, got {self.limit}")
        if self.temperature < 0:
            problems.append(f"--temperature must be >= 0, got {self.temperature}")
        if problems:
            raise ValueError("; ".join(problems))


def failed_path(path: str | Path) -> Path:
    """Where failures of a run are recorded."""
    return Path(str(path) + ".failed.jsonl")


def _done_ids(path: Path) -> set[str]:
    """Ids already answered; a partial last line (killed writer) is cut off the file."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
    records = read_jsonl(path)
    done = set()
    for i, r in enumerate(records, 1):
        if "id" not in r:
            raise DataError(f"{path}:{i}: record has no 'id' (not a get_instruction output file?)")
        done.add(str(r["id"]))
    return done


def _make_backend(cfg: CollectConfig):
    return cfg.openai.backend(max_tokens=cfg.max_tokens)


def collect(cfg: CollectConfig) -> dict:
    """Ask the teacher for every caption not answered yet; returns the run summary.

    Raises:
        DataError: unreadable caption or output file.
        ValueError: unknown ``--tools``.
    """
    from g4t.llm.base import GenerationConfig

    captions = load_captions(cfg.caption_path)
    if cfg.limit is not None:
        captions = captions[: cfg.limit]
    teacher_tool_lines(cfg.tools)  # validate --tools before any request
    out = Path(cfg.instruction_path)
    done = _done_ids(out)
    todo: list[Caption] = [c for c in captions if c.id not in done]
    fpath = failed_path(out)
    fpath.unlink(missing_ok=True)  # this run's failures only; earlier ones are retried now
    summary = {"captions": len(captions), "already_done": len(captions) - len(todo), "asked": len(todo)}
    backend = _make_backend(cfg)
    prompts = [teacher_prompt(c.caption, cfg.tools) for c in todo]
    gen = GenerationConfig(temperature=cfg.temperature, top_p=1.0, max_new_tokens=cfg.max_tokens, do_sample=True)
    writer, failures = JsonlAppender(out), None
    counts = {"ok": 0, "failed": 0}
    bar = None
    if cfg.progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="teacher", unit="caption")
    lock = threading.Lock()
    t0 = time.perf_counter()

    stopped = threading.Event()

    def on_result(i: int, completion) -> None:
        nonlocal failures
        if stopped.is_set():
            return  # interrupted: what was written is final
        c = todo[i]
        base = {"id": c.id, "file_name": c.file_name, "caption": c.caption}
        if completion.ok:
            writer.write(
                base
                | {
                    "instructions": completion.text,
                    "model": completion.model or cfg.openai.openai_model,
                    "usage": completion.usage,
                    "attempts": completion.attempts,
                    "latency_s": round(completion.seconds, 3),
                    "prompt_sha1": hashlib.sha1(prompts[i].encode()).hexdigest(),
                }
            )
            key = "ok"
        else:
            with lock:
                if failures is None:
                    failures = JsonlAppender(fpath)
            failures.write(
                base | {"error": completion.error, "attempts": completion.attempts, "model": cfg.openai.openai_model}
            )
            key = "failed"
        with lock:
            counts[key] += 1
            if bar is not None:
                bar.update(1)

    try:
        # The requests run in a worker thread so that SIGINT / SIGTERM are handled at once: the answers
        # already appended stay, the requests in flight are abandoned (asked again by the next run).
        with signals_raise_interrupted():
            call_in_worker(backend.complete, prompts, gen=gen, on_result=on_result)
    except Interrupted:
        stopped.set()
        writer.close()
        with lock:
            if failures is not None:
                failures.close()
            ok, failed = counts["ok"], counts["failed"]
        if bar is not None:
            bar.close()
        print(
            f"interrupted: {summary['already_done'] + ok} of {len(captions)} captions answered in {out} "
            f"({ok} this run, {failed} failed, {len(todo) - ok - failed} not asked or in flight); "
            "rerun the same command to continue",
            file=sys.stderr,
        )
        raise
    finally:
        writer.close()
        if failures is not None:
            failures.close()
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    u = backend.usage
    cost = (u.prompt_tokens * cfg.price_prompt + u.completion_tokens * cfg.price_completion) / 1e6
    summary |= {
        "ok": counts["ok"],
        "failed": counts["failed"],
        "failed_path": str(fpath) if counts["failed"] else None,
        "requests": u.requests,
        "retries": u.retries,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cost": round(cost, 6),
        "seconds": round(elapsed, 3),
        "records_per_s": round(counts["ok"] / elapsed, 3) if elapsed > 0 else 0.0,
    }
    return summary


def main(cfg: CollectConfig) -> int:
    """CLI entry: run and print the summary.

    Exit status: 0 done; 1 some captions failed (listed in the ``.failed.jsonl`` file); 2 bad input
    (one line on stderr); 130 / 143 interrupted by SIGINT / SIGTERM (answers so far kept).
    """
    try:
        s = collect(cfg)
    except (DataError, ValueError) as e:
        print(f"get_instruction.py: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.exit_status)  # request threads still waiting on sockets must not delay the exit
    cost = f", cost {s['cost']:.4f}" if cfg.price_prompt or cfg.price_completion else ""
    print(
        f"{s['captions']} captions: {s['already_done']} already done, {s['ok']} answered, {s['failed']} failed "
        f"in {s['seconds']:.1f}s ({s['records_per_s']:.2f}/s); {s['requests']} requests ({s['retries']} retried); "
        f"tokens {s['prompt_tokens']} prompt + {s['completion_tokens']} completion{cost}"
    )
    if s["failed"]:
        print(f"failures recorded in {s['failed_path']}; rerun the same command to retry them", file=sys.stderr)
    return 1 if s["failed"] else 0
