"""The backend contract and the generation config shared by every script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Backend", "GenerationConfig", "LLMError", "ModelLoadError", "truncate_at_stop"]


class LLMError(RuntimeError):
    """The LLM could not produce an answer (server error after retries, bad response...)."""


class ModelLoadError(RuntimeError):
    """A model or adapter could not be loaded; the message says what to do instead."""


@dataclass
class GenerationConfig:
    """Decoding settings (published defaults).

    Attributes:
        temperature: sampling temperature (only used with ``do_sample``); published default 0.1.
        top_p: nucleus sampling mass (only with ``do_sample``); published 0.75.
        top_k: top-k sampling (only with ``do_sample``); published 40.
        num_beams: beam search width; 1 = greedy.
        max_new_tokens: generation budget per call; published 512.
        do_sample: sample instead of greedy decoding. The published scripts never set it, so their
            decoding was greedy whatever the temperature; False reproduces that.
    """

    temperature: float = 0.1
    top_p: float = 0.75
    top_k: int = 40
    num_beams: int = 1
    max_new_tokens: int = 512
    do_sample: bool = False

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


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (the stop string is removed)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


@runtime_checkable
class Backend(Protocol):
    """Anything that turns prompts into completions."""

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        """Complete each prompt; completions exclude the prompt and are cut at the first stop string."""
        ...
