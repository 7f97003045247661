"""The ReAct loop: parse replies, run tools, append observations, keep per-conversation memory.

Parsing is a pure function (``parse_reply``). The loop fixes the published agent's failure modes:
an unparseable reply is shown to the user instead of raising; unknown tools and failing tools give
observations; memory keeps the last N exchanges (the published trimming kept one); every
conversation has its own memory and image folder.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from g4t.llm.base import Backend, GenerationConfig, LLMError
from g4t.prompts import Layout, PromptTemplate, Step, format_steps, image_history, render_agent_prompt
from g4t.tools.registry import Toolbox
from g4t.tools.workspace import Workspace

__all__ = ["STOP", "Agent", "Conversation", "Memory", "ParsedReply", "TurnResult", "parse_reply"]

logger = logging.getLogger(__name__)

# The model was trained to end a tool call with a bare "Observation:" line; stop there. (The
# published stop words had a trailing space and never matched; see docs/prompts.md.)
STOP = ["\nObservation:", "\n\tObservation:"]
MAX_ITERATIONS_MESSAGE = "Agent stopped due to max iterations."

# The tool name is bounded (tool names are short): an unbounded lazy match made a long line of
# repeated "Action:" quadratic to scan.
_ACTION = re.compile(r"Action[ \t]*:[ \t]*([^\n]{0,200}?)[ \t]*\r?\n[ \t]*Action[ \t]*Input[ \t]*:[ \t]*(.*)")
_AI = re.compile(r"(?:^|\n)[ \t]*AI\s*:[ \t]?")
_THOUGHT = re.compile(r"^\s*(?:Thought\s*:)?\s*Do I need to use a tool\?\s*(?:Yes|No)?\s*", re.IGNORECASE)
# Where a final answer ends if the model keeps talking in the conversation format.
_ANSWER_END = re.compile(r"\n(?:Human|New input|Observation|Thought)\s*:")


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


def parse_reply(text: str) -> ParsedReply:
    """Classify an LLM reply. Never raises.

    A tool call (``Action:`` followed on the next line by ``Action Input:``) wins when it comes
    before any ``AI:`` line; otherwise the text after the first ``AI:`` line, up to a line that
    starts another turn, is the answer. Anything else is returned as an ``unparsed`` reply whose
    answer is the text without the ``Thought:`` boilerplate, so the user still sees it.
    """
    action = _ACTION.search(text)
    ai = _AI.search(text)
    if action and action.group(1).strip() and (ai is None or action.start() < ai.start()):
        tool_input = action.group(2).strip().strip('"').strip()
        return ParsedReply("tool", text, tool=action.group(1).strip().strip("\"'`"), tool_input=tool_input)
    if ai is not None:
        answer = text[ai.end() :]
        end = _ANSWER_END.search(answer)
        return ParsedReply("final", text, answer=(answer[: end.start()] if end else answer).strip())
    cleaned = _THOUGHT.sub("", text).strip()
    end = _ANSWER_END.search(cleaned)
    cleaned = (cleaned[: end.start()] if end else cleaned).strip()
    return ParsedReply("unparsed", text, answer=cleaned or "Sorry, I could not produce an answer. Please rephrase.")


@dataclass
class _Exchange:
    human: str
    ai: str
    image: tuple[str, str] | None = None  # (path, caption) for an image announcement


class Memory:
    """Chat history of one conversation, trimmed to the last ``keep_last_n`` exchanges.

    An image upload is an exchange of its own (the announcement line and ``Received.``).

    Args:
        keep_last_n: exchanges kept in the prompt (0 = none). The published demo meant to keep N
            but always kept one.
    """

    def __init__(self, keep_last_n: int = 3) -> None:
        if keep_last_n < 0:
            raise ValueError(f"keep_last_n must be >= 0, got {keep_last_n}")
        self.keep_last_n = keep_last_n
        self.exchanges: list[_Exchange] = []

    def add(self, human: str, ai: str) -> None:
        self.exchanges.append(_Exchange(human, ai))

    def add_image(self, path: str, caption: str) -> None:
        self.exchanges.append(_Exchange("", "Received.", image=(path, caption)))

    def clear(self) -> None:
        self.exchanges.clear()

    def render(self, layout: Layout = "training") -> str:
        """The ``{chat_history}`` text for the prompt, in the layout's wording."""
        kept = self.exchanges[-self.keep_last_n :] if self.keep_last_n else []
        parts = []
        for ex in kept:
            if ex.image is not None:
                line = image_history(*ex.image, layout=layout)
                parts.append(line if layout == "training" else f"{line}AI: {ex.ai}")
            else:
                parts.append(
                    f"Human: {ex.human}\nAI: {ex.ai}" if layout == "training" else f"\nHuman: {ex.human}\nAI: {ex.ai}"
                )
        return ("\n" if layout == "training" else "").join(parts)


