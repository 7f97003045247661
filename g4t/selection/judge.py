"""LLM-judge indicator: a 0-100 score from any OpenAI-compatible endpoint.

The InstructionGPT-4 GPT score with a rubric rewritten for tool use (is the decision to use a tool
right, is the tool valid, are the arguments well-formed and grounded, is the format followed),
greedy decoding, and a robust parse (the first integer in 0-100, not the first two characters).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from g4t.selection.samples import parse_sample
from g4t.settings import OpenAIConnection

__all__ = ["JUDGE_PROMPT", "LLMJudge", "parse_judge_score"]

JUDGE_PROMPT = """We would like you to rate one training example for an AI assistant that solves visual tasks by \
calling tools with a fixed text protocol ("Thought: Do I need to use a tool? Yes/No", "Action:", "Action Input:", \
"AI:"). The image itself is not shown; only its file name and description.
Rate the assistant's reply from 0 to 100 (higher is better) for: whether using a tool (or not) is the right \
decision, whether the tool is one of the available tools and fits the request, whether the arguments are \
well-formed and grounded in the conversation (correct file names, relevant text), and whether the format is followed.
Output the score alone on the first line, then a short explanation.

Available tools: {tools}
Conversation: {history}
Request: {request}
Earlier steps: {scratchpad}
Reply: {output}"""

_INT = re.compile(r"\b(\d{1,3})\b")


def parse_judge_score(text: str) -> float:
    """The first integer in 0-100 in the judge's reply (first line preferred); NaN if none."""
    for chunk in (text.strip().split("\n", 1)[0], text):
        for m in _INT.finditer(chunk):
            value = int(m[1])
            if 0 <= value <= 100:
                return float(value)
    return math.nan


@dataclass
class LLMJudge:
    """Score records with an LLM behind an OpenAI-compatible API (``g4t.llm.openai_backend``).

    Attributes:
        model: model name at the endpoint (e.g. ``gpt-4o-mini``, or the vLLM/Ollama served name).
        base_url: endpoint (None: the OpenAI API; ``OPENAI_API_KEY`` is read at call time).
        api_key: explicit key (else the backend reads the environment).
        max_concurrency: parallel requests.
        max_new_tokens: reply budget (the score is on the first line).
        connection: the server settings of the calling script (``--openai_*``, retries, timeouts); when
            given, its backend is used and ``model`` / ``base_url`` only name the judge in the cache key.
    """

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None
    max_concurrency: int = 8
    max_new_tokens: int = 64
    name: str = "judge"
    connection: OpenAIConnection | None = None  # the script's server flags (model, URL, retries, ...)

    def __post_init__(self) -> None:
        self._backend = None

    def config(self) -> dict:
        return {"model": self.model, "base_url": self.base_url, "prompt": JUDGE_PROMPT}

    def finalize(self, values: np.ndarray) -> np.ndarray:
        return values

    def prompt(self, record: dict) -> str:
        """The judge prompt for one record."""
        p = parse_sample(record)
        return JUDGE_PROMPT.format(
            tools=", ".join(p.offered_tools) or "(not listed)",
            history=p.history or "(none)",
            request=p.request,
            scratchpad=p.scratchpad.strip() or "(none)",
            output=p.output.strip(),
        )

    def _complete(self, records: list[dict], on_result=None) -> list:
        from g4t.interrupts import call_in_worker
        from g4t.llm.base import GenerationConfig

        if self._backend is None and self.connection is not None:
            self._backend = self.connection.backend()
        if self._backend is None:
            from g4t.llm.openai_backend import OpenAIBackend

            self._backend = OpenAIBackend(
                self.model,
                base_url=self.base_url,
                mode="chat",
                api_key=self.api_key,
                max_concurrency=self.max_concurrency,
            )
        gen = GenerationConfig(temperature=0.0, max_new_tokens=self.max_new_tokens)
        prompts = [self.prompt(r) for r in records]
        # In a worker thread, so that SIGINT / SIGTERM reach the main thread at once.
        return call_in_worker(self._backend.complete, prompts, stop=(), gen=gen, on_result=on_result)

    def score(self, records: list[dict]) -> list[float]:
        """Scores in record order; a prompt that still fails after the backend's retries scores NaN."""
        return [parse_judge_score(r.text) if r.ok else math.nan for r in self._complete(records)]

    def score_each(self, records: list[dict], on_value) -> None:
        """Report ``on_value(i, score)`` as each answer arrives (the score cache appends it at once).

        A prompt that still fails after the backend's retries reports nothing: it is NaN in this run
        (filled by the selector's standardisation) and asked again by the next one.
        """

        def on_result(i: int, result) -> None:
            if result.ok:
                on_value(i, parse_judge_score(result.text))

        self._complete(records, on_result)
