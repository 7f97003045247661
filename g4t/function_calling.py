"""The agent loop over native function calling (``gpt4tools.py --protocol tools``).

Same contract as the ReAct ``Conversation`` (``run(text) -> TurnResult``, never raises; memory of the
last N exchanges; one ``Workspace`` per conversation; the step limit and the size caps of ``Agent``),
but the model gets the tools as JSON-Schema ``tools`` and asks for them with ``tool_calls``:

1. messages = the system message (published sentences, ``g4t.chat_prompt.system_message``), the kept
   history (an image upload is the user message ``Provide an image named ... Description: ...``
   answered ``Received.``), the user message, and this turn's calls and results;
2. each entry of ``tool_calls`` is run in order through ``Toolbox.run_args`` (the values in declared
   order, so commas inside a text argument stay in it; parallel calls included) and
   answered by a ``tool`` message with its ``tool_call_id``; an unknown function or malformed
   arguments get an error result the model can read, never an exception;
3. repeat until a message without tool calls (its content is the answer) or ``max_steps`` tool calls
   (calls past the limit are not run, and the turn ends as the ReAct loop's does).

Over ``max_prompt_chars`` (the messages and the tool schemas as JSON), the oldest history goes first,
then earlier results of the turn are shortened, as in ``Agent.build_prompt``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from g4t.agent import MAX_ITERATIONS_MESSAGE, MAX_REPLY_CHARS, NO_ANSWER, Agent, Conversation, Memory, TurnResult, clip
from g4t.chat_prompt import history_messages, system_message
from g4t.llm.base import GenerationConfig, LLMError
from g4t.llm.tool_calls import ChatReply, ResolvedCall, ToolCallingBackend, ToolCatalog
from g4t.prompts import TRAINING, Step
from g4t.tools.registry import Observation, Toolbox
from g4t.tools.workspace import Workspace

__all__ = ["ToolCallingAgent", "ToolCallingConversation"]

logger = logging.getLogger(__name__)


class ToolCallingAgent(Agent):
    """Shared part of a tool-calling agent: chat client, tools (as a ``ToolCatalog``), limits.

    Args:
        backend: the chat client.
        toolbox: the loaded tools.
        max_steps: tool calls per user message before giving up (parallel calls count one each).
        gen: generation settings (``max_new_tokens``, sampling).
        **limits: the size caps of ``Agent`` (``max_reply_chars``, ``max_observation_chars``...).
    """

    def __init__(
        self,
        backend: ToolCallingBackend,
        toolbox: Toolbox,
        max_steps: int = 15,
        gen: GenerationConfig | None = None,
        **limits: int,
    ) -> None:
        super().__init__(backend, toolbox, template=None, max_steps=max_steps, gen=gen, **limits)
        self.catalog = ToolCatalog(toolbox.descriptions(), {name: spec.inputs for name, spec in toolbox.tools.items()})
        self.schemas = self.catalog.schemas()

    def conversation(self, root: str | Path, keep_last_n: int = 3) -> ToolCallingConversation:
        """A new conversation with its own memory and image folder under ``root``."""
        return ToolCallingConversation(self, Workspace(root), Memory(keep_last_n))


def _size(messages: list[dict], schemas: list[dict]) -> int:
    return len(json.dumps(messages, ensure_ascii=False)) + len(json.dumps(schemas, ensure_ascii=False))


class ToolCallingConversation(Conversation):
    """One user's tool-calling conversation (memory + workspace), driven by a ``ToolCallingAgent``."""

    agent: ToolCallingAgent

    def _history(self, last: int | None = None) -> list[dict]:
        n = self.memory.keep_last_n if last is None else min(last, self.memory.keep_last_n)
        messages = []
        for ex in self.memory.exchanges[-n:] if n > 0 else []:
            if ex.image is not None:
                messages += [{"role": r, "content": t} for r, t in history_messages(TRAINING.image_history(*ex.image))]
            else:
                messages += [{"role": "user", "content": ex.human}, {"role": "assistant", "content": ex.ai}]
        return messages

    def _messages(self, user_input: str, turn: list[dict]) -> list[dict]:
        """The request's messages, within ``max_prompt_chars`` where possible: over it, the oldest
        history goes first, then earlier results of this turn are shortened, then the user message
        (each cut is logged)."""
        agent, limit = self.agent, self.agent.max_prompt_chars

        def build(keep: int | None) -> list[dict]:
            system = {"role": "system", "content": system_message()}
            return [system, *self._history(keep), {"role": "user", "content": user_input}, *turn]

        messages = build(None)
        full = _size(messages, agent.schemas)
        if full <= limit:
            return messages
        keep = min(self.memory.keep_last_n, len(self.memory.exchanges))
        while keep > 0 and _size(messages, agent.schemas) > limit:
            keep -= 1
            messages = build(keep)
        turn = [dict(m) for m in turn]
        for m in turn:
            if _size(messages, agent.schemas) <= limit:
                break
            if m["role"] == "tool":
                m["content"] = clip(m["content"], 200, "earlier tool result")
                messages = build(keep)
        over = _size(messages, agent.schemas) - limit
        if over > 0 and len(user_input) > 200:
            user_input = clip(user_input, max(200, len(user_input) - over), "user message")
            messages = build(keep)
        logger.warning(
            "request of %d characters over max_prompt_chars=%d: kept %d history exchanges; now %d characters",
            full,
            limit,
            keep,
            _size(messages, agent.schemas),
        )
        return messages

    def _call(self, call: ResolvedCall) -> Observation:
        if call.error is not None:
            return Observation(call.error, error=True)
        try:
            return self.agent.toolbox.run_args(call.tool, call.values, self.workspace)
        except Exception as e:  # Toolbox.run_args does not raise; a tool must not end the turn
            logger.exception("tool %s failed", call.tool[:100])
            return Observation(f"Error: {call.tool[:100]} failed ({e.__class__.__name__})", error=True)

    def _run(self, user_input: str, steps: list[Step], images: list[Path]) -> TurnResult:
        agent, workspace, catalog = self.agent, self.workspace, self.agent.catalog
        turn: list[dict] = []
        while len(steps) < agent.max_steps:
            try:
                reply = agent.backend.chat(self._messages(user_input, turn), agent.schemas, agent.gen)
            except (LLMError, OSError, RuntimeError, ValueError, TypeError) as e:
                logger.exception("LLM call failed")
                reason = clip(workspace.redact(str(e)) or e.__class__.__name__, 500, "LLM error")
                return TurnResult(f"The language model failed to answer: {reason}", steps, images)
            calls = [catalog.resolve(c, agent.max_reply_chars) for c in reply.tool_calls]
            agent.backend.count(reply, calls)
            if not reply.tool_calls:
                answer = clip(reply.content.strip(), agent.max_reply_chars, "model reply")
                return TurnResult(workspace.relativize(answer) or NO_ANSWER, steps, images)
            turn.append(_assistant(reply, calls, catalog))
            room = agent.max_steps - len(steps)  # calls past the step limit are not run; the turn then ends
            for raw, call in list(zip(reply.tool_calls, calls, strict=True))[:room]:
                observation = self._call(call)
                text = clip(workspace.relativize(observation.text), agent.max_observation_chars, "observation")
                log = clip(f"{raw.function}({raw.arguments})", 400, "tool call")
                steps.append(Step(call.tool, call.action_input, text, log=log))
                images += [p for p in observation.images if p not in images]
                turn.append({"role": "tool", "tool_call_id": raw.id, "content": text})
        last = f" Last observation: {steps[-1].observation}" if steps else ""
        return TurnResult(MAX_ITERATIONS_MESSAGE + last, steps, images, stopped=True)


def _assistant(reply: ChatReply, calls: list[ResolvedCall], catalog: ToolCatalog) -> dict:
    """The assistant message to send back: valid function names, arguments as a JSON object (``{}``
    when the model's were malformed: servers that re-parse the history would reject them)."""
    tool_calls = [
        {"id": raw.id, "type": "function", "function": {"name": catalog.echo_name(raw), "arguments": call.arguments}}
        for raw, call in zip(reply.tool_calls, calls, strict=True)
    ]
    content = clip(reply.content, MAX_REPLY_CHARS, "model reply") if reply.content else None
    return {"role": "assistant", "content": content, "tool_calls": tool_calls}
