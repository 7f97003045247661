"""Requests and teacher replies: ``make_request``, ``teacher_lines``, ``write_replies`` and the tool lists."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

# the generator modules register their tools in GENERATORS on import (registry order as before)
from . import arg_tools, condition_tools  # noqa: F401
from .image_tools import GENERATORS
from .words import _ARG_RE, _nouns, _pick, _Req, _subject, _surface, _tidy


def make_request(
    tool: str, caption: str, rng: random.Random, typo_rate: float = 0.08, multi_step: float = 0.35
) -> tuple[str, list[str]]:
    """One ``(request, args)`` pair for ``tool`` on an image with ``caption`` (args as in the reply line).

    Raises:
        KeyError: the tool has no generator.
    """
    ctx = {"caption": caption, "subject": _subject(caption), "nouns": _nouns(caption), "multi_step": multi_step}
    req = _Req()
    text, args = GENERATORS[tool](ctx, rng, req)
    text = _surface(_tidy(text[:1].upper() + text[1:]), rng, typo_rate)
    text = _ARG_RE.sub(lambda m: req.spans[int(m.group(1))], text)
    return text.replace('"', "'").replace("\n", " "), args


def teacher_lines(
    caption: str,
    tools: Sequence[str],
    rng: random.Random,
    noise: float = 0.0,
    typo_rate: float = 0.08,
    multi_step: float = 0.35,
) -> str:
    """A teacher reply for one caption: one numbered line per tool in ``tools`` (published format).

    Args:
        caption: the image caption.
        tools: tool names to write an instruction for (each must have a generator).
        rng: random source.
        noise: share of lines whose request is written for another tool (mislabelled).
        typo_rate: share of requests with character slips in the free text.
        multi_step: share of condition-tool requests phrased as two steps.
    """
    lines = []
    for i, tool in enumerate(tools, 1):
        request, args = make_request(tool, caption, rng, typo_rate, multi_step)
        if noise and rng.random() < noise:
            other = _pick(rng, [t for t in sorted(GENERATORS) if t != tool])
            request, _ = make_request(other, caption, rng, typo_rate, multi_step)
        lines.append(f'{i}. "{request}", [{tool}, {", ".join(args)}]')
    return "\n".join(lines)


def generator_tools() -> list[str]:
    """Every registered tool that has a generator, in registry order."""
    from g4t.data.catalog import registered_tools

    return [n for n in registered_tools() if n in GENERATORS]


def missing_generators() -> list[str]:
    """Registered tools without a generator (kept empty by a test)."""
    from g4t.data.catalog import registered_tools

    return [n for n in registered_tools() if n not in GENERATORS]


def extra_tools() -> list[str]:
    """Registered tools beyond the 26 published teacher tools (``generate_annotations.py --tools``)."""
    from g4t.data.teacher import published_tool_names

    published = set(published_tool_names())
    return [n for n in generator_tools() if n not in published]


def write_replies(
    captions: Sequence[dict],
    path: str | Path,
    tools: Sequence[str] | None = None,
    tools_per_caption: int = 0,
    noise: float = 0.0,
    seed: int = 0,
    typo_rate: float = 0.08,
    multi_step: float = 0.35,
) -> int:
    """Write ``get_instruction.py``-style JSONL replies for a caption list; returns the number of lines.

    Args:
        captions: ``{"file_name", "caption"}`` records (the published caption-list format).
        path: output JSONL.
        tools: tools to cover (default: the 26 published teacher tools; ``generator_tools()`` for all).
        tools_per_caption: tools drawn per caption (0: all of them, as the published prompt asks).
        noise: share of mislabelled lines (see ``teacher_lines``).
        seed: random seed (same inputs + seed = same bytes).
        typo_rate: share of requests with character slips (never inside arguments).
        multi_step: share of condition-tool requests phrased as two steps.
    """
    from g4t.data.teacher import published_tool_names

    rng = random.Random(seed)
    tools = list(tools or published_tool_names())
    missing = [t for t in tools if t not in GENERATORS]
    if missing:
        raise ValueError(f"no offline generator for {missing}")
    n = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for item in captions:
            chosen = rng.sample(tools, tools_per_caption) if 0 < tools_per_caption < len(tools) else tools
            reply = teacher_lines(item["caption"], chosen, rng, noise, typo_rate, multi_step)
            n += len(chosen)
            f.write(
                json.dumps({"file_name": item["file_name"], "caption": item["caption"], "instructions": reply}) + "\n"
            )
    return n
