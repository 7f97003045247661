"""Native function calling (``--protocol tools``) for OpenAI-compatible chat servers.

The GPT4Tools tools are offered as JSON-Schema ``tools`` (OpenAI, vLLM with
``--enable-auto-tool-choice``, Ollama, llama.cpp server) and the model answers with ``tool_calls``.

* **Names.** OpenAI function names must match ``^[a-zA-Z0-9_-]{1,64}$``, so a published name becomes
  ``function_name(name)``: lower case, every run of other characters an underscore (``Edge Detection
  On Image`` <-> ``edge_detection_on_image``). ``ToolCatalog`` keeps the table for one tool list and
  maps back through it (two names that collide get ``_2``, ``_3``...); a model that answers with the
  published name itself, or another capitalisation, is understood too.
* **Arguments.** A registered tool's declared inputs (``image``, ``text``, ``question``...) become
  string parameters, all required; a tool the registry does not know (an unseen tool of a test file)
  gets one ``input`` parameter. Arguments go back to the published ``Action Input`` text: the values
  in declared order joined by ``", "`` (what the published completions hold), lists such as a box
  written as JSON (``[169, 101, 502, 381]``).
* **Batch scoring.** ``ToolCallingBackend`` has the backend contract (``generate`` / ``complete``): it
  takes a published-format prompt, sends the chat messages and ``tools`` built from it, and writes
  the reply back as the published ReAct text: a tool call becomes ``Thought: Do I need to use a tool?
  Yes\\nAction: <name>\\nAction Input: <args>``, a reply without calls ``Thought: Do I need to use a
  tool? No\\nAI: <content>``. Of parallel calls the first is the Action (a single ReAct step holds one
  call); the others are counted. An unknown function name stays the Action (scored as a wrong tool)
  and malformed JSON arguments stay the Action Input as sent (scored as wrong arguments); both are
  counted in ``usage`` and nothing raises.
* **Conversation.** ``ToolCallingBackend.chat`` sends any messages and tools and returns a
  ``ChatReply``; ``g4t.function_calling`` runs the tools it asks for.

Retries, timeouts, concurrency and token usage are ``OpenAIBackend``'s: the chat request travels
through its string-typed retry loop as JSON text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from g4t.chat_prompt import PromptFormatError, PublishedPrompt, parse_published_prompt, system_message
from g4t.llm.base import Completion, GenerationConfig, LLMError, OnResult, truncate_at_stop
from g4t.llm.openai_backend import OpenAIBackend, Usage
from g4t.prompts import human_response, tool_response
from g4t.tools.registry import split_args

__all__ = [
    "ChatReply",
    "ResolvedCall",
    "ToolCall",
    "ToolCallingBackend",
    "ToolCatalog",
    "ToolUsage",
    "function_name",
    "react_text",
]

FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What OpenAI accepts as a function name."""
GENERIC_INPUT = "input"
"""The one parameter of a tool the registry does not know."""
_INPUT_DOCS = {
    "image": "image_path: the file name of an image from the conversation or a tool observation, e.g. image/1a2b3c4d.png",
    "text": "the text the tool description asks for (a description, an instruction or an object name)",
    "question": "the question about the image",
    "box": "the region to keep, as [x1, y1, x2, y2] in pixels",
    "replacement": "what to put in place of the object",
    "instruction": "how to edit the object",
    GENERIC_INPUT: "the input to the tool, as its description says (comma-separated when it takes several values)",
}


def function_name(tool_name: str) -> str:
    """The OpenAI function name of a published tool name: ``Edge Detection On Image`` ->
    ``edge_detection_on_image`` (lower case, runs of other characters -> ``_``, at most 64)."""
    return re.sub(r"[^a-z0-9]+", "_", tool_name.lower()).strip("_")[:64] or "tool"


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _value(value) -> str:
    """An argument value as Action Input text (numbers and lists as JSON)."""
    if isinstance(value, str):
        return _one_line(value)
    return "" if value is None else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ToolCall:
    """One entry of a reply's ``tool_calls``.

    Attributes:
        id: the call id (``call_<i>`` when the server sent none).
        function: the function name as sent.
        arguments: the arguments text as sent (JSON expected; an object sent as such is dumped).
    """

    id: str
    function: str
    arguments: str


