"""The teacher (self-instruct) prompt of ``scripts/get_instruction.py``, rendered from a tool list.

By default the prompt is the published 26-tool prompt, byte for byte. ``extra_tools`` appends new
tools (``Edit Image Using Text``, the fine-grained editing tools, ...) as lines 27, 28, ...: their
line is the published one where it exists (EFE's line 27), otherwise it is made from the registry
description ("Useful ..." capitalised, trailing whitespace removed). The tool count in the header
follows the number of lines.

The parts live in ``templates/teacher/gpt4tools_teacher.json`` (data, not code).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache

from g4t.prompts import TEMPLATES_DIR

__all__ = ["TEACHER_TEMPLATE", "published_tool_names", "teacher_prompt", "teacher_tool_lines"]

TEACHER_TEMPLATE = TEMPLATES_DIR / "teacher" / "gpt4tools_teacher.json"


@cache
def _template() -> dict:
    path = TEACHER_TEMPLATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    for key in ("header", "line_format", "separator", "tail", "tools", "extra_tools"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    for key in ("{caption}", "{num_tools}"):
        if key not in data["header"]:
            raise ValueError(f"{path}: 'header' lacks the {key} placeholder")
    return data


def published_tool_names() -> list[str]:
    """The 26 tool names of the published teacher prompt, in prompt order."""
    return [t["name"] for t in _template()["tools"]]


def teacher_tool_lines(extra_tools: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``(name, usage text)`` of every tool in the teacher prompt: the 26 published, then the extras.

    Args:
        extra_tools: registry names to add after the published ones (duplicates are ignored).

    Raises:
        ValueError: an extra tool is neither published nor registered.
    """
    data = _template()
    lines = [(t["name"], t["usage"]) for t in data["tools"]]
    known = {name for name, _ in lines}
    published_extra = {t["name"]: t["usage"] for t in data["extra_tools"]}
    unknown = [n for n in extra_tools if n not in known and n not in published_extra]
    registry = {}
    if unknown:
        from g4t.data.catalog import registered_tools

        registry = registered_tools()
        bad = [n for n in unknown if n not in registry]
        if bad:
            raise ValueError(f"--tools: unknown tool(s) {bad}; registered: {sorted(registry)}")
    for name in dict.fromkeys(extra_tools):
        if name in known:
            continue
        usage = published_extra.get(name)
        if usage is None:
            desc = registry[name].description.strip()
            usage = desc[:1].upper() + desc[1:]
        lines.append((name, usage))
        known.add(name)
    return lines


def teacher_prompt(caption: str, extra_tools: Sequence[str] = ()) -> str:
    """The filled teacher prompt for one caption (sent as a single system message, as published).

    Args:
        caption: the image caption (may contain ``[x1, y1, x2, y2]`` boxes and braces; inserted verbatim).
        extra_tools: tools to add after the published 26 (see ``teacher_tool_lines``).
    """
    data = _template()
    lines = teacher_tool_lines(extra_tools)
    body = "\n".join(
        data["line_format"].replace("{index}", str(i)).replace("{name}", name).replace("{usage}", usage)
        for i, (name, usage) in enumerate(lines, 1)
    )
    header = data["header"].replace("{num_tools}", str(len(lines)))
    # Substitute the caption last so braces inside it are never interpreted.
    return (header + body + data["separator"] + data["tail"]).replace("{caption}", caption, 1)
