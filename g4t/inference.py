"""Batch inference of a GPT4Tools annotation file: ``inference.py`` (local model) and the shared runner.

What a prediction's ``output`` holds (``output_format``):

* ``full`` (default) -- the annotation's ``instruction`` text followed by the completion, exactly
  ``instruction + completion``. The published ``evaluate_result.py`` slices ``output[len(instruction):]``,
  so it scores these files correctly, and without the published tokenizer round trip of the prompt
  (the published script stored the *decoded* prompt, which could shift the slice).
* ``completion`` -- the completion only (what the published ChatGPT baseline stored).

``g4t.evaluation`` accepts both (``--prompt_mode auto``). The completion is what the model generated
after the conversation template's response marker, cut before the observation marker
(``\\nObservation:``) or EOS.

Chunk files ``{save_path}/{save_name}/{save_name}_{idx}.json`` (``[{"id", "output"}]``, annotation
order) are rewritten atomically after every batch, so a killed run loses at most one batch and
``--resume`` continues where it stopped, with no id lost or duplicated.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from g4t.cli import arg
from g4t.evaluation.io import (
    EvalInputError,
    atomic_write_json,
    chunk_bounds,
    chunk_path,
    load_annotations,
    load_predictions,
)
from g4t.llm.base import GenerationConfig, LLMError, ModelLoadError
from g4t.precision import DTYPE_HELP, DTypeName

if TYPE_CHECKING:
    from g4t.prompts import PromptTemplate

__all__ = [
    "DEFAULT_STOP",
    "ChunkWriter",
    "InferenceConfig",
    "build_prompt",
    "join_output",
    "load_chunk",
    "main",
    "resolve_template",
    "run",
]

# The model ends a tool call with "Observation:" (the tool's result follows); stop there.
DEFAULT_STOP = ("\nObservation:",)
RAW = "none"  # --template none: the raw instruction, as the published b91d319 inference.py did


def resolve_template(template: str | None, lora_model: str | None, base_model: str | None = None) -> str:
    """``--template`` if given, else the template saved with the adapter, else the one saved in the base
    model folder (a ``--full_finetune`` output), else ``gpt4tools``.

    Raises:
        ValueError: unknown template name (the message lists the valid ones).
    """
    from g4t.prompts import CHAT_TEMPLATE, load_template, saved_template_name

    name = template or saved_template_name(lora_model, base_model) or "gpt4tools"
    if name not in (RAW, CHAT_TEMPLATE):  # chat is checked once the tokenizer is loaded
        load_template(name)  # validates the name
    return name


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
            raise EvalInputError(f"{ann_path}: item [{i}]: duplicate id {s['id']!r}")
        seen.add(s["id"])
    return chunk


class ChunkWriter:
    """Holds the finished predictions of one chunk and rewrites its file atomically.

    Args:
        path: the chunk file.
        order: ids of the chunk in annotation order (the file keeps that order).
        resume: keep the predictions already in ``path`` (ids outside ``order`` are dropped).
    """

    def __init__(self, path: Path, order: Sequence, resume: bool = False) -> None:
        self.path = Path(path)
        self.order = list(order)
        self.records: dict = {}
        if resume and self.path.is_file():
            allowed = set(self.order)
            for item in load_predictions(self.path):
                if item["id"] in allowed:
                    self.records[item["id"]] = {"id": item["id"], "output": item["output"]}

    @property
    def done(self) -> set:
        return set(self.records)

    def add(self, sample_id, output: str) -> None:
        self.records[sample_id] = {"id": sample_id, "output": output}

    def flush(self) -> None:
        atomic_write_json(self.path, [self.records[i] for i in self.order if i in self.records])


def run_batches(
    todo: list[dict],
    prompts: list[str],
    generate: Callable[[list[str]], list[str]],
    writer: ChunkWriter,
    batch_size: int,
    output_format: str,
    desc: str = "inference",
) -> None:
    """Generate ``prompts`` ``batch_size`` at a time (in the given order), flushing after each batch."""
    from tqdm import tqdm

    with tqdm(total=len(todo), desc=desc, unit="sample", file=sys.stderr) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            completions = generate(prompts[start : start + batch_size])
            for sample, completion in zip(batch, completions, strict=True):
                writer.add(sample["id"], join_output(sample["instruction"], completion, output_format))
            writer.flush()
            bar.update(len(batch))


@dataclass
class InferenceConfig:
    """``inference.py``: the published flags plus ``--batch_size``, ``--template``, ``--resume``."""

    base_model: str = arg(
        help="Base model: Hugging Face id, local folder, .gguf file, or smollm2 (packaged SmolLM2-135M-Instruct)."
    )
    ann_path: str = arg(help="Annotation file (gpt4tools_val_seen.json, gpt4tools_test_unseen.json).")
    save_name: str = arg(help="Run name: writes {save_path}/{save_name}/{save_name}_{chunk_idx}.json.")
    lora_model: str = arg("none", help="peft LoRA adapter folder or id; 'none' for the base model alone.")
    llm_device: str = arg("auto", help="Torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:1...")
    dtype: DTypeName = arg(
        "auto",
        help=DTYPE_HELP,
    )
    load_8bit: bool = arg(False, help="Load the base model in 8-bit (bitsandbytes, GPU).")
    save_path: str = arg("output/eval_result", help="Root output folder.")
    num_chunks: int = arg(1, help="Split the annotations into this many consecutive chunks.", aliases=["--num-chunks"])
    chunk_idx: int = arg(0, help="Which chunk this process runs (0-based).", aliases=["--chunk-idx"])
    temperature: float = arg(0.1, help="Sampling temperature (only with --do_sample; published decoding was greedy).")
    top_p: float = arg(0.75, help="Nucleus mass (only with --do_sample).")
    top_k: int = arg(40, help="Top-k (only with --do_sample).")
    num_beams: int = arg(1, help="Beam width; 1 = greedy.")
    max_new_tokens: int = arg(512, help="Generation budget per sample (published 512).")
    do_sample: bool = arg(False, help="Sample instead of greedy decoding (the published script never sampled).")
    batch_size: int = arg(8, help="Prompts per generate call (longest first, left padding, KV cache).")
    template: str | None = arg(
        None,
        help="Conversation template (templates/*.json), 'chat' (the tokenizer's own chat template) or 'none' for the "
        "raw instruction. Default: the template saved in training_config.json with the adapter, else in the base "
        "model folder (a --full_finetune output), else gpt4tools.",
    )
    resume: bool = arg(False, help="Keep the predictions already in the chunk file and do only the rest.")
    output_format: Literal["full", "completion"] = arg(
        "full", help="'full': output = instruction + completion (published-evaluator compatible); 'completion'."
    )
    stop: list[str] = arg(
        default_factory=lambda: list(DEFAULT_STOP), help="Stop strings (default: the observation marker)."
    )
    local_rank: int = arg(-1, help="Accepted for compatibility with the published CLI; unused.")

    def __post_init__(self) -> None:
        problems = []
        if self.num_chunks < 1:
            problems.append(f"--num-chunks must be >= 1, got {self.num_chunks}")
        elif not 0 <= self.chunk_idx < self.num_chunks:
            problems.append(f"--chunk-idx must be in [0, {self.num_chunks}), got {self.chunk_idx}")
        if self.batch_size < 1:
            problems.append(f"--batch_size must be >= 1, got {self.batch_size}")
        try:
            self.generation()
        except ValueError as e:
            problems.append(str(e))
        if problems:
            raise ValueError("; ".join(problems))

    def generation(self) -> GenerationConfig:
        return GenerationConfig(
            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
        )  # fmt: skip


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run(cfg: InferenceConfig, backend=None) -> Path:
    """Run one chunk; returns the chunk file. ``backend`` (anything with ``generate``) skips model loading.

    Raises:
        EvalInputError: bad annotation or chunk file. ModelLoadError: the model cannot be loaded.
    """
    template = resolve_template(cfg.template, cfg.lora_model, cfg.base_model)
    samples = load_annotations(cfg.ann_path, require_output=False)
    chunk = load_chunk(samples, cfg.num_chunks, cfg.chunk_idx, cfg.ann_path)
    path = chunk_path(cfg.save_path, cfg.save_name, cfg.chunk_idx)
    writer = ChunkWriter(path, [s["id"] for s in chunk], resume=cfg.resume)
    todo = [s for s in chunk if s["id"] not in writer.done]
    print(
        f"chunk {cfg.chunk_idx}/{cfg.num_chunks}: {len(chunk)} samples, {len(chunk) - len(todo)} already done, "
        f"template {template!r} -> {path}",
        file=sys.stderr,
    )
    atomic_write_json(path.with_suffix(".meta.json"), {**asdict(cfg), "template": template}, indent=2)
    if not todo:
        writer.flush()
        return path
    if backend is None:
        from g4t.llm.hf import HFBackend, load_model

        model, tokenizer = load_model(
            cfg.base_model, cfg.lora_model, device=_device(cfg.llm_device), dtype=cfg.dtype, load_in_8bit=cfg.load_8bit
        )
        backend = HFBackend(model, tokenizer, cfg.batch_size)
    if template != RAW:  # load once (``chat`` renders the loaded tokenizer's chat template)
        from g4t.prompts import load_template

        template = load_template(template, tokenizer=getattr(backend, "tokenizer", None))
    prompts = [build_prompt(s, template) for s in todo]
    # Longest first across the whole chunk: batches hold prompts of similar length (little padding),
    # and an out-of-memory error shows up in the first batch rather than at the end.
    order = sorted(range(len(todo)), key=lambda i: -len(prompts[i]))
    todo, prompts = [todo[i] for i in order], [prompts[i] for i in order]
    gen = cfg.generation()
    started = time.perf_counter()
    run_batches(
        todo,
        prompts,
        lambda batch: backend.generate(batch, stop=cfg.stop, gen=gen),
        writer,
        cfg.batch_size,
        cfg.output_format,
        desc=f"chunk {cfg.chunk_idx}",
    )
    elapsed = time.perf_counter() - started
    print(
        f"{len(todo)} samples in {elapsed:.1f}s ({len(todo) / max(elapsed, 1e-9):.2f} samples/s) -> {path}",
        file=sys.stderr,
    )
    return path


def main(cfg: InferenceConfig) -> int:
    """CLI entry point; returns the exit status (clear one-line errors, no tracebacks for bad inputs)."""
    try:
        run(cfg)
    except (EvalInputError, ModelLoadError, LLMError, ValueError) as e:
        print(f"inference.py: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (EvalInputError, ValueError)) else 1
    except KeyboardInterrupt:
        print("inference.py: interrupted; finished batches are saved, continue with --resume", file=sys.stderr)
        return 130
    return 0