@dataclass
class ChatReply:
    """An assistant message: ``content`` (may be empty) and ``tool_calls`` in the order sent."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    @classmethod
    def from_json(cls, text: str) -> ChatReply:
        data = json.loads(text)
        return cls(data.get("content") or "", [ToolCall(**c) for c in data.get("tool_calls", [])])


@dataclass(frozen=True)
class ResolvedCall:
    """A tool call in published terms.

    Attributes:
        tool: the published tool name, or the function name as sent when it names no offered tool.
        action_input: the arguments as the published Action Input text.
        values: the argument values in declared order (what ``Toolbox.run_args`` takes).
        arguments: the arguments as a JSON object text fit to send back (``{}`` when malformed).
        error: why the call cannot run (unknown tool, malformed or missing arguments), or None.
        unknown: the function names no offered tool.
        malformed: the arguments are not a usable JSON object.
    """

    tool: str
    action_input: str
    arguments: str = "{}"
    values: tuple[str, ...] = ()
    error: str | None = None
    unknown: bool = False
    malformed: bool = False


class ToolCatalog:
    """The tools of one prompt or toolbox as JSON Schema, and the way back to published names.

    Args:
        tools: ``(published name, description)`` pairs in offer order.
        inputs: declared inputs per published name; default: the registry's, else one ``input``.
    """

    def __init__(self, tools: Iterable[tuple[str, str]], inputs: dict[str, Sequence[str]] | None = None) -> None:
        if inputs is None:
            import g4t.tools  # noqa: F401  (registers every tool family; no model library is imported)
            from g4t.tools.registry import TOOLS

            inputs = {name: spec.inputs for name, spec in TOOLS.items()}
        self.known_inputs = dict(inputs)
        self.tools: list[tuple[str, str]] = []
        self.inputs: dict[str, tuple[str, ...]] = {}
        self.to_function: dict[str, str] = {}
        self.to_tool: dict[str, str] = {}
        for name, description in tools:
            self.add(name, description)

    def add(self, name: str, description: str) -> None:
        """Offer one more tool (its known inputs, else one ``input``; a name offered twice keeps its first entry)."""
        if name in self.to_function:
            return
        base = function_name(name)
        fn, k = base, 2
        while fn in self.to_tool:
            fn, k = f"{base[: 64 - len(str(k)) - 1]}_{k}", k + 1
        self.to_function[name], self.to_tool[fn] = fn, name
        self.inputs[name] = tuple(self.known_inputs.get(name) or (GENERIC_INPUT,))
        self.tools.append((name, description))

    def schemas(self) -> list[dict]:
        """The ``tools`` request field: one function per tool, with its published description."""
        out = []
        for name, description in self.tools:
            params = self.inputs[name]
            properties = {p: {"type": "string", "description": _INPUT_DOCS.get(p, p)} for p in params}
            parameters = {"type": "object", "properties": properties, "required": list(params)}
            parameters["additionalProperties"] = False
            fn = {"name": self.to_function[name], "description": description.strip(), "parameters": parameters}
            out.append({"type": "function", "function": fn})
        return out

    def tool_name(self, function: str) -> str | None:
        """The published name a function name stands for (exact, published, or case-insensitive), or None."""
        if function in self.to_tool:
            return self.to_tool[function]
        if function in self.to_function:  # the model echoed the published name
            return function
        return self.to_tool.get(function_name(function))

    def arguments(self, tool: str, action_input: str) -> str:
        """A published Action Input as the JSON arguments of ``tool`` (split as ``Toolbox.run`` splits it)."""
        params = self.inputs.get(tool, (GENERIC_INPUT,))
        values = split_args(action_input, len(params)) if len(params) > 1 else [action_input.strip()]
        values += [""] * (len(params) - len(values))
        return json.dumps(dict(zip(params, values, strict=True)), ensure_ascii=False)

    def echo_name(self, call: ToolCall) -> str:
        """The function name to send back in the history: as sent when valid, else made valid."""
        return call.function if FUNCTION_NAME.match(call.function) else function_name(call.function)

    def resolve(self, call: ToolCall, max_chars: int = 8_000) -> ResolvedCall:
        """``call`` in published terms; never raises (see ``ResolvedCall`` for the failure flags).

        Args:
            call: the call as sent.
            max_chars: longer argument texts are refused unparsed (a runaway model).
        """
        raw = call.arguments
        tool = self.tool_name(call.function)
        if tool is None:  # scored as a wrong Action; its arguments are read as an unknown tool's
            shown = call.function[:100]
            found = self._arguments(shown, (GENERIC_INPUT,), raw, max_chars)
            error = f"{shown} is not a valid tool, try another one."
            return ResolvedCall(shown, found.action_input, found.arguments, error=error, unknown=True)
        return self._arguments(tool, self.inputs[tool], raw, max_chars)

    @staticmethod
    def _arguments(tool: str, params: tuple[str, ...], raw: str, max_chars: int) -> ResolvedCall:
        if len(raw) > max_chars:
            error = f"Error: the arguments of {tool} are {len(raw)} characters long (limit {max_chars})"
            return ResolvedCall(tool, _one_line(raw[:200]), error=error, malformed=True)
        try:
            data = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as e:
            error = f"Error: the arguments of {tool} are not valid JSON ({e.msg} at column {e.colno}): {raw[:200]}"
            return ResolvedCall(tool, _one_line(raw), error=error, malformed=True)
        if not isinstance(data, dict):
            if len(params) == 1 and isinstance(data, str | int | float | list):
                data = {params[0]: data}
            else:
                error = (
                    f"Error: the arguments of {tool} must be a JSON object with {', '.join(params)}, got {raw[:200]}"
                )
                return ResolvedCall(tool, _one_line(raw), error=error, malformed=True)
        if params == (GENERIC_INPUT,) and GENERIC_INPUT not in data:
            values = [_value(v) for v in data.values()]  # a tool without declared inputs: the values as sent
        elif all(p in data for p in params):
            values = [_value(data[p]) for p in params]
        elif len(data) == len(params):  # same count, some other names (image_path, object...)
            others = iter(v for k, v in data.items() if k not in params)  # fill the free slots in order
            values = [_value(data[p] if p in data else next(others)) for p in params]
        else:
            missing = [p for p in params if p not in data]
            values = [_value(data[p]) for p in params if p in data]
            error = f"Error: {tool} needs the arguments {', '.join(params)}; missing {', '.join(missing)}"
            arguments = json.dumps(data, ensure_ascii=False)
            return ResolvedCall(tool, ", ".join(values), arguments, error=error, malformed=True)
        same_shape = len(values) == len(params)
        arguments = json.dumps(dict(zip(params, values, strict=True)) if same_shape else data, ensure_ascii=False)
        return ResolvedCall(tool, ", ".join(values), arguments, tuple(values))


@dataclass
class ToolUsage(Usage):
    """``Usage`` plus what the model did with the tools (summed over every reply).

    Attributes:
        tool_replies: replies with at least one tool call.
        plain_replies: replies without a tool call (an answer).
        calls: tool calls received.
        parallel_replies: replies with more than one call.
        extra_calls: calls after the first of a reply, in batch scoring (not scored).
        unknown_tools: calls naming no offered tool.
        malformed_arguments: calls whose arguments are not a usable JSON object.
    """

    tool_replies: int = 0
    plain_replies: int = 0
    calls: int = 0
    parallel_replies: int = 0
    extra_calls: int = 0
    unknown_tools: int = 0
    malformed_arguments: int = 0

    def summary(self) -> str:
        return (
            f"{super().summary()}; {self.tool_replies} replies with tool calls ({self.calls} calls, "
            f"{self.parallel_replies} parallel, {self.unknown_tools} unknown tools, {self.malformed_arguments} "
            f"malformed arguments, {self.extra_calls} extra calls not scored), {self.plain_replies} plain answers"
        )


def react_text(reply: ChatReply, catalog: ToolCatalog) -> str:
    """A reply as the published ReAct text of one step (the first call when there are several)."""
    if not reply.tool_calls:  # the training data's answer step, without its final newline
        return human_response(reply.content.strip()).removesuffix("\n")
    call = catalog.resolve(reply.tool_calls[0])
    # the training data's tool-call step, up to where generation stops (before "Observation:")
    return tool_response(call.tool, call.action_input).removesuffix("\nObservation:\n")


def _request(prompt: PublishedPrompt) -> tuple[dict, ToolCatalog]:
    """The chat request (messages and tools) for a parsed published prompt, and its catalog."""
    catalog = ToolCatalog(prompt.tools)
    offered = len(catalog.tools)
    for step in prompt.steps:  # a step may name a tool the list does not offer; it must still map
        if step.tool not in catalog.to_function:
            catalog.add(step.tool, "")
    messages: list[dict] = [{"role": "system", "content": system_message()}]
    messages += [{"role": role, "content": text} for role, text in prompt.history]
    messages.append({"role": "user", "content": prompt.user_input})
    for k, step in enumerate(prompt.steps):
        call = {"name": catalog.to_function[step.tool], "arguments": catalog.arguments(step.tool, step.tool_input)}
        call_id = f"call_{k}"
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": call}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": step.observation})
    return {"messages": messages, "tools": catalog.schemas()[:offered]}, catalog


def _get(obj, key: str):
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _message_json(message) -> str | None:
    """The assistant message of a response as ``{"content", "tool_calls"}`` JSON; None when it has neither."""
    content = _get(message, "content")
    raw_calls = list(_get(message, "tool_calls") or [])
    legacy = _get(message, "function_call")
    if not raw_calls and legacy is not None:  # the older "functions" API
        raw_calls = [{"id": None, "function": legacy}]
    calls, seen = [], set()
    for i, c in enumerate(raw_calls):
        fn = _get(c, "function") or _get(c, "custom") or {}
        args = _get(fn, "arguments")
        if args is None:
            args = _get(fn, "input")
        if not isinstance(args, str):  # Ollama-style: the arguments as an object
            args = "" if args is None else json.dumps(args, ensure_ascii=False)
        call_id = str(_get(c, "id") or f"call_{i}")
        while call_id in seen:
            call_id += "_"
        seen.add(call_id)
        calls.append({"id": call_id, "function": str(_get(fn, "name") or ""), "arguments": args})
    if content is None and not calls:
        return None
    return json.dumps({"content": content if isinstance(content, str) else "", "tool_calls": calls})


class ToolCallingBackend(OpenAIBackend):
    """An OpenAI-compatible chat server driven through native ``tools`` / ``tool_calls``.

    ``generate`` / ``complete`` take published-format prompts and return the published ReAct text
    (see the module docstring); ``chat`` sends any messages and tools. Arguments as ``OpenAIBackend``
    (``mode`` must be ``chat``; ``chat_role`` is ignored: the messages are built here).

    Attributes:
        usage: token, request and tool-call counters (``ToolUsage``).
    """

    def __init__(self, model: str, base_url: str | None = None, mode: str = "chat", **options) -> None:
        if mode != "chat":
            raise ValueError(f"--protocol tools needs a chat server (--openai_mode chat), got mode {mode!r}")
        options.pop("chat_role", None)  # the messages are built here
        super().__init__(model, base_url, "chat", **options)
        self.usage = ToolUsage()

    def chat(self, messages: list[dict], tools: list[dict], gen: GenerationConfig | None = None) -> ChatReply:
        """One assistant message for ``messages`` with ``tools`` offered (retried as configured).

        Raises:
            LLMError: the request failed after the retries.
        """
        result = self._complete_one(self._client(), json.dumps({"messages": messages, "tools": tools}), [], gen)
        if not result.ok:
            raise LLMError(f"failed after {result.attempts} attempt(s): {result.error}")
        return ChatReply.from_json(result.text)

    def count(self, reply: ChatReply, calls: Sequence[ResolvedCall], scored: int | None = None) -> None:
        """Add one reply to ``usage`` (``scored``: calls that were used, when not all of them)."""
        with self._lock:
            u = self.usage
            if not reply.tool_calls:
                u.plain_replies += 1
                return
            u.tool_replies += 1
            u.calls += len(reply.tool_calls)
            u.parallel_replies += len(reply.tool_calls) > 1
            u.extra_calls += 0 if scored is None else len(reply.tool_calls) - scored
            u.unknown_tools += sum(c.unknown for c in calls)
            u.malformed_arguments += sum(c.malformed for c in calls)

    def stream(self, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None) -> Iterator[str]:
        """Streaming contract, for a ReAct loop driving this backend: the mapped step as one delta (tool
        calls are only usable once complete, so the reply is not streamed)."""
        yield self.generate([prompt], stop, gen)[0]

    # -- OpenAIBackend hooks ----------------------------------------------------------------------

    def _params(self, prompt: str, stop: list[str], gen: GenerationConfig | None) -> dict:
        request = json.loads(prompt)  # {"messages", "tools"}; stop strings are applied locally only
        params = super()._params("", [], gen)
        params["messages"] = request["messages"]
        if request["tools"]:
            params["tools"] = request["tools"]
        return params

    def _reply_text(self, choice) -> str | None:
        return _message_json(choice.message)

    def complete(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] = (),
        gen: GenerationConfig | None = None,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """Backend contract, per sample: each published-format prompt as a tools request, each reply as
        the published ReAct text of one step (cut at ``stop``); failures are returned, never raised.

        Raises:
            PromptFormatError: a prompt is not in the published format (checked before any request).
        """
        requests, catalogs = [], []
        for i in range(len(prompts)):
            try:
                request, catalog = _request(parse_published_prompt(prompts[i]))
            except PromptFormatError as e:
                end = " ".join(prompts[i][-80:].split())
                raise PromptFormatError(
                    f"prompt {i + 1} of {len(prompts)} (ending {end!r}) is not a published GPT4Tools prompt, which "
                    f"--protocol tools turns into chat messages and tools: {e}"
                ) from None
            requests.append(json.dumps(request))
            catalogs.append(catalog)

        def mapped(i: int, result: Completion) -> bool | None:
            if result.ok:
                reply = ChatReply.from_json(result.text)
                calls = [catalogs[i].resolve(c) for c in reply.tool_calls]
                self.count(reply, calls, scored=min(1, len(calls)))
                result.text = truncate_at_stop(react_text(reply, catalogs[i]), stop)
            return on_result(i, result) if on_result is not None else None

        return super().complete(requests, (), gen, mapped)
