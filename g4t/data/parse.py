"""Robust parsing of teacher replies: ``instruction_content, [tool_name, arguments_to_tool]`` lines.

Improves on the published ``parse_instuct``: the ``N.`` numbering is optional (the published
``inst[3:]`` cut the first 3 characters of unnumbered lines and of items 10-26 lost a space), the
call is the last bracket group that starts with a tool name (so boxes like ``[x1, y1, x2, y2]`` in
arguments or brackets in the instruction work), quotes of any kind and apostrophes are handled,
commas inside the last argument survive, tool-name variants are mapped, and every skipped line is
counted under a reason instead of printed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["EXAMPLE_IMAGE", "Instruction", "ParseReport", "parse_line", "parse_teacher_reply"]

EXAMPLE_IMAGE = "example.jpg"

# Published replacements of common teacher misspellings, plus a few more seen in practice.
_VARIANTS = {
    "detect the given object": "Detect the Give Object",
    "detect given object": "Detect the Give Object",
    "detect object": "Detect the Give Object",
    "detect give object": "Detect the Give Object",
    "detect the object": "Detect the Give Object",
    "segment given object": "Segment the given object",
    "segment the given objects": "Segment the given object",
    "segment object": "Segment the given object",
    "segment image": "Segment the Image",
    "remove something from the image": "Remove Something From The Photo",
    "replace something from the image": "Replace Something From The Photo",
    "generate image condition on segmentation": "Generate Image Condition On Segmentations",
    "generate image condition on hed boundary image": "Generate Image Condition On Soft Hed Boundary Image",
    "generate image condition on depth image": "Generate Image Condition On Depth",
    "generate image condition on normal map image": "Generate Image Condition On Normal Map",
    "generate image from text": "Generate Image From User Input Text",
    "answer question about the photo": "Answer Question About The Image",
}

_NUMBERING = re.compile(r"^\s*(?:(?:\d+|[a-zA-Z])[.)]|\(\d+\)|[-*\u2022])\s+|^\s*\d+[.)](?=\S)")
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`"}

# Skip reasons (keys of ParseReport.skipped).
NO_CALL = "no [tool, arguments] call"
UNKNOWN_TOOL = "unknown tool name"
EMPTY_INSTRUCTION = "empty instruction"
TOO_FEW_ARGS = "too few arguments"
TOO_MANY_ARGS = "too many arguments"
BAD_IMAGE = "image argument is not the prompt's image"
EMPTY_ARG = "empty argument"


@dataclass(frozen=True)
class Instruction:
    """One parsed teacher instruction.

    Attributes:
        instruction: the user request text.
        tool: canonical tool name.
        args: arguments; image arguments still hold ``example.jpg`` (replaced when building).
        raw: the raw reply line.
    """

    instruction: str
    tool: str
    args: tuple[str, ...]
    raw: str


@dataclass
class ParseReport:
    """Counts of a parsing run.

    Attributes:
        lines: non-blank lines seen.
        parsed: lines that became instructions.
        skipped: skipped lines by reason.
        examples: up to 3 example lines per reason.
    """

    lines: int = 0
    parsed: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, line: str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(line[:200])

    def as_dict(self) -> dict:
        return {"lines": self.lines, "parsed": self.parsed, "skipped": dict(self.skipped), "examples": self.examples}


def _unquote(text: str) -> str:
    """Strip whitespace and one matching pair of surrounding quotes (apostrophes inside are kept)."""
    text = text.strip()
    while len(text) >= 2 and text[0] in _PAIRS and text[-1] == _PAIRS[text[0]]:
        text = text[1:-1].strip()
    # A lone leading/trailing double quote (the teacher often quotes only part of a line).
    if text.count('"') == 1 and (text.startswith('"') or text.endswith('"')):
        text = text.strip('"').strip()
    return text


def _norm(name: str) -> str:
    return " ".join(name.strip().strip(_QUOTES + ":*").split()).lower()


class _Names:
    def __init__(self, tools: dict[str, int], needs_image: dict[str, bool]):
        self.n_args = tools
        self.needs_image = needs_image
        self.lookup = {_norm(n): n for n in tools}
        for variant, canonical in _VARIANTS.items():
            if canonical in tools:
                self.lookup.setdefault(variant, canonical)
        # Longest first, so "Detection" never shadows "Detection On Image"-style names.
        self.ordered = sorted(self.lookup, key=len, reverse=True)

    def match_prefix(self, text: str) -> tuple[str, str] | None:
        """``(canonical name, rest)`` when ``text`` starts with a tool name followed by ``,`` or the end."""
        stripped = text.lstrip(" " + _QUOTES + "*")
        low = " ".join(stripped.split()).lower()
        for key in self.ordered:
            if low.startswith(key):
                # map the match back onto the un-normalised text: consume the same number of words
                words = key.split()
                m = re.match(r"\s*" + r"\s+".join(re.escape(w) for w in words), stripped, re.I)
                if not m:
                    continue
                rest = stripped[m.end() :].lstrip(_QUOTES + ": ")
                if rest and not rest.startswith(","):
                    continue
                return self.lookup[key], rest[1:] if rest.startswith(",") else rest
        return None


def _split_args(rest: str, n: int, needs_image: bool) -> list[str] | None:
    """Split the text after the tool name into ``n`` arguments (None: too few)."""
    rest = rest.strip()
    if not rest:
        return [] if n else []
    if n == 1 and not needs_image:
        return [_unquote(rest)]
    head, sep, tail = rest.partition(",")
    if n == 1:
        return [_unquote(head)] + ([_unquote(tail)] if sep and _unquote(tail) else [])
    if not sep:
        return [_unquote(head)]
    if n == 2:
        return [_unquote(head), _unquote(tail)]
    # n == 3: the middle text may hold commas; the last argument starts after the last comma.
    middle, sep2, last = tail.rpartition(",")
    if not sep2:
        return [_unquote(head), _unquote(tail)]
    return [_unquote(head), _unquote(middle), _unquote(last)]


def parse_line(
    line: str,
    tools: dict[str, int],
    needs_image: dict[str, bool] | None = None,
    image_names: Iterable[str] = (EXAMPLE_IMAGE,),
    report: ParseReport | None = None,
) -> Instruction | None:
    """Parse one reply line; return None (and count the reason in ``report``) when it is unusable.

    Args:
        line: one line of a teacher reply.
        tools: ``{tool name: number of arguments}`` of the tools instructions may use.
        needs_image: ``{tool name: first argument is an image}`` (default: every tool with >= 2 args,
            and every 1-argument tool except ``Generate Image From User Input Text``).
        image_names: accepted spellings of the prompt's image (compared case-insensitively); the
            image argument is normalised to ``example.jpg``.
        report: counts to update.
    """
    report = report if report is not None else ParseReport()
    if needs_image is None:
        needs_image = {t: t != "Generate Image From User Input Text" for t in tools}
    names = _Names(tools, needs_image)
    return _parse(line, names, {n.lower() for n in image_names}, report)


def _parse(line: str, names: _Names, images: set[str], report: ParseReport) -> Instruction | None:
    raw = line
    text = line.strip()
    if not text:
        return None
    report.lines += 1
    text = _NUMBERING.sub("", text, count=1).strip()
    # Candidates: every '[' whose text starts with a tool name; the call is the last such group.
    call = None
    for m in re.finditer(r"\[", text):
        hit = names.match_prefix(text[m.start() + 1 :])
        if hit:
            call = (m.start(), hit)
    if call is None:
        reason = UNKNOWN_TOOL if "[" in text and "]" in text else NO_CALL
        report.skip(reason, raw)
        return None
    start, (tool, rest) = call
    end = rest.rfind("]")
    rest = rest[:end] if end >= 0 else rest
    instruction = text[:start].strip()
    instruction = _unquote(instruction.rstrip(" ,:;-\u2013\u2014").strip())
    if not instruction:
        report.skip(EMPTY_INSTRUCTION, raw)
        return None
    n = names.n_args[tool]
    need_img = names.needs_image.get(tool, True)
    args = _split_args(rest, n, need_img)
    if args is None or len(args) < n:
        report.skip(TOO_FEW_ARGS, raw)
        return None
    if len(args) > n:
        report.skip(TOO_MANY_ARGS, raw)
        return None
    if any(not a for a in args):
        report.skip(EMPTY_ARG, raw)
        return None
    if need_img:
        if args[0].lower() not in images:
            report.skip(BAD_IMAGE, raw)
            return None
        args[0] = EXAMPLE_IMAGE
    report.parsed += 1
    return Instruction(instruction, tool, tuple(args), raw)


def parse_teacher_reply(
    reply: str,
    tools: dict[str, int],
    needs_image: dict[str, bool] | None = None,
    image_names: Iterable[str] = (EXAMPLE_IMAGE,),
    report: ParseReport | None = None,
) -> list[Instruction]:
    """Parse every line of a teacher reply (see ``parse_line``); blank lines are ignored."""
    report = report if report is not None else ParseReport()
    if needs_image is None:
        needs_image = {t: t != "Generate Image From User Input Text" for t in tools}
    names = _Names(tools, needs_image)
    images = {n.lower() for n in image_names}
    out = []
    for line in reply.splitlines():
        item = _parse(line, names, images, report)
        if item is not None:
            out.append(item)
    return out
