"""The ReAct text format in one place: how a reply is written, how it is read, where generation stops.

A GPT4Tools model answers in the langchain ``conversational-react-description`` format::

    Thought: Do I need to use a tool? Yes
    Action: Edge Detection On Image
    Action Input: image/1a2b.png
    Observation: <the tool's result, written by the agent>

or, when no tool is needed (or after the last observation)::

    Thought: Do I need to use a tool? No
    AI: <the answer>

* ``THOUGHT_RE``, ``ACTION_RE``, ``ACTION_INPUT_RE``, ``AI_RE``: the published evaluator's regexes (format
  strings, exact; ``g4t.evaluation.metrics`` scores with them, byte for byte as published).
* ``STOP``: where generation stops for a tool to run (the agent, the demo and ``inference.py``).
* ``parse_reply``: the agent's reader of a model reply, linear in its length and never raising.
* ``template_name``: which conversation template wraps the prompt (``--template``; the trainer's
  ``--prompt_template_name`` is the same setting), resolved one way for every script.
The text itself (``tool_response``, ``human_response``, the prompt) is rendered from the published
format strings by ``g4t.prompts``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACTION_INPUT_RE",
    "ACTION_RE",
    "AI_RE",
    "DEFAULT_TEMPLATE",
    "MAX_TOOL_NAME_CHARS",
    "NO_ANSWER",
    "RAW_TEMPLATE",
    "STOP",
    "THOUGHT_RE",
    "ParsedReply",
    "parse_reply",
    "template_name",
]

logger = logging.getLogger(__name__)

# The published regexes (format strings, exact). ``.`` does not cross lines; every match is stripped.
THOUGHT_RE = re.compile(r"Thought: Do I need to use a tool\? (.*)")
ACTION_RE = re.compile(r"Action: (.*)")
ACTION_INPUT_RE = re.compile(r"Action Input: (.*)")
AI_RE = re.compile(r"AI: (.*)")

# The model was trained to end a tool call with a bare "Observation:" line; stop there. (The
# published stop words had a trailing space and never matched; see docs/prompts.md.)
STOP = ("\nObservation:", "\n\tObservation:")
NO_ANSWER = "Sorry, I could not produce an answer. Please rephrase."

DEFAULT_TEMPLATE = "gpt4tools"  # the alpaca-style template of the released LoRA
RAW_TEMPLATE = "none"  # the raw instruction, as the published b91d319 inference.py fed it


def template_name(
    requested: str | None, lora_model: str | None = None, base_model: str | None = None, strict: bool = True
) -> str:
    """The conversation template's name for every script: ``requested`` (``--template``) unless it is None or
    ``auto``, else the ``prompt_template_name`` saved with the adapter (``training_config.json``), else the
    one saved in the base model folder (a ``--full_finetune`` output or a shipped model), else ``gpt4tools``.
    ``none`` is the raw instruction; ``chat`` the model tokenizer's own chat template.

    Raises:
        ValueError: (``strict``) an unknown name, or a saved ``training_config.json`` that is broken; without
            ``strict`` (the demo, which should start anyway) these are logged and ``gpt4tools`` is used.
    """
    from g4t.prompts import CHAT_TEMPLATE, load_template, saved_template_name

    try:
        if requested and requested != "auto":
            name = requested
        else:
            name = saved_template_name(lora_model, base_model) or DEFAULT_TEMPLATE
        if name not in (RAW_TEMPLATE, CHAT_TEMPLATE):  # chat is checked once the tokenizer is loaded
            load_template(name)  # an unknown name raises, listing the valid ones
    except ValueError as e:
        if strict:
            raise
        logger.warning("%s; using the %s template", e, DEFAULT_TEMPLATE)
        return DEFAULT_TEMPLATE
    return name


MAX_TOOL_NAME_CHARS = 200
"""A longer text after ``Action:`` is not a tool call."""

# Every pattern is linear in the reply's length (a quadratic one froze the demo for seconds on a
# 2,000-character reply). The tool call: the first ``Action:`` of a line (atomic: never retried at
# later positions of the same line), the rest of that line, and an ``Action Input:`` next line.
_ACTION = re.compile(
    r"^(?>[^\n]*?Action[ \t]*+:)[ \t]*+([^\n]*+)\n[ \t]*+Action[ \t]*+Input[ \t]*+:[ \t]*+([^\n]*+)", re.MULTILINE
)
# ``AI:`` at the start of a line; split in two so that each search starts with a literal (sre scans
# for a literal prefix fast; ``(?:^|\n)`` made it try the full pattern at every position).
_AI_FIRST = re.compile(r"[ \t]*+AI\s*+:[ \t]?")
_AI_LINE = re.compile(r"\n[ \t]*+AI\s*+:[ \t]?")
_THOUGHT = re.compile(r"\s*+(?:Thought\s*+:\s*+)?Do I need to use a tool\?\s*+(?:(?:Yes|No)\s*+)?", re.IGNORECASE)
# Where a final answer ends if the model keeps talking in the conversation format.
_TURN_WORDS = ("Human", "New input", "Observation", "Thought")
_ANSWER_END = re.compile(r"\n(?:Human|New input|Observation|Thought)\s*+:")


@dataclass(frozen=True)
class ParsedReply:
    """A model reply, classified.

    Attributes:
        kind: ``tool`` (call ``tool`` with ``tool_input``), ``final`` (an ``AI:`` answer) or
            ``unparsed`` (neither; ``answer`` holds the cleaned text shown to the user).
        tool: tool name, stripped.
        tool_input: Action Input, stripped of spaces and quotes.
        answer: the text for the user.
        text: the raw reply.
    """

    kind: Literal["tool", "final", "unparsed"]
    text: str
    tool: str = ""
    tool_input: str = ""
    answer: str = ""


def _until_next_turn(text: str) -> str:
    """``text`` up to a line that starts another turn, stripped."""
    end = _ANSWER_END.search(text) if any(word in text for word in _TURN_WORDS) else None
    return (text[: end.start()] if end else text).strip()


def parse_reply(text: str) -> ParsedReply:
    """Classify an LLM reply. Never raises.

    A tool call (``Action:`` followed on the next line by ``Action Input:``) wins when it comes
    before any ``AI:`` line; otherwise the text after the first ``AI:`` line, up to a line that
    starts another turn, is the answer. Anything else is returned as an ``unparsed`` reply whose
    answer is the text without the ``Thought:`` boilerplate, so the user still sees it.

    The tool name is the rest of the line after its first ``Action:``; a line where that is longer
    than ``MAX_TOOL_NAME_CHARS`` is not a tool call. Linear time: about 10 ms per MB of reply.
    """
    action = _ACTION.search(text) if "Input" in text else None  # the plain checks skip most scans
    while action is not None and len(action.group(1).strip()) > MAX_TOOL_NAME_CHARS:
        action = _ACTION.search(text, action.end(1) + 1)  # from the next line (the Action Input line)
    ai = (_AI_FIRST.match(text) or _AI_LINE.search(text)) if "AI" in text else None
    if action and action.group(1).strip() and (ai is None or action.start() < ai.start()):
        tool_input = action.group(2).strip().strip('"').strip()
        return ParsedReply("tool", text, tool=action.group(1).strip().strip("\"'`"), tool_input=tool_input)
    if ai is not None:
        return ParsedReply("final", text, answer=_until_next_turn(text[ai.end() :]))
    thought = _THOUGHT.match(text)
    cleaned = _until_next_turn((text[thought.end() :] if thought else text).strip())
    return ParsedReply("unparsed", text, answer=cleaned or NO_ANSWER)
