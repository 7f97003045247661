"""A backend that replays canned replies: drives the agent and the UI in tests without a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from g4t.llm.base import GenerationConfig, truncate_at_stop

__all__ = ["ScriptedBackend"]


class ScriptedBackend:
    """Return scripted replies in order (or from a function of the prompt).

    Args:
        replies: a list consumed one reply per prompt (the last one repeats when exhausted), or a
            callable ``prompt -> reply``.

    Attributes:
        prompts: every prompt received, for assertions.
    """

    def __init__(self, replies: Sequence[str] | Callable[[str], str]) -> None:
        self.replies = replies
        self.prompts: list[str] = []
        self._next = 0

    def _reply(self, prompt: str) -> str:
        if callable(self.replies):
            return self.replies(prompt)
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
