"""A backend that replays canned replies: drives the agent and the UI in tests without a model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from g4t.llm.base import (
    Completion,
    GenerationConfig,
    OnResult,
    complete_in_batches,
    stream_until_stop,
    truncate_at_stop,
)

__all__ = ["ScriptedBackend"]


class ScriptedBackend:
    """Return scripted replies in order (or from a function of the prompt).

    Args:
        replies: a list consumed one reply per prompt (the last one repeats when exhausted), or a
            callable ``prompt -> reply``.
        chunk_chars: characters per delta when streaming.
        delay: seconds to wait before each streamed delta (a slow model, for tests of the UI).

    Attributes:
        prompts: every prompt received, for assertions.
        streams_closed_early: streams closed by their consumer before the reply was complete.
    """

    def __init__(
        self, replies: Sequence[str] | Callable[[str], str], chunk_chars: int = 16, delay: float = 0.0
    ) -> None:
        if chunk_chars < 1 or delay < 0:
            raise ValueError(f"chunk_chars must be >= 1 and delay >= 0, got {chunk_chars} and {delay}")
        self.replies = replies
        self.chunk_chars = chunk_chars
        self.delay = delay
        self.prompts: list[str] = []
        self.streams_closed_early = 0
        self._next = 0
        self._lock = threading.Lock()

    def _reply(self, prompt: str) -> str:
        if callable(self.replies):
            return self.replies(prompt)
        with self._lock:
            reply = self.replies[min(self._next, len(self.replies) - 1)]
            self._next += 1
        return reply

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            out.append(truncate_at_stop(self._reply(prompt), stop))
        return out

    def complete(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] = (),
        gen: GenerationConfig | None = None,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """Backend contract, per sample: one prompt at a time, in order (the script is consumed in order)."""
        return complete_in_batches(self.generate, prompts, stop, gen, on_result)

    def stream(self, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None) -> Iterator[str]:
        """The scripted reply in ``chunk_chars`` pieces, ``delay`` seconds apart, cut at the first stop string.

        Closing the generator stops it before the next piece (counted in ``streams_closed_early``).
        """
        self.prompts.append(prompt)
        reply = self._reply(prompt)
        return stream_until_stop(self._pieces(reply, len(truncate_at_stop(reply, stop))), stop)

    def _pieces(self, reply: str, needed: int) -> Iterator[str]:
        """``reply`` in pieces; closing before the first ``needed`` characters were sent counts as closed early."""
        sent = 0
        try:
            for start in range(0, len(reply), self.chunk_chars):
                if self.delay:
                    time.sleep(self.delay)
                sent = start + self.chunk_chars  # counted once handed over
                yield reply[start:sent]
        finally:
            if sent < needed:
                with self._lock:
                    self.streams_closed_early += 1
