"""Quality indicators: one scalar per sample, each optional and cached on disk.

The InstructionGPT-4 indicators adapted to tool-use data (../docs/selection.md):

* ``length`` -- 100 x characters of the output / the longest output in the pool (0-100).
* ``steps`` -- number of tool calls in the output (the companion the method notes suggest, so
  length is not the only proxy for chain complexity).
* ``validity`` -- tool-call validity, 0-100: the output follows the Thought/Action format, every
  Action names a registered tool that the prompt offered, the Action Input has the tool's
  argument count, and image arguments are file names the conversation has shown.
* ``reward`` -- 10 x the logit of a sequence-classification reward model (``models.RewardScorer``).
* ``judge`` -- 0-100 from an LLM judge behind any OpenAI-compatible endpoint (``judge.LLMJudge``).
* ``clip`` -- 100 x cosine(image, caption) with a CLIP model, where the image file exists
  (``models.ClipScorer``); NaN otherwise.

Every indicator returns raw per-sample values (cached by sample hash + configuration); pool-level
normalisation (``finalize``) happens after the cache, so the cache never depends on the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from g4t.selection.cache import ScoreCache
from g4t.selection.samples import file_names, parse_sample, sample_hash

__all__ = [
    "Indicator",
    "LengthIndicator",
    "StepsIndicator",
    "ToolValidityIndicator",
    "compute_indicators",
    "registry_tools",
    "tool_validity",
]


class Indicator(Protocol):
    """One quality indicator."""

    name: str

    def config(self) -> dict:
        """Everything that changes the raw score (part of the cache key)."""
        ...

    def score(self, records: list[dict]) -> list[float]:
        """Raw scores of a batch of records (NaN where the indicator does not apply)."""
        ...

    def finalize(self, values: np.ndarray) -> np.ndarray:
        """Pool-level scaling of the raw scores (identity for most indicators)."""
        ...


class _Base:
    name = "base"

    def config(self) -> dict:
        return {}

    def finalize(self, values: np.ndarray) -> np.ndarray:
        return values


class LengthIndicator(_Base):
    """100 x characters of the output / the longest output in the pool (the paper's length score x 10)."""

    name = "length"

    def score(self, records: list[dict]) -> list[float]:
        return [float(len(r.get("output", ""))) for r in records]

    def finalize(self, values: np.ndarray) -> np.ndarray:
        top = np.nanmax(values) if len(values) else 0.0
        return 100.0 * values / top if top > 0 else values


class StepsIndicator(_Base):
    """Number of ``Action:`` tool calls in the output."""

    name = "steps"

    def score(self, records: list[dict]) -> list[float]:
        return [float(len(parse_sample(r).actions)) for r in records]


def registry_tools() -> dict[str, tuple[str, ...]]:
    """``{tool name: declared inputs}`` of every registered tool (importing the tool families)."""
    from g4t.tools import TOOLS

    return {name: tuple(spec.inputs) for name, spec in TOOLS.items()}


def _args_ok(text: str, inputs: Sequence[str]) -> bool:
    """Whether an Action Input has the tool's argument count (text arguments may hold commas)."""
    pieces = [p.strip().strip("\"'") for p in text.split(",")]
    n = len(inputs)
    if n == 1:
        return bool(text.strip()) and (len(pieces) == 1 if inputs[0] == "image" else True)
    return len(pieces) >= n and all(pieces[:1]) and all(pieces[-(n - 1) :])


def tool_validity(record: dict, tools: dict[str, tuple[str, ...]]) -> float:
    """Tool-call validity of a record's output, 0-100 (the share of checks that pass).

    Checks per tool call: the thought says ``Yes``; the action is a registered tool; it is one of
    the tools the prompt offered (when the prompt lists tools); the Action Input has the declared
    argument count; every image argument is a file name shown earlier in the conversation (history,
    earlier steps, or earlier observations in the output). A final answer must say ``No`` and carry
    ``AI: ``. An output without any ``Thought: Do I need to use a tool?`` line scores 0.

    Args:
        record: an annotation record (instruction / input / output).
        tools: ``{tool name: declared input names}``, e.g. ``registry_tools()``.
    """
    p = parse_sample(record)
    if not p.thoughts:
        return 0.0
    checks: list[bool] = []
    if len(p.actions) != len(p.action_inputs):
        checks.append(False)
    offered = set(p.offered_tools)
    cursor = 0
    for i, (action, text) in enumerate(zip(p.actions, p.action_inputs, strict=False)):
        pos = p.output.find(f"Action Input: {text}", cursor)
        seen = set(p.known_files) | set(file_names(p.output[: max(pos, 0)]))
        cursor = max(pos, cursor) + 1
        checks.append(i < len(p.thoughts) and p.thoughts[i] == "Yes")
        inputs = tools.get(action)
        checks.append(inputs is not None)
        if offered:
            checks.append(action in offered)
        if inputs is None:
            continue
        checks.append(_args_ok(text, inputs))
        pieces = [q.strip().strip("\"'") for q in text.split(",")]
        for name, piece in zip(inputs, pieces, strict=False):
            if name == "image":
                checks.append(bool(file_names(piece)) and piece in seen)
    if len(p.thoughts) > len(p.actions) or not p.actions:  # a final answer
        checks.append(p.thoughts[-1] == "No")
        checks.append("AI: " in p.output)
    return 100.0 * sum(checks) / len(checks)


@dataclass
class ToolValidityIndicator(_Base):
    """``tool_validity`` over the registered tools (or an explicit ``{name: inputs}`` table)."""

    tools: dict[str, tuple[str, ...]] | None = None
    name: str = "validity"

    def __post_init__(self) -> None:
        if self.tools is None:
            self.tools = registry_tools()

    def config(self) -> dict:
        return {"tools": sorted(self.tools.items())}

    def score(self, records: list[dict]) -> list[float]:
        return [tool_validity(r, self.tools) for r in records]


def compute_indicators(
    records: Sequence[dict], indicators: Sequence[Indicator], cache_dir: str | None = None, batch_size: int = 32
) -> dict[str, np.ndarray]:
    """Score every record with every indicator (cached), then apply each indicator's pool scaling.

    Returns:
        ``{indicator name: float array of len(records)}``.
    """
    hashes = [sample_hash(r) for r in records]
    out: dict[str, np.ndarray] = {}
    for ind in indicators:
        cache = ScoreCache(cache_dir, ind.name, {"name": ind.name, **ind.config()})
        if hasattr(ind, "score_each"):  # API scorers: every answer cached as it arrives
            raw = cache.get_or_stream(hashes, list(records), ind.score_each)
        else:
            raw = cache.get_or_compute(hashes, list(records), ind.score, batch_size=batch_size)
        out[ind.name] = ind.finalize(np.asarray(raw, dtype=float))
    return out
