"""Tool-name-constrained decoding (``--constrain_tools``): an ``Action:`` line names a listed tool.

A GPT4Tools prompt lists the tools of the request in its format instructions (published string)::

    Action: the action to take, should be one of [Tool A, Tool B, Tool C]

A small fine-tuned model often writes ``Action: <a tool it was trained on>`` that is not in that list,
and the call can only fail. With the constraint, on every line that begins with ``Action:`` (not
``Action Input:``) the rest of the line must be `` <a listed name>`` followed by a newline: tokens that
would leave that path get a score of ``-inf``, and greedy decoding or sampling picks among the others
by the model's own scores. Nothing outside ``Action:`` lines changes.

How a step is decided, for one sequence (``ToolNameConstraint.decide``):

* the current line is the prompt's unfinished last line plus the text of the new tokens since the last
  newline (each token's text comes from ``TokenTable``, decoded once per tokenizer);
* the line starts with ``Action:``: only tokens whose text keeps the rest of the line a prefix of one
  of the targets `` name\\n``, or completes a target and goes on (a token holding the newline and more
  text), are allowed; special tokens (EOS) and tokens of no text are not;
* the line is a proper prefix of ``Action:`` (``""``, ``Act``, ``Action``): tokens that would complete
  ``Action:`` and go on (``:``, ``: Edge``) are checked, the others (`` Input``) are free;
* any other line: free (a token holding a newline and then an ``Action:`` line is still checked).

``ToolNameProcessor`` applies this to the rows of ``model.generate`` (left-padded batches, beams);
``greedy_lookup_decode`` takes the same decision per position through its ``choose`` hook.
"""

from __future__ import annotations

import bisect
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from g4t.prompts import TOOL_NAMES_LIST

__all__ = [
    "ACTION",
    "Decision",
    "TokenTable",
    "ToolNameConstraint",
    "ToolNameProcessor",
    "constraints_for",
    "tool_names",
]

logger = logging.getLogger(__name__)

ACTION = "Action:"


def tool_names(prompt: str) -> list[str] | None:
    """The tool names of the last ``should be one of [...]`` in ``prompt``; None when it has none (or an
    empty list). The prompt may be wrapped in a conversation template: the raw text is searched."""
    found = None
    for found in TOOL_NAMES_LIST.finditer(prompt):
        pass
    if found is None:
        return None
    names = [n for n in found["names"].split(", ") if n.strip()]
    return names or None


class TokenTable:
    """The text of every token id of a tokenizer, with indexes for prefix queries (``of``: once per tokenizer).

    ``texts[i]`` is what token ``i`` adds to a decoded sequence in mid-text (decoded after an anchor
    token, so a SentencePiece word start keeps its space); None for special tokens (EOS, padding),
    which never belong in a tool name. A token that is a piece of a UTF-8 character has ``"\\ufffd"``
    in its text, so it never matches a name.
    """

    def __init__(self, texts: Sequence[str | None]) -> None:
        self.texts: list[str | None] = list(texts)
        self.by_text: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            if text:
                self.by_text.setdefault(text, []).append(i)
        self.sorted_texts = sorted(self.by_text)
        # tokens with a line that starts with "Action:" after a newline: checked whatever the current line
        self.action_tails = [
            i for i, t in enumerate(self.texts) if t and any(line.startswith(ACTION) for line in t.split("\n")[1:])
        ]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TokenTable:
        """Decode every id of ``tokenizer`` once (in one Rust batch for a fast tokenizer)."""
        anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
        base = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
        pairs = [[anchor, i] for i in range(len(tokenizer))]
        decoded = tokenizer.batch_decode(pairs, clean_up_tokenization_spaces=False)
        special = set(tokenizer.all_special_ids)
        return cls([None if i in special or not d.startswith(base) else d[len(base) :] for i, d in enumerate(decoded)])

    _cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    @classmethod
    def of(cls, tokenizer) -> TokenTable:
        """The table of ``tokenizer``, built on first use (0.4 s for SmolLM2's 49,152 tokens on one CPU
        thread) and kept while the tokenizer lives."""
        with cls._lock:  # concurrent first calls (demo sessions) build it once
            table = cls._cache.get(tokenizer)
            if table is None:
                table = cls._cache[tokenizer] = cls.from_tokenizer(tokenizer)
            return table

    def starting_with(self, prefix: str) -> list[str]:
        """Token texts that start with ``prefix`` (itself included)."""
        lo = bisect.bisect_left(self.sorted_texts, prefix)
        hi = lo
        while hi < len(self.sorted_texts) and self.sorted_texts[hi].startswith(prefix):
            hi += 1
        return self.sorted_texts[lo:hi]

    def line_of(self, head: str, ids: Sequence[int]) -> str:
        """The unfinished last line of ``head`` followed by the text of ``ids``."""
        parts: list[str] = []
        for i in reversed(ids):
            text = self.texts[i] if 0 <= i < len(self.texts) else None
            if not text:
                continue
            cut = text.rfind("\n")
            if cut >= 0:
                parts.append(text[cut + 1 :])
                return "".join(reversed(parts))
            parts.append(text)
        parts.append(head[head.rfind("\n") + 1 :])
        return "".join(reversed(parts))


@dataclass(frozen=True)
class Decision:
    """What one step may emit: ``allowed`` only (when not None), and never ``banned``."""

    allowed: list[int] | None = None
    banned: tuple[int, ...] | list[int] = ()

    @property
    def free(self) -> bool:
        return self.allowed is None and not self.banned


FREE = Decision()


