"""The GPT4Tools prompt as chat messages, for models that call tools natively (``--protocol tools``).

Two directions:

* ``parse_published_prompt``: a published-format prompt (the ``instruction`` of a val/test record, in
  the training or the demo layout) back into its parts: the offered tools (names and descriptions),
  the chat history, the new user request and the earlier steps of the turn (the scratchpad).
* ``system_message``: the system message of the tool-calling protocol, made of the published
  sentences only (the introduction, the file-name rules and the "use tools to observe images"
  guidance); the ReAct format instructions are left out, since the tool list travels as JSON Schema
  ``tools`` and the calls as ``tool_calls``.

No I/O and no heavy imports; every function is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from g4t.prompts import Step, prompt_strings

__all__ = ["PromptFormatError", "PublishedPrompt", "history_messages", "parse_published_prompt", "system_message"]

_NEW_INPUT = "New input: "
_HISTORY = "Previous conversation:"
_FORMAT = "To use a tool, please use the following format:"
_GUIDANCE_END = "Let's think step by step."
_TOOL_LINE = re.compile(r"^> ([^\n]+?): ([^\n]*)$", re.MULTILINE)
_TURN = re.compile(r"^(Human|AI):[ \t]?", re.MULTILINE)
# One earlier step: an optional Thought line, the Action and Action Input lines, and the observation
# (possibly several lines) up to the next Thought/Action line. Both layouts have this shape: the
# training layout writes ``Observation: R\n`` and the demo layout ``Observation: R\nThought:``.
_STEP = re.compile(
    r"^Action:[ \t]*([^\n]*)\nAction Input:[ \t]*([^\n]*)\nObservation:[ \t]?((?s:.*?))(?=\n[ \t]*Thought:|\nAction:|\Z)",
    re.MULTILINE,
)
# What a caller may have appended for the model to continue: the published ChatGPT baseline's
# ``Thought: Do I need to use a tool? `` or langchain's bare ``Thought:``.
_TRAILING_THOUGHT = re.compile(r"\n?[ \t]*Thought:[ \t]*(?:Do I need to use a tool\?[ \t]*)?$")


class PromptFormatError(ValueError):
    """A prompt that is not in the published GPT4Tools format (the message says what is missing)."""


@dataclass
class PublishedPrompt:
    """The parts of a published-format prompt.

    Attributes:
        tools: ``(name, description)`` of every offered tool, in prompt order (descriptions stripped).
        history: earlier exchanges as ``(role, text)`` with role ``user`` or ``assistant``; an image
            announcement is a user message (``Provide an image named ...``) answered ``Received.``.
        user_input: the new request (the text after ``New input:``).
        steps: the earlier tool calls of this turn with their observations.
    """

    tools: list[tuple[str, str]]
    history: list[tuple[str, str]] = field(default_factory=list)
    user_input: str = ""
    steps: list[Step] = field(default_factory=list)


def history_messages(history: str) -> list[tuple[str, str]]:
    """``Human: ...`` / ``AI: ...`` history text as ``(role, text)`` messages (text before the first
    turn is ignored; a turn may span several lines)."""
    turns = list(_TURN.finditer(history))
    messages = []
    for i, m in enumerate(turns):
        end = turns[i + 1].start() if i + 1 < len(turns) else len(history)
        text = history[m.end() : end].strip()
        messages.append(("user" if m[1] == "Human" else "assistant", text))
    return messages


def _steps(scratchpad: str) -> list[Step]:
    return [
        Step(m[1].strip(), m[2].strip().strip('"').strip(), m[3].strip(), log=m[0])
        for m in _STEP.finditer(_TRAILING_THOUGHT.sub("", scratchpad.rstrip()))
    ]


def parse_published_prompt(text: str) -> PublishedPrompt:
    """Split a published-format GPT4Tools prompt into tools, history, request and earlier steps.

    The request is the text after the last ``New input:`` that precedes the last line ending in
    ``Let's think step by step.``; the history is what follows ``Previous conversation:`` up to the
    request; tools are the ``> name: description`` lines before the history (or before the format
    instructions); the scratchpad is everything after the guidance line. A trailing
    ``Thought: Do I need to use a tool?`` (what a caller adds for the model to continue) is ignored.

    Raises:
        PromptFormatError: no guidance line, no ``New input:`` before it, or no tool line.
    """
    guidance = text.rfind(_GUIDANCE_END)
    if guidance < 0:
        raise PromptFormatError(f"no line ending in {_GUIDANCE_END!r} (the published prompt's last line)")
    line_start = text.rfind("\n", 0, guidance) + 1
    start = text.rfind(_NEW_INPUT, 0, line_start)
    if start < 0:
        raise PromptFormatError(f"no {_NEW_INPUT.strip()!r} line before the line ending in {_GUIDANCE_END!r}")
    user_input = text[start + len(_NEW_INPUT) : line_start].rstrip("\n")
    history_at = text.rfind(_HISTORY, 0, start)
    history = text[history_at + len(_HISTORY) : start] if history_at >= 0 else ""
    tools_end = history_at if history_at >= 0 else start
    format_at = text.find(_FORMAT, 0, tools_end)
    tools = [
        (m[1].strip(), m[2].strip()) for m in _TOOL_LINE.finditer(text, 0, format_at if format_at >= 0 else tools_end)
    ]
    if not tools:
        raise PromptFormatError("no tool line ('> Tool Name: description') before the request")
    newline = text.find("\n", guidance)
    scratchpad = text[newline + 1 :] if newline >= 0 else ""
    return PublishedPrompt(tools, history_messages(history), user_input, _steps(scratchpad))


@cache
def system_message() -> str:
    """The system message of the tool-calling protocol: the published introduction, the file-name
    rules and the guidance line, without the ReAct format instructions, the tool list and the
    placeholders (each sentence taken from ``templates/gpt4tools_prompts.json``)."""
    s = prompt_strings()
    intro = s["agent_prefix"].split("\n", 1)[0]
    lines = [line for line in s["agent_suffix"].splitlines() if line and "{" not in line and line != _HISTORY]
    return "\n\n".join([intro, *lines])