@dataclass
class TurnResult:
    """What one user message produced.

    Attributes:
        answer: the text for the user.
        steps: the tool calls made, with observations.
        images: workspace images produced by tools this turn (absolute paths).
        stopped: True when the step limit ended the turn.
    """

    answer: str
    steps: list[Step] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    stopped: bool = False


class Agent:
    """Shared, stateless part of the agent: LLM, tools and prompt settings.

    Args:
        backend: any ``Backend``.
        toolbox: the loaded tools.
        template: conversation template wrapping the prompt (None = send the prompt as is, e.g. to a
            chat API that applies its own template).
        layout: ``training`` (default for local models: the released LoRA was trained on this
            layout, and the demo layout drifts from it in blank lines and the image line) or ``demo``.
        max_steps: tool calls per turn before giving up (langchain's default was 15).
        gen: generation settings.
    """

    def __init__(
        self,
        backend: Backend,
        toolbox: Toolbox,
        template: PromptTemplate | None = None,
        layout: Layout = "training",
        max_steps: int = 15,
        gen: GenerationConfig | None = None,
    ) -> None:
        self.backend = backend
        self.toolbox = toolbox
        self.template = template
        self.layout = layout
        self.max_steps = max_steps
        self.gen = gen or GenerationConfig()

    def build_prompt(self, memory: Memory, user_input: str, steps: list[Step]) -> str:
        prompt = render_agent_prompt(
            self.toolbox.descriptions(),
            memory.render(self.layout),
            user_input,
            format_steps(steps, self.layout),
            self.layout,
        )
        return self.template.render(prompt) if self.template else prompt

    def conversation(self, root: str | Path, keep_last_n: int = 3) -> Conversation:
        """A new conversation with its own memory and image folder under ``root``."""
        return Conversation(self, Workspace(root), Memory(keep_last_n))


class Conversation:
    """One user's conversation: memory + workspace, driven by a shared ``Agent``."""

    def __init__(self, agent: Agent, workspace: Workspace, memory: Memory) -> None:
        self.agent = agent
        self.workspace = workspace
        self.memory = memory

    def add_image(self, image: Image.Image) -> tuple[str, str]:
        """Save an upload (resized, PNG, uuid name), caption it if a captioner is loaded, remember it.

        Returns:
            ``(relative path, caption)``.
        """
        path = self.workspace.save_upload(image)
        caption = "an uploaded image"
        if self.agent.toolbox.has_model("ImageCaptioning"):
            observation = self.agent.toolbox.run("Get Photo Description", path, self.workspace)
            if not observation.startswith("Error:"):
                caption = observation
        self.memory.add_image(path, caption)
        return path, caption

    def run(self, user_input: str) -> TurnResult:
        """Answer one user message, calling tools as the model asks. Never raises."""
        agent = self.agent
        steps: list[Step] = []
        images: list[Path] = []
        result = None
        for _ in range(agent.max_steps):
            prompt = agent.build_prompt(self.memory, user_input, steps)
            try:
                reply = agent.backend.generate([prompt], stop=STOP, gen=agent.gen)[0]
            except (LLMError, OSError, RuntimeError, ValueError) as e:
                logger.exception("LLM call failed")
                result = TurnResult(f"The language model failed to answer: {e}", steps, images)
                break
            parsed = parse_reply(reply)
            if parsed.kind != "tool":
                result = TurnResult(parsed.answer, steps, images)
                break
            observation = agent.toolbox.run(parsed.tool, parsed.tool_input, self.workspace)
            steps.append(Step(parsed.tool, parsed.tool_input, observation, log=reply))
            images += [p for p in self.workspace.find_images(observation) if p not in images]
        if result is None:
            last = f" Last observation: {steps[-1].observation}" if steps else ""
            result = TurnResult(MAX_ITERATIONS_MESSAGE + last, steps, images, stopped=True)
        self.memory.add(user_input, result.answer)
        return result

    def clear(self) -> None:
        self.memory.clear()
