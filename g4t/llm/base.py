"""The backend contract and the generation config shared by every script."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from g4t.cli import arg

__all__ = [
    "Backend",
    "Completion",
    "GenerationConfig",
    "LLMError",
    "ModelLoadError",
    "OnResult",
    "StreamingBackend",
    "complete_in_batches",
    "stream_text",
    "stream_until_stop",
    "truncate_at_stop",
]


class LLMError(RuntimeError):
    """The LLM could not produce an answer (server error after retries, bad response...)."""


class ModelLoadError(RuntimeError):
    """A model or adapter could not be loaded; the message says what to do instead."""


@dataclass
class GenerationConfig:
    """Decoding settings (published defaults), the same flags in every script.

    ``do_sample`` alone chooses sampling: the published scripts never set it, so their decoding was
    greedy whatever the temperature, and an OpenAI-compatible server then gets temperature 0.
    ``constrain_tools`` masks tokens while decoding (``g4t.llm.tool_constraint``), so only a local model
    (``HFBackend``) can apply it; ``OpenAIBackend`` refuses it.
    """

    temperature: float = arg(0.1, help="Sampling temperature, used only with --do_sample (published 0.1).")
    top_p: float = arg(0.75, help="Nucleus sampling mass, used only with --do_sample (published 0.75).")
    top_k: int = arg(40, help="Top-k sampling, used only with --do_sample by local models (published 40).")
    num_beams: int = arg(1, help="Beam search width for local models; 1 = greedy (published 1).")
    max_new_tokens: int = arg(512, help="Generation budget per answer in tokens (published 512).")
    do_sample: bool = arg(False, help="Sample instead of greedy decoding (the published scripts never sampled).")
    constrain_tools: bool = arg(
        False,
        help="Local models: on every line that starts with 'Action:', allow only a tool name listed in the prompt "
        "('should be one of [...]'); decoding picks among them by the model's scores. Not with OpenAI servers.",
    )

    def __post_init__(self) -> None:
        problems = []
        if self.temperature < 0:
            problems.append(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"top_k must be >= 0, got {self.top_k}")
        if self.num_beams < 1:
            problems.append(f"num_beams must be >= 1, got {self.num_beams}")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class Completion:
    """The outcome of one prompt: ``text`` (cut at the stop strings) or ``error``.

    Attributes:
        text: the completion, or None when the prompt failed.
        error: why it failed (after retries), or None.
        attempts: requests sent for this prompt (1 for a local model).
        model: the model name the server reported for the answer (None if it sent none).
        usage: ``{"prompt_tokens", "completion_tokens"}`` of the answer, when the server reported them.
        seconds: wall time for this prompt (a local model: its batch's time), retries and back-off included.
    """

    text: str | None
    error: str | None = None
    attempts: int = 0
    model: str | None = None
    usage: dict[str, int] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


# ``on_result(index, completion)``: called as each prompt finishes; returning False asks the backend
# to start no more prompts (those in flight still finish).
OnResult = Callable[[int, Completion], "bool | None"]


def complete_in_batches(
    generate: Callable[[list[str], Sequence[str], GenerationConfig | None], list[str]],
    prompts: Sequence[str],
    stop: Sequence[str] = (),
    gen: GenerationConfig | None = None,
    on_result: OnResult | None = None,
    batch_size: int = 1,
    longest_first: bool = False,
) -> list[Completion]:
    """``Backend.complete`` for a backend whose ``generate`` does a batch at once (local models, scripts).

    Prompts go ``batch_size`` at a time to ``generate`` (with ``longest_first``: sorted longest first
    across all prompts, so batches hold similar lengths and an out-of-memory error shows in the first
    batch); each result is reported as its batch finishes. An exception from ``generate`` propagates.
    """
    order = list(range(len(prompts)))
    if longest_first:
        order.sort(key=lambda i: -len(prompts[i]))
    results: list[Completion | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        t0 = time.perf_counter()
        texts = generate([prompts[i] for i in batch], stop, gen)
        seconds = time.perf_counter() - t0
        stopped = False
        for i, text in zip(batch, texts, strict=True):
            results[i] = Completion(text, attempts=1, seconds=seconds)
            if on_result is not None and on_result(i, results[i]) is False:
                stopped = True
        if stopped:
            break
    return [r if r is not None else Completion(None, "not started: stopped by the caller") for r in results]


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (the stop string is removed)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is the start of a stop string (it may become one)."""
    longest = 0
    for s in stops:
        first = text.find(s[0], max(0, len(text) - len(s) + 1))  # a candidate end starts with s[0]
        while first >= 0 and len(text) - first > longest:
            if s.startswith(text[first:]):
                longest = len(text) - first
                break
            first = text.find(s[0], first + 1)
    return longest


def stream_until_stop(deltas: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """Text deltas cut at the first stop string, for ``stream`` implementations.

    A stop string may span deltas: text that could be the start of one is held back until the next
    delta settles it, so the concatenation of what is yielded equals ``truncate_at_stop`` of the
    concatenation of ``deltas``. Iteration ends at the stop string; ``deltas`` is closed then, and
    when the returned generator is closed (the consumer stopped listening).
    """
    stops = [s for s in stop if s]
    held = ""
    source = iter(deltas)
    try:
        for delta in source:
            if not delta:
                continue
            held += delta
            cut = min((i for s in stops if (i := held.find(s)) >= 0), default=-1)
            if cut >= 0:
                if cut:
                    yield held[:cut]
                return
            keep = _held_back(held, stops)
            if len(held) > keep:
                yield held[: len(held) - keep]
                held = held[len(held) - keep :]
        if held:
            yield held
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def stream_text(
    backend: Backend, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None
) -> Iterator[str]:
    """The completion of ``prompt`` as text deltas: ``backend.stream`` where the backend has one,
    otherwise ``generate`` once (a single delta). Closing the generator closes the backend's stream."""
    stream = getattr(backend, "stream", None)
    if callable(stream):
        yield from stream(prompt, stop, gen)
    else:
        yield backend.generate([prompt], stop, gen)[0]


@runtime_checkable
class Backend(Protocol):
    """Anything that turns prompts into completions.

    ``generate`` is the whole-batch call of the agent (a failure raises); ``complete`` is the per-sample
    call of the batch runner: every prompt gets a ``Completion`` (a failure is reported in it, or the
    call raises when nothing can be done), and ``on_result`` hears each one as it finishes.
    """

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        """Complete each prompt; completions exclude the prompt and are cut at the first stop string."""
        ...

    def complete(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] = (),
        gen: GenerationConfig | None = None,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """One ``Completion`` per prompt, in input order; ``on_result(index, completion)`` is called as each
        finishes (from any thread); when it returns False no further prompt is started."""
        ...


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A backend that can also stream one completion (optional: ``stream_text`` falls back to ``generate``).

    ``stream(prompt, stop, gen)`` yields text deltas whose concatenation equals
    ``generate([prompt], stop, gen)[0]``: cut at the first stop string, which may span deltas (hold
    back text that could be its start; ``stream_until_stop`` does this). Closing the generator
    (``GeneratorExit``) must stop generation promptly: a local model stops after the current token,
    a server's response is closed.
    """

    def stream(self, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None) -> Iterator[str]:
        """Yield the completion of ``prompt`` as it is generated (see the class docstring)."""
        ...