class ToolNameConstraint:
    """The constraint of one prompt: its tool names, and its unfinished last line (``head``).

    Args:
        table: the tokenizer's ``TokenTable``.
        names: the tool names listed in the prompt.
        head: the prompt text (only what follows its last newline matters: generation may start mid-line).
    """

    def __init__(self, table: TokenTable, names: Sequence[str], head: str = "") -> None:
        self.table = table
        self.names = list(names)
        self.targets = sorted({f" {n}\n" for n in self.names})
        self.head = head[head.rfind("\n") + 1 :]
        self._warned = False

    # -- pure text checks ------------------------------------------------------------------------

    def _rest_ok(self, rest: str) -> bool:
        """``rest`` (the text after ``Action:`` of one line, possibly running into more lines) is on a path
        to a target: a prefix of one, or a whole target followed by text whose lines are valid."""
        for target in self.targets:
            if target.startswith(rest):
                return True
            if rest.startswith(target):
                return self.lines_ok(rest[len(target) :])
        return False

    def lines_ok(self, text: str) -> bool:
        """Every line of ``text`` (which starts at a line start) that begins with ``Action:`` is valid:
        a complete one names a listed tool, the unfinished last one is on its way to one."""
        cut = text.find("\n")
        line = text if cut < 0 else text[:cut]
        if line.startswith(ACTION):
            return self._rest_ok(text[len(ACTION) :])
        return cut < 0 or self.lines_ok(text[cut + 1 :])

    # -- one decoding step -----------------------------------------------------------------------

    def decide(self, new_ids: Sequence[int]) -> Decision:
        """The tokens the next step may (or may not) take, after ``new_ids`` were generated."""
        table = self.table
        line = table.line_of(self.head, new_ids)
        banned = [i for i in table.action_tails if not self.lines_ok(line + table.texts[i])]
        if line.startswith(ACTION):
            rest = line[len(ACTION) :]
            suffixes = [t[len(rest) :] for t in self.targets if t.startswith(rest)]
            if not suffixes:  # the line was off every path before we could act (a prompt ending mid-name)
                if not self._warned:
                    logger.warning(f"--constrain_tools: the line {line!r} names no listed tool; left as it is")
                    self._warned = True
                return Decision(banned=banned) if banned else FREE
            allowed: set[int] = set()
            for suffix in suffixes:
                for k in range(1, len(suffix) + 1):
                    allowed.update(table.by_text.get(suffix[:k], ()))
                for text in table.starting_with(suffix):
                    if len(text) > len(suffix) and self.lines_ok(text[len(suffix) :]):
                        allowed.update(table.by_text[text])
            allowed.difference_update(banned)
            return Decision(allowed=sorted(allowed))
        if ACTION.startswith(line):
            needed = ACTION[len(line) :]
            for text in table.starting_with(needed):
                if not self.lines_ok(line + text):
                    banned.extend(table.by_text[text])
        return Decision(banned=banned) if banned else FREE

    def apply(self, scores, new_ids: Sequence[int]):
        """``scores`` (one row of logits, a torch tensor) with the disallowed tokens at ``-inf``; the same
        tensor when nothing is disallowed, else a new one."""
        decision = self.decide(new_ids)
        if decision.free:
            return scores
        return _masked(scores, decision)

    def choose(self, new_ids: Sequence[int], scores) -> int:
        """The greedy choice among the allowed tokens (the ``choose`` hook of ``greedy_lookup_decode``)."""
        return int(self.apply(scores, new_ids).argmax(-1))


def _masked(scores, decision: Decision):
    """A copy of the 1-D ``scores`` with everything outside ``decision`` at ``-inf`` (ids past the end of
    ``scores``, tokens of a tokenizer larger than the model's output layer, are ignored)."""
    import torch

    size = scores.shape[-1]
    if decision.allowed is not None:
        keep = torch.tensor([i for i in decision.allowed if i < size], dtype=torch.long, device=scores.device)
        if keep.numel() == 0:  # no token of the vocabulary spells a listed name from here: do not block
            return scores
        out = torch.full_like(scores, float("-inf"))
        out[keep] = scores[keep]
        return out
    out = scores.clone()
    ban = torch.tensor([i for i in decision.banned if i < size], dtype=torch.long, device=scores.device)
    out[ban] = float("-inf")
    return out


def constraints_for(tokenizer, prompts: Sequence[str]) -> list[ToolNameConstraint | None]:
    """One constraint per prompt (None where the prompt lists no tools); the table is built on first use."""
    found = [tool_names(p) for p in prompts]
    if not any(found):
        return [None] * len(prompts)
    table = TokenTable.of(tokenizer)
    return [ToolNameConstraint(table, names, p) if names else None for p, names in zip(prompts, found, strict=True)]


class ToolNameProcessor:
    """A transformers ``LogitsProcessor`` applying one ``ToolNameConstraint`` per prompt of a batch.

    Args:
        constraints: per prompt, its constraint or None (no constraint).
        start: where generated tokens begin in ``input_ids`` (the padded prompt width; with left padding
            it is the same for every row).

    With beams (``num_return_sequences``...), ``input_ids`` has several rows per prompt, consecutive.
    """

    def __init__(self, constraints: Sequence[ToolNameConstraint | None], start: int) -> None:
        self.constraints = list(constraints)
        self.start = start

    def __call__(self, input_ids, scores):
        per_prompt = max(1, input_ids.shape[0] // len(self.constraints))
        new = input_ids[:, self.start :].tolist()  # one copy from the device per step
        out = scores
        for row in range(input_ids.shape[0]):
            constraint = self.constraints[row // per_prompt]
            if constraint is None:
                continue
            row_scores = scores[row]
            masked = constraint.apply(row_scores, new[row])
            if masked is not row_scores:
                if out is scores:
                    out = scores.clone()
                out[row] = masked
        return out
