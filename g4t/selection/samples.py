"""Read the parts of a GPT4Tools annotation record that the indicators need.

A training record is ``{"instruction", "input", "output"}`` (plus optional fields such as ``id``);
the instruction is the filled ``PROMPT_FORMAT`` (tool list, ``Previous conversation:``, ``New
input:``) followed, for later steps of a chain, by the earlier ``Thought/Action/Action
Input/Observation: <result>`` lines. These helpers are pure string functions.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from g4t.react import ACTION_INPUT_RE, ACTION_RE, THOUGHT_RE

__all__ = ["ParsedSample", "file_names", "parse_sample", "sample_hash"]

_TOOL_LINE = re.compile(r"^> ([^:\n]+): ", re.MULTILINE)
_FILE = re.compile(r"[\w./-]+\.(?:png|jpg|jpeg|webp|bmp|gif)\b", re.IGNORECASE)
_IMAGE_LINE = re.compile(
    r"Provide an image named (\S+?)\.? (?:Description|The description is): (.*?) ?Understand", re.S
)
_SUFFIX = "\nGPT4Tools needs to use tools"
_STEP_MARK = "Let's think step by step.\n"


def sample_hash(record: dict) -> str:
    """A stable id of a record's content (instruction, input, output): the cache key of its scores."""
    payload = json.dumps([record.get("instruction", ""), record.get("input", ""), record.get("output", "")])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def file_names(text: str) -> list[str]:
    """Image file names mentioned in ``text`` (``image/abcdefgh.png``, ``cache/x.jpg``...), in order."""
    return _FILE.findall(text)


@dataclass
class ParsedSample:
    """What the indicators look at in one record.

    Attributes:
        request: the user's request (the ``New input:`` text), without the long shared tool prompt.
        history: the ``Previous conversation:`` block (image announcement and caption, if any).
        scratchpad: earlier steps of the chain, as given in the instruction.
        output: the target text.
        offered_tools: tool names listed in the prompt.
        actions: ``Action:`` tool names in the output.
        action_inputs: ``Action Input:`` strings in the output (aligned with ``actions``).
        thoughts: the ``Do I need to use a tool?`` answers in the output.
        image: the image file announced in the history ("" if none).
        caption: the caption of that image ("" if none).
        known_files: every file name the conversation has shown before the output (history, earlier
            steps and observations of the chain, the record's ``filename``).
    """

    request: str
    history: str
    scratchpad: str
    output: str
    offered_tools: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    action_inputs: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    image: str = ""
    caption: str = ""
    known_files: list[str] = field(default_factory=list)

    @property
    def uses_tool(self) -> bool:
        return bool(self.actions)


def parse_sample(record: dict) -> ParsedSample:
    """Split a record into request, history, scratchpad and the steps of its output."""
    instruction = record.get("instruction", "")
    if record.get("input"):
        instruction = f"{instruction}\n{record['input']}"
    output = record.get("output", "")
    request, history, scratchpad = instruction, "", ""
    if "New input: " in instruction:
        head, _, tail = instruction.rpartition("New input: ")
        request = tail.split(_SUFFIX, 1)[0].strip()
        if "Previous conversation:" in head:
            history = head.split("Previous conversation:", 1)[1].strip()
        if _STEP_MARK in tail:
            scratchpad = tail.split(_STEP_MARK, 1)[1]
    elif record.get("user_input"):
        request = record["user_input"]
    if record.get("user_input"):  # val/test records carry the raw request
        request = record["user_input"]
    image, caption = "", ""
    if m := _IMAGE_LINE.search(history):
        image, caption = m[1].rstrip("."), m[2].strip()
    known = file_names(history) + file_names(scratchpad)
    if record.get("filename"):
        known.append(record["filename"])
    return ParsedSample(
        request=request,
        history=history,
        scratchpad=scratchpad,
        output=output,
        offered_tools=[t.strip() for t in _TOOL_LINE.findall(instruction)],
        actions=[a.strip() for a in ACTION_RE.findall(output)],
        action_inputs=[a.strip() for a in ACTION_INPUT_RE.findall(output)],
        thoughts=[t.strip() for t in THOUGHT_RE.findall(output)],
        image=image,
        caption=caption,
        known_files=known,
    )
