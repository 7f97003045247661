"""The ReAct loop: parse replies, run tools, append observations, keep per-conversation memory.

Parsing is a pure function (``g4t.react.parse_reply``, re-exported here). The loop fixes the published agent's failure modes:
an unparseable reply is shown to the user instead of raising; unknown tools and failing tools give
observations; memory keeps the last N exchanges (the published trimming kept one); every
conversation has its own memory and image folder.

Hostile or broken replies cannot hang or crash a turn: parsing and image-finding are linear in the
reply's length, the reply, each observation, the user message and the whole prompt are capped
(``MAX_*_CHARS``; the prompt drops the oldest history first, and every cut is logged), and
``Conversation.run`` turns every error into text that names files relative to the workspace.

``Conversation.run_stream`` is the same turn as a stream of events (the reply of the current step as
the model writes it, each finished tool call, the result); ``run`` consumes it. Closing the stream
stops the model (the backend's stream is closed) and the turn is remembered as stopped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from g4t.llm.base import Backend, GenerationConfig, LLMError, stream_text
from g4t.prompts import TRAINING, Layout, PromptTemplate, Step, prompt_layout
from g4t.react import MAX_TOOL_NAME_CHARS, NO_ANSWER, STOP, ParsedReply, parse_reply
from g4t.tools.images import ImageSource
from g4t.tools.registry import Observation, Toolbox
from g4t.tools.workspace import Workspace, redact_paths

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_OBSERVATION_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_REPLY_CHARS",
    "MAX_TOOL_NAME_CHARS",
    "STOP",
    "Agent",
    "Conversation",
    "STOPPED_ANSWER",
    "Memory",
    "ParsedReply",
    "ReplyDelta",
    "StepDone",
    "TurnDone",
    "TurnEvent",
    "TurnResult",
    "clip",
    "parse_reply",
]

logger = logging.getLogger(__name__)

MAX_ITERATIONS_MESSAGE = "Agent stopped due to max iterations."
STOPPED_ANSWER = "(stopped before answering)"
"""What memory keeps as the answer of a turn whose stream was closed (Stop, time limit)."""

# Size caps (characters). A model reply of 512 new tokens is about 2,000 characters and a tool
# observation a caption, an answer or a file name; the caps only stop runaway text (a 3.8 MB tool
# argument echoed for 15 steps once built a 53.5 M-character prompt).
MAX_REPLY_CHARS = 8_000
"""Model reply kept per step; the rest is cut before parsing."""
MAX_OBSERVATION_CHARS = 2_000
"""Tool observation kept per step (what the model and the user see)."""
MAX_INPUT_CHARS = 4_000
"""User message kept per turn."""
MAX_PROMPT_CHARS = 32_000
"""Prompt length: over it, history goes first (oldest exchange first), then earlier steps of the turn
are shortened, then the user message; the prompt with all 30 tools and no history is about 12 K."""


def clip(text: str, limit: int, what: str = "text") -> str:
    """``text`` cut to ``limit`` characters plus a note saying how much was cut (logged)."""
    if len(text) <= limit:
        return text
    logger.warning("%s of %d characters cut to %d", what, len(text), limit)
    return f"{text[:limit]} [... {len(text) - limit} more characters cut]"


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

    def render(self, layout: Layout = TRAINING, last: int | None = None) -> str:
        """The ``{chat_history}`` text for the prompt, in the layout's wording.

        Args:
            layout: a ``PromptLayout`` or its name.
            last: keep at most this many of the kept exchanges (the prompt cap drops the oldest).
        """
        layout = prompt_layout(layout)
        n = self.keep_last_n if last is None else min(last, self.keep_last_n)
        kept = self.exchanges[-n:] if n > 0 else []
        return layout.chat_history(
            layout.image_exchange(*ex.image, ex.ai) if ex.image is not None else layout.exchange(ex.human, ex.ai)
            for ex in kept
        )


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

    def readable(self) -> str:
        """The answer as a person should read it. A model trained on the published data ends a tool turn by
        repeating the tool's observation (``image/1a2b.png`` or ``Result saved as image/1a2b.png``), which
        reads as a bare file name; that echo becomes a sentence naming the tool and its result. Any other
        answer is returned as it is (memory keeps the model's own words either way)."""
        answer = self.answer.strip()
        if not self.steps or not _ECHO.fullmatch(answer):
            return self.answer
        return f"Here is the result of {self.steps[-1].tool}: {_ECHO.fullmatch(answer).group(1)}"


# An answer that only repeats an image observation (the published data's final answers do).
_ECHO = re.compile(r"(?:Result saved as )?(\S+\.(?:png|jpe?g|webp))\.?", re.I)


@dataclass(frozen=True)
class ReplyDelta:
    """The model is writing the reply of step ``step`` (0-based); ``text`` is the reply so far."""

    step: int
    text: str


@dataclass(frozen=True)
class StepDone:
    """A tool call finished: ``step`` holds its observation, ``images`` the workspace images it made."""

    step: Step
    images: list[Path]


@dataclass(frozen=True)
class TurnDone:
    """The turn is over (the last event of ``run_stream``)."""

    result: TurnResult


TurnEvent = ReplyDelta | StepDone | TurnDone


class Agent:
    """Shared, stateless part of the agent: LLM, tools and prompt settings.

    Args:
        backend: any ``Backend``.
        toolbox: the loaded tools.
        template: conversation template wrapping the prompt (None = send the prompt as is, e.g. to a
            chat API that applies its own template).
        layout: ``TRAINING`` (default for local models: the released LoRA was trained on this
            layout, and the demo layout drifts from it in blank lines and the image line) or ``DEMO``
            (``g4t.prompts``), or its name.
        max_steps: tool calls per turn before giving up (langchain's default was 15).
        gen: generation settings.
        max_reply_chars: model reply kept per step (``MAX_REPLY_CHARS``).
        max_observation_chars: tool observation kept per step (``MAX_OBSERVATION_CHARS``).
        max_input_chars: user message kept per turn (``MAX_INPUT_CHARS``).
        max_prompt_chars: prompt length; longer prompts lose history first (``MAX_PROMPT_CHARS``).
    """

    def __init__(
        self,
        backend: Backend,
        toolbox: Toolbox,
        template: PromptTemplate | None = None,
        layout: Layout = TRAINING,
        max_steps: int = 15,
        gen: GenerationConfig | None = None,
        max_reply_chars: int = MAX_REPLY_CHARS,
        max_observation_chars: int = MAX_OBSERVATION_CHARS,
        max_input_chars: int = MAX_INPUT_CHARS,
        max_prompt_chars: int = MAX_PROMPT_CHARS,
    ) -> None:
        limits = dict(
            max_steps=max_steps,
            max_reply_chars=max_reply_chars,
            max_observation_chars=max_observation_chars,
            max_input_chars=max_input_chars,
            max_prompt_chars=max_prompt_chars,
        )
        bad = [f"{k} must be >= 1, got {v}" for k, v in limits.items() if v < 1]
        if bad:
            raise ValueError("; ".join(bad))
        self.backend = backend
        self.toolbox = toolbox
        self.template = template
        self.layout = prompt_layout(layout)
        self.max_steps = max_steps
        self.gen = gen or GenerationConfig()
        self.max_reply_chars = max_reply_chars
        self.max_observation_chars = max_observation_chars
        self.max_input_chars = max_input_chars
        self.max_prompt_chars = max_prompt_chars

    def _render(self, history: str, user_input: str, steps: list[Step]) -> str:
        prompt = self.layout.agent_prompt(
            self.toolbox.descriptions(), history, user_input, self.layout.scratchpad(steps)
        )
        return self.template.render(prompt) if self.template else prompt

    def _token_budget(self) -> int | None:
        """Prompt tokens the model can take with room for the reply (``Backend.prompt_token_budget``), or
        None when the backend has no context window to respect (a server, a scripted model)."""
        budget = getattr(self.backend, "prompt_token_budget", None)
        return budget(self.gen) if callable(budget) else None

    def build_prompt(self, memory: Memory, user_input: str, steps: list[Step]) -> str:
        """The prompt for the next step, within ``max_prompt_chars`` and, for a local model, within its
        context window less the reply's ``max_new_tokens`` (counted in the model's tokens), where possible.

        Over a cap, the oldest history exchanges are dropped first, then the earlier steps of this
        turn are shortened (oldest first), then the user message; each cut is logged. A prompt whose
        fixed part (tool list, template) alone is over the cap is sent as is, with an error logged.
        """
        limit, budget = self.max_prompt_chars, self._token_budget()

        def size(text: str) -> str:
            tokens = f", {self.backend.count_tokens(text)} tokens" if budget is not None else ""
            return f"{len(text)} characters{tokens}"

        def fits(text: str) -> bool:
            return len(text) <= limit and (budget is None or self.backend.count_tokens(text) <= budget)

        prompt = self._render(memory.render(self.layout), user_input, steps)
        if fits(prompt):
            return prompt
        full = size(prompt)
        keep = min(memory.keep_last_n, len(memory.exchanges))
        dropped = 0
        while not fits(prompt) and keep > 0:
            keep, dropped = keep - 1, dropped + 1
            prompt = self._render(memory.render(self.layout, last=keep), user_input, steps)
        history = memory.render(self.layout, last=keep)
        shortened = 0
        steps = list(steps)
        for i, s in enumerate(steps):
            if fits(prompt):
                break
            steps[i] = Step(
                s.tool[:100],
                clip(s.tool_input, 200, "step input"),
                clip(s.observation, 200, "step observation"),
                clip(s.log, 400, "step log"),
            )
            shortened += 1
            prompt = self._render(history, user_input, steps)
        original, room = user_input, len(user_input)
        while not fits(prompt) and room > 200:  # over the characters: cut the excess; over the tokens: halve
            room = max(200, room - (len(prompt) - limit) if len(prompt) > limit else room // 2)
            user_input = clip(original, room, "user message")
            prompt = self._render(history, user_input, steps)
        caps = f"max_prompt_chars={limit}" + (f", {budget} prompt tokens" if budget is not None else "")
        logger.warning(
            "prompt of %s over %s: dropped %d oldest history exchanges, shortened %d earlier steps; now %s",
            full,
            caps,
            dropped,
            shortened,
            size(prompt),
        )
        if not fits(prompt):
            logger.error("the prompt's fixed part (tools, template) is over %s; sent as is", caps)
        return prompt

    def conversation(self, root: str | Path, keep_last_n: int = 3) -> Conversation:
        """A new conversation with its own memory and image folder under ``root``."""
        return Conversation(self, Workspace(root), Memory(keep_last_n))


class Conversation:
    """One user's conversation: memory + workspace, driven by a shared ``Agent``."""

    def __init__(self, agent: Agent, workspace: Workspace, memory: Memory) -> None:
        self.agent = agent
        self.workspace = workspace
        self.memory = memory

    def add_image(self, image: ImageSource) -> tuple[str, str]:
        """Save an upload (resized, PNG, uuid name), caption it if a captioner is loaded, remember it.

        Args:
            image: a file path (e.g. the web server's temporary upload), the file's bytes, or a PIL image.

        Returns:
            ``(relative path, caption)``.

        Raises:
            ImageError: the upload is not a usable image (the message says why; nothing is saved).
        """
        path = self.workspace.save_upload(image)
        caption = "an uploaded image"
        if self.agent.toolbox.has_tool_class("ImageCaptioning"):
            observation = self.agent.toolbox.run("Get Photo Description", path, self.workspace)
            if not observation.error:
                caption = observation.text
        self.memory.add_image(path, caption)
        return path, caption

    def run(self, user_input: str) -> TurnResult:
        """Answer one user message, calling tools as the model asks (``run_stream`` to the end).

        Never raises and never names a file by its absolute server path: every error (LLM, tool,
        file system) becomes an observation or the answer; sizes are capped (see ``Agent``).
        """
        for event in self.run_stream(user_input):
            if isinstance(event, TurnDone):
                return event.result
        raise AssertionError("run_stream ended without a result")  # pragma: no cover - run_stream always ends so

    def run_stream(self, user_input: str) -> Iterator[TurnEvent]:
        """Answer one user message as a stream of events: ``ReplyDelta`` while the model writes (the
        backend's ``stream`` when it has one, else one delta per step), ``StepDone`` after each tool
        call, and a final ``TurnDone`` with the ``TurnResult``.

        The guarantees of ``run`` hold (it is built on this). Closing the generator before
        ``TurnDone`` (Stop, a time limit) closes the model's stream, so generation stops, and memory
        keeps the message with ``STOPPED_ANSWER``.
        """
        user_input = clip(str(user_input), self.agent.max_input_chars, "user message")
        steps: list[Step] = []
        images: list[Path] = []
        try:
            result = yield from self._steps(user_input, steps, images)
        except GeneratorExit:
            self.memory.add(user_input, STOPPED_ANSWER)
            raise
        except Exception as e:  # last line of defence: the contract is an answer, whatever happened
            logger.exception("turn failed")
            result = TurnResult(f"Sorry, something went wrong ({e.__class__.__name__}).", steps, images)
        self.memory.add(user_input, result.answer)
        yield TurnDone(result)

    def _reply(self, step: int, prompt: str) -> Generator[ReplyDelta, None, str]:
        """Stream the model's reply for one step; returns it, capped at ``max_reply_chars``."""
        agent = self.agent
        reply = ""
        with closing(stream_text(agent.backend, prompt, STOP, agent.gen)) as deltas:
            for delta in deltas:
                if not isinstance(delta, str):
                    raise TypeError(f"the backend returned {type(delta).__name__}, not text")
                reply += delta
                if len(reply) > agent.max_reply_chars:
                    break  # closing() stops the model: the rest would be cut anyway
                yield ReplyDelta(step, reply)
        return clip(reply, agent.max_reply_chars, "model reply")

    def _steps(self, user_input: str, steps: list[Step], images: list[Path]) -> Generator[TurnEvent, None, TurnResult]:
        """The ReAct loop with live events; returns the result. A subclass with a loop of its own
        overrides this, or ``_run`` when its loop has nothing to show before the end (the result's
        steps are then shown at once, as ``ToolCallingConversation`` does)."""
        if type(self)._run is not Conversation._run:
            return self._run(user_input, steps, images)
        agent, workspace = self.agent, self.workspace
        for index in range(agent.max_steps):
            prompt = agent.build_prompt(self.memory, user_input, steps)
            try:
                reply = yield from self._reply(index, prompt)
            except (LLMError, OSError, RuntimeError, ValueError, TypeError, IndexError) as e:
                logger.exception("LLM call failed")
                reason = clip(workspace.redact(str(e)) or e.__class__.__name__, 500, "LLM error")
                return TurnResult(f"The language model failed to answer: {reason}", steps, images)
            parsed = parse_reply(reply)
            if parsed.kind != "tool":
                return TurnResult(workspace.relativize(parsed.answer) or NO_ANSWER, steps, images)
            try:
                observation = agent.toolbox.run(parsed.tool, parsed.tool_input, workspace)
            except Exception as e:  # Toolbox.run does not raise; a tool name must not end the turn
                logger.exception("tool %s failed", parsed.tool[:100])
                text = f"Error: {parsed.tool[:100]} failed ({e.__class__.__name__}: {redact_paths(str(e))})"
                observation = Observation(text, error=True)
            text = clip(workspace.relativize(observation.text), agent.max_observation_chars, "observation")
            steps.append(Step(parsed.tool, parsed.tool_input, text, log=reply))
            new = [p for p in observation.images if p not in images]
            images += new
            yield StepDone(steps[-1], new)
        last = f" Last observation: {steps[-1].observation}" if steps else ""
        return TurnResult(MAX_ITERATIONS_MESSAGE + last, steps, images, stopped=True)

    def _run(self, user_input: str, steps: list[Step], images: list[Path]) -> TurnResult:
        """A turn in one call, for subclasses whose loop shows no events (see ``_steps``)."""
        raise NotImplementedError

    def clear(self) -> None:
        self.memory.clear()
