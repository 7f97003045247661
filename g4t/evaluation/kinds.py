"""Where a model fails, by record kind: beside the published means, what each kind of record asked and
why a wrong prediction is wrong.

A GPT4Tools evaluation record is one of five kinds (``record_kind``):

* ``call``: the first tool call of a request;
* ``continue``: the next tool call after an earlier step's observation;
* ``chain``: two tool calls or more expected from one generation (a condition tool, then the tool it
  feeds: the published ground truth holds both);
* ``relay``: the final answer after a tool's observation;
* ``chitchat``: a request that needs no tool.

Each prediction is ``right`` (published SR 1) or wrong for one reason (``OUTCOMES``): a tool call where
none was due, no tool call where one was, a wrong first tool, the right first tool with wrong arguments
or steps, or a final answer without the published ``Thought: ... No`` / ``AI:`` format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from g4t.react import ACTION_RE as _ACTION

__all__ = ["KINDS", "OUTCOMES", "KindScores", "format_by_kind", "outcome", "record_kind"]

KINDS = ("call", "continue", "chain", "relay", "chitchat")
OUTCOMES = ("right", "said_yes", "said_no", "wrong_tool", "wrong_args", "bad_format")
OUTCOME_LABELS = {
    "right": "right",
    "said_yes": "tool call not due",
    "said_no": "no tool call",
    "wrong_tool": "wrong tool",
    "wrong_args": "wrong args/steps",
    "bad_format": "bad format",
}
# An earlier step in the prompt's scratchpad (after the request): the record continues a chain.
_STEP = re.compile(r"^Observation: ", re.M)


def record_kind(gt: dict) -> str:
    """The kind of an evaluation record (``KINDS``) from its ``Action`` list and its prompt."""
    actions = gt.get("Action") or []
    if len(actions) > 1:
        return "chain"
    scratchpad = gt["instruction"].rsplit("Let's think step by step.", 1)[-1]
    after_step = bool(_STEP.search(scratchpad))
    if actions:
        return "continue" if after_step else "call"
    return "relay" if after_step else "chitchat"


def outcome(gt: dict, prediction: str, success: bool) -> str:
    """Why the completion ``prediction`` of record ``gt`` is wrong (``OUTCOMES``), or ``"right"``."""
    if success:
        return "right"
    first = _ACTION.search(prediction)
    if not gt.get("Action"):
        return "said_yes" if first else "bad_format"
    if not first:
        return "said_no"
    return "wrong_tool" if first.group(1).strip() != gt["Action"][0] else "wrong_args"


@dataclass
class KindScores:
    """Counts per record kind and the tool-call figures.

    Attributes:
        by_kind: ``{kind: {"n": ..., outcome: count...}}`` over the scored records.
        calls: per record whose ground truth calls a tool, its SR (tool-call SR is their mean).
        choices: per such record, 1.0 when the first predicted tool is the first ground-truth tool.
    """

    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: list[float] = field(default_factory=list)
    choices: list[float] = field(default_factory=list)

    def add(self, gt: dict, prediction: str, success: bool) -> None:
        if gt.get("Action"):
            self.calls.append(float(success))
            first = _ACTION.search(prediction)
            self.choices.append(float(bool(first) and first.group(1).strip() == gt["Action"][0]))
        counts = self.by_kind.setdefault(record_kind(gt), dict.fromkeys(("n", *OUTCOMES), 0))
        counts["n"] += 1
        counts[outcome(gt, prediction, success)] += 1

    @property
    def tool_call_sr(self) -> float | None:
        """SR over the records whose ground truth calls a tool."""
        return sum(self.calls) / len(self.calls) if self.calls else None

    @property
    def tool_choice(self) -> float | None:
        """Share of those records whose first predicted tool is the ground truth's."""
        return sum(self.choices) / len(self.choices) if self.choices else None


def format_by_kind(scores: KindScores) -> str:
    """A markdown table: one row per record kind, right or why not."""
    head = "| kind | n | " + " | ".join(OUTCOME_LABELS[o] for o in OUTCOMES) + " |\n"
    head += "|---|---:|" + "---:|" * len(OUTCOMES) + "\n"
    rows = [
        f"| {kind} | {c['n']} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |"
        for kind in KINDS
        if (c := scores.by_kind.get(kind))
    ]
    return head + "\n".join(rows) + "\n"
