"""Every GPT4Tools prompt, rendered from the published format strings.

One source of truth for the data builder, the trainer, the inference scripts and the live agent.
The format strings themselves live in ``templates/`` as data (``gpt4tools_prompts.json`` and the
conversation templates); their bytes are frozen by golden-file tests because the released LoRA
and data were trained on them.

Two prompt *layouts* exist, and they differ in small but real ways (see ``docs/prompts.md``). Each
is a ``PromptLayout`` object (``TRAINING``, ``DEMO``; ``prompt_layout("training")`` looks one up by
its ``--prompt_layout`` name) whose methods render the parts that differ:

* ``TRAINING`` -- ``PROMPT_FORMAT`` of the published data generator: one blank line after the
  format block, a blank line after ``Previous conversation:``, rstripped tool descriptions, the
  image line ``Human: Provide an image named X. Description: C Understand the image using
  tools.\\nAI: Received.``, and earlier steps of the chain appended as
  ``Thought/Action/Action Input/Observation: <result>`` lines.
* ``DEMO`` -- what the published Gradio demo sent through langchain 0.0.101: prefix, tool list,
  format instructions and suffix joined by blank lines (two blank lines before "Follow file
  name rules"), the demo image line ("The description is: C."), and the langchain scratchpad
  (``<llm output>\\nObservation: <result>\\nThought:``).
"""

from __future__ import annotations

import json
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar, Literal

__all__ = [
    "DEMO",
    "TEMPLATES_DIR",
    "TRAINING",
    "TOOL_NAMES_LIST",
    "TRAINING_CONFIG_FILE",
    "Layout",
    "PromptLayout",
    "PromptTemplate",
    "Step",
    "CHAT_TEMPLATE",
    "available_templates",
    "chat_template",
    "format_steps",
    "human_response",
    "image_history",
    "load_template",
    "observation_spans",
    "direct_answer_span",
    "prompt_layout",
    "prompt_strings",
    "render_agent_prompt",
    "render_tool_descriptions",
    "render_training_prompt",
    "saved_template_name",
    "template_name_for_adapter",
    "tool_response",
]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

# Placeholders each format string must contain (checked when loading, so an edited file fails fast).
_REQUIRED_FIELDS = {
    "agent_prefix": set(),
    "agent_format_instructions": {"tool_names", "ai_prefix"},
    "agent_suffix": {"chat_history", "input", "agent_scratchpad"},
    "agent_image_format": {"image_path", "image_caption"},
    "training_prompt": {"tool_descriptions", "tool_names", "chat_history", "input"},
    "training_image_format": {"image_path", "image_caption"},
    "tool_response_format": {"tool_name", "args"},
    "human_response_format": {"response"},
}


def _fields(fmt: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(fmt) if name}


@cache
def prompt_strings() -> dict[str, str]:
    """The published format strings from ``templates/gpt4tools_prompts.json`` (validated)."""
    path = TEMPLATES_DIR / "gpt4tools_prompts.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, fields in _REQUIRED_FIELDS.items():
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
        if _fields(data[key]) != fields:
            raise ValueError(
                f"{path}: {key!r} has placeholders {sorted(_fields(data[key]))}, expected {sorted(fields)}"
            )
    return data


def tool_response(tool_name: str, args: str) -> str:
    """A tool-call step as in the training data (ends with a bare ``Observation:`` line)."""
    return prompt_strings()["tool_response_format"].format(tool_name=tool_name, args=args)


# The tool list of the format instructions ("Action: ..., should be one of [{tool_names}]"): names are
# joined by ", " and never contain one (nor "]" or a newline).
TOOL_NAMES_LIST = re.compile(r"should be one of \[(?P<names>[^\]\n]*)\]")

_OBSERVATION = re.compile(r"Observation:(.*?)(?=\nThought:|\n\n|\Z)", re.S)


def observation_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the tool results in a ReAct text.

    A result is what follows ``Observation:`` up to the next ``Thought:`` line, blank line or the end
    of the text, its leading space or newline included. The model never writes these (generation stops at
    ``Observation:``); in generated data they are random file names, unlearnable by construction.
    """
    return [m.span(1) for m in _OBSERVATION.finditer(text) if m.end(1) > m.start(1)]


def direct_answer_span(instruction: str, output: str) -> tuple[int, int] | None:
    """Character span ``[start, end)`` in ``output`` of the text of a final answer given without any tool
    in this turn (chit-chat), or None.

    The reply must be a whole ``human_response`` (``Thought: ... No`` then ``AI: <text>``) and the
    instruction must hold no tool result after its last ``New input:``. The span is the answer text
    with the space before it, trailing whitespace excluded; a relayed tool result is never one.
    """
    turn = instruction[instruction.rfind("New input:") :] if "New input:" in instruction else instruction
    if "Observation:" in turn:
        return None
    head = prompt_strings()["human_response_format"].split("{response}")[0]
    if not output.startswith(head):
        return None
    start, end = len(head.rstrip(" ")), len(output.rstrip())  # the space after "AI:" starts the first word's token
    return (start, end) if end > len(head) else None


def human_response(response: str) -> str:
    """A final-answer step as in the training data."""
    return prompt_strings()["human_response_format"].format(response=response)


@dataclass
class Step:
    """One executed ReAct step of the current turn.

    Attributes:
        tool: the tool name the model asked for.
        tool_input: the Action Input string.
        observation: what the tool returned (or the error text).
        log: the raw model text that produced the step (used by the demo layout's scratchpad).
    """

    tool: str
    tool_input: str
    observation: str
    log: str = ""


# ---------------------------------------------------------------------------------------------
# Layouts: everything the training and the demo prompt render differently
# ---------------------------------------------------------------------------------------------


def _tool_block(tools: Iterable[tuple[str, str]], strip: bool) -> tuple[str, str]:
    tools = list(tools)
    descriptions = "\n".join(f"> {name}: {desc.rstrip() if strip else desc}" for name, desc in tools)
    return descriptions, ", ".join(name for name, _ in tools)


class PromptLayout(ABC):
    """How one layout renders the agent prompt: the tool list, the chat history, the scratchpad.

    The two instances are ``TRAINING`` and ``DEMO``; ``prompt_layout`` looks one up by its CLI name.
    A layout compares equal to (and hashes like) its name, so code holding ``"training"`` or
    ``"demo"`` keeps working.

    Attributes:
        name: ``"training"`` or ``"demo"`` (the ``--prompt_layout`` value).
        history_separator: what joins the entries of the chat history.
    """

    __slots__ = ()
    name: ClassVar[str]
    history_separator: ClassVar[str]

    @abstractmethod
    def tool_descriptions(self, tools: Iterable[tuple[str, str]]) -> tuple[str, str]:
        """``(tool_descriptions, tool_names)``: the ``> name: description`` block and the names list."""

    @abstractmethod
    def image_history(self, image_path: str, caption: str) -> str:
        """The chat-history line that announces an uploaded image."""

    @abstractmethod
    def image_exchange(self, image_path: str, caption: str, ai: str) -> str:
        """An image upload as a chat-history entry (the announcement and the AI's ``Received.``)."""

    @abstractmethod
    def exchange(self, human: str, ai: str) -> str:
        """One earlier exchange as a chat-history entry (the published memory's ``Human:/AI:`` wording)."""

    def chat_history(self, entries: Iterable[str]) -> str:
        """The ``{chat_history}`` text: the entries (``exchange``/``image_exchange``) joined."""
        return self.history_separator.join(entries)

    @abstractmethod
    def scratchpad(self, steps: Sequence[Step]) -> str:
        """Earlier steps of the current turn, rendered as the prompt's scratchpad."""

    @abstractmethod
    def agent_prompt(
        self, tools: Iterable[tuple[str, str]], chat_history: str, user_input: str, scratchpad: str = ""
    ) -> str:
        """The full agent prompt (before a conversation template wraps it)."""

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"PromptLayout({self.name!r})"


class _TrainingLayout(PromptLayout):
    """``PROMPT_FORMAT`` of the published data generator: what the released LoRA was trained on."""

    __slots__ = ()
    name = "training"
    history_separator = "\n"

    def tool_descriptions(self, tools: Iterable[tuple[str, str]]) -> tuple[str, str]:
        """Descriptions rstripped, as the published data generator wrote them."""
        return _tool_block(tools, strip=True)

    def image_history(self, image_path: str, caption: str) -> str:
        """``Human: Provide an image named X. Description: C Understand ...\\nAI: Received.``"""
        return prompt_strings()["training_image_format"].format(image_path=image_path, image_caption=caption)

    def image_exchange(self, image_path: str, caption: str, ai: str) -> str:
        """The image line alone: it carries its own ``AI: Received.``."""
        return self.image_history(image_path, caption)

    def exchange(self, human: str, ai: str) -> str:
        """``Human: H\\nAI: A``."""
        return f"Human: {human}\nAI: {ai}"

    def scratchpad(self, steps: Sequence[Step]) -> str:
        """Each step as the data builder wrote it: the tool-call block with ``Observation: <result>\\n``."""
        return "".join(
            tool_response(s.tool, s.tool_input).removesuffix("Observation:\n") + f"Observation: {s.observation}\n"
            for s in steps
        )

    def agent_prompt(
        self, tools: Iterable[tuple[str, str]], chat_history: str, user_input: str, scratchpad: str = ""
    ) -> str:
        """``PROMPT_FORMAT`` filled in, followed by the scratchpad."""
        return render_training_prompt(tools, chat_history, user_input) + scratchpad


class _DemoLayout(PromptLayout):
    """What the published Gradio demo sent through langchain 0.0.101."""

    __slots__ = ()
    name = "demo"
    history_separator = ""

    def tool_descriptions(self, tools: Iterable[tuple[str, str]]) -> tuple[str, str]:
        """Descriptions kept as they are, as langchain did."""
        return _tool_block(tools, strip=False)

    def image_history(self, image_path: str, caption: str) -> str:
        """``\\nHuman: Provide an image named X. The description is: C. Understand ...\\n`` (the memory
        adds ``AI: Received.``)."""
        return prompt_strings()["agent_image_format"].format(image_path=image_path, image_caption=caption)

    def image_exchange(self, image_path: str, caption: str, ai: str) -> str:
        """The image line followed by ``AI: <ai>``, as the published demo's memory held it."""
        return f"{self.image_history(image_path, caption)}AI: {ai}"

    def exchange(self, human: str, ai: str) -> str:
        """``\\nHuman: H\\nAI: A``: each exchange starts on a new line."""
        return f"\nHuman: {human}\nAI: {ai}"

    def scratchpad(self, steps: Sequence[Step]) -> str:
        """langchain's ``log + "\\nObservation: " + result + "\\nThought:"`` for each step."""
        return "".join(f"{s.log}\nObservation: {s.observation}\nThought:" for s in steps)

    def agent_prompt(
        self, tools: Iterable[tuple[str, str]], chat_history: str, user_input: str, scratchpad: str = ""
    ) -> str:
        """Prefix, tool list, format instructions and suffix joined by blank lines, then filled in."""
        s = prompt_strings()
        descriptions, names = self.tool_descriptions(tools)
        instructions = s["agent_format_instructions"].format(tool_names=names, ai_prefix="AI")
        template = "\n\n".join([s["agent_prefix"], descriptions, instructions, s["agent_suffix"]])
        # langchain filled the joined template with str.format; substitute only its three fields so a
        # brace inside a tool description or the user's text cannot break rendering.
        values = {"chat_history": chat_history, "input": user_input, "agent_scratchpad": scratchpad}
        return re.sub(r"\{(chat_history|input|agent_scratchpad)\}", lambda m: values[m[1]], template)


TRAINING: PromptLayout = _TrainingLayout()
DEMO: PromptLayout = _DemoLayout()
_LAYOUTS = {layout.name: layout for layout in (TRAINING, DEMO)}
Layout = PromptLayout | Literal["training", "demo"]  # what the public functions accept


def prompt_layout(layout: Layout) -> PromptLayout:
    """The layout named ``layout`` (``"training"`` or ``"demo"``); a ``PromptLayout`` is returned as is.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    if isinstance(layout, PromptLayout):
        return layout
    found = _LAYOUTS.get(layout) if isinstance(layout, str) else None
    if found is None:
        raise ValueError(f"unknown prompt layout {layout!r}; expected one of: {', '.join(_LAYOUTS)}")
    return found


def render_tool_descriptions(tools: Iterable[tuple[str, str]], layout: Layout = TRAINING) -> tuple[str, str]:
    """Render the ``> name: description`` block and the ``tool_names`` list.

    Args:
        tools: ``(name, description)`` pairs, in prompt order.
        layout: ``TRAINING`` strips trailing whitespace from descriptions (as the published data
            generator did); ``DEMO`` keeps it (as langchain did). Names are accepted too.

    Returns:
        ``(tool_descriptions, tool_names)``.
    """
    return prompt_layout(layout).tool_descriptions(tools)


def image_history(image_path: str, caption: str, layout: Layout = TRAINING) -> str:
    """The chat-history line that announces an uploaded image (training or demo wording).

    The demo form is what the published demo appended to its memory: it carries its own leading and
    trailing newline and is followed by ``AI: Received.``, added by the caller's memory.
    """
    return prompt_layout(layout).image_history(image_path, caption)


def render_training_prompt(tools: Iterable[tuple[str, str]], chat_history: str, user_input: str) -> str:
    """``PROMPT_FORMAT`` filled in: the instruction text of every training sample (ends with a newline)."""
    descriptions, names = TRAINING.tool_descriptions(tools)
    return prompt_strings()["training_prompt"].format(
        tool_descriptions=descriptions, tool_names=names, chat_history=chat_history, input=user_input
    )


def render_agent_prompt(
    tools: Iterable[tuple[str, str]],
    chat_history: str,
    user_input: str,
    scratchpad: str = "",
    layout: Layout = TRAINING,
) -> str:
    """The full prompt the agent sends before wrapping it in a conversation template.

    Args:
        tools: ``(name, description)`` pairs of the loaded tools.
        chat_history: rendered earlier exchanges (see ``g4t.agent.Memory``).
        user_input: the new human message.
        scratchpad: earlier steps of this turn, already rendered for ``layout`` (``format_steps``).
        layout: ``TRAINING`` (what the released LoRA saw) or ``DEMO`` (langchain 0.0.101 layout), or
            its name.
    """
    return prompt_layout(layout).agent_prompt(tools, chat_history, user_input, scratchpad)


def format_steps(steps: Sequence[Step], layout: Layout = TRAINING) -> str:
    """Render earlier steps of the current turn as the scratchpad.

    ``TRAINING``: each step as the data builder wrote it -- the tool-call block with its
    ``Observation:`` line carrying the result (``Observation: <result>\\n``).
    ``DEMO``: langchain's ``log + "\\nObservation: " + result + "\\nThought:"``.
    """
    return prompt_layout(layout).scratchpad(steps)


# ---------------------------------------------------------------------------------------------
# Conversation templates (alpaca-lora schema: description, prompt_input, prompt_no_input, response_split)
# ---------------------------------------------------------------------------------------------

_TEMPLATE_KEYS = {"description", "prompt_input", "prompt_no_input", "response_split"}


@dataclass(frozen=True)
class PromptTemplate:
    """A conversation template that wraps an instruction for the model (alpaca-lora JSON schema).

    Attributes:
        name: file stem under ``templates/``, or ``chat`` (the tokenizer's own chat template).
        prompt_input: format string used when ``input`` is non-empty (``{instruction}``, ``{input}``).
        prompt_no_input: format string used otherwise (``{instruction}``).
        response_split: marker after which the model's response starts.
        description: human-readable note.
    """

    name: str
    prompt_input: str
    prompt_no_input: str
    response_split: str
    description: str = ""

    def render(self, instruction: str, input: str = "", output: str | None = None) -> str:
        """Prompt text for a sample; the label (if any) is appended directly, as alpaca-lora did."""
        if input:
            text = self.prompt_input.replace("{instruction}", instruction).replace("{input}", input)
        else:
            text = self.prompt_no_input.replace("{instruction}", instruction)
        return text + output if output else text

    def response(self, text: str) -> str:
        """The part of a decoded text after the response marker, stripped."""
        return text.split(self.response_split, 1)[-1].strip()


CHAT_TEMPLATE = "chat"  # template name meaning "the tokenizer's own chat template" (see chat_template)
_SENTINEL = "G4T_INSTRUCTION_SENTINEL_7f3a"


def available_templates() -> list[str]:
    """Template names ``load_template`` accepts: the files in ``templates/`` plus ``chat``."""
    files = {p.stem for p in TEMPLATES_DIR.glob("*.json") if p.stem != "gpt4tools_prompts"}
    return sorted(files | {CHAT_TEMPLATE})


def load_template(name: str = "gpt4tools", tokenizer=None) -> PromptTemplate:
    """Load and validate a conversation template by name (relative to the repo, never the CWD).

    Args:
        name: a file stem under ``templates/``, or ``chat`` for the tokenizer's own chat template.
        tokenizer: a Hugging Face tokenizer; needed for ``chat`` only (see ``chat_template``).

    Raises:
        ValueError: unknown name (the message lists the valid ones), a malformed file, or ``chat``
            without a tokenizer that has a chat template.
    """
    if name == CHAT_TEMPLATE:
        if tokenizer is None:
            raise ValueError("template 'chat' is the tokenizer's own chat template: it needs the model's tokenizer")
        return chat_template(tokenizer)
    return _load_template_file(name)


@cache
def _load_template_file(name: str) -> PromptTemplate:
    path = TEMPLATES_DIR / f"{name}.json"
    if name == "gpt4tools_prompts" or not path.is_file():
        raise ValueError(f"unknown prompt template {name!r}; available: {', '.join(available_templates())}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    missing = _TEMPLATE_KEYS - set(data)
    if missing:
        raise ValueError(f"{path}: missing keys {sorted(missing)}")
    if "{instruction}" not in data["prompt_no_input"] or "{input}" not in data["prompt_input"]:
        raise ValueError(f"{path}: prompt_no_input needs {{instruction}} and prompt_input needs {{input}}")
    return PromptTemplate(name=name, **{k: data[k] for k in _TEMPLATE_KEYS})


def chat_template(tokenizer) -> PromptTemplate:
    """The tokenizer's own chat template as a ``PromptTemplate`` (template name ``chat``).

    One user message holding the instruction (``instruction + "\\n\\n" + input`` when there is an
    input), followed by the generation prompt: ``apply_chat_template`` is rendered around a sentinel
    and split there. ``response_split`` is the generation prompt (the assistant header, e.g.
    ``<|im_start|>assistant\\n``). A default system message the template adds is kept. A leading BOS
    the template writes is dropped when the tokenizer adds BOS itself, so it is not doubled.

    Training appends the response and the tokenizer's EOS (``g4t.train.tokenize``): for ChatML
    models, whose EOS is ``<|im_end|>``, a trained sample ends the assistant turn natively.

    Raises:
        ValueError: the tokenizer has no chat template, or its rendering cannot be split this way.
    """
    name = getattr(tokenizer, "name_or_path", "") or tokenizer.__class__.__name__
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"template 'chat': the tokenizer of {name!r} has no chat template (tokenizer.chat_template is not set); "
            f"pick a template from templates/: {', '.join(t for t in available_templates() if t != CHAT_TEMPLATE)}"
        )
    messages = [{"role": "user", "content": _SENTINEL}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    closed = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    if prompt.count(_SENTINEL) != 1:
        raise ValueError(f"template 'chat': the chat template of {name!r} does not render the user message verbatim")
    before, after = prompt.split(_SENTINEL)
    split = prompt[len(closed) :] if prompt.startswith(closed) else ""
    if not split or not after.endswith(split) or prompt.count(split) != 1:
        raise ValueError(
            f"template 'chat': the chat template of {name!r} has no distinct generation prompt "
            f"(add_generation_prompt=True adds {split!r}), so the response cannot be located"
        )
    bos = getattr(tokenizer, "bos_token", None)
    if bos and before.startswith(bos):
        ids = tokenizer("x")["input_ids"]
        if ids and ids[0] == tokenizer.bos_token_id:  # the tokenizer adds BOS itself
            before = before[len(bos) :]
    return PromptTemplate(
        name=CHAT_TEMPLATE,
        prompt_input=before + "{instruction}\n\n{input}" + after,
        prompt_no_input=before + "{instruction}" + after,
        response_split=split,
        description=f"chat template of the tokenizer {name!r}",
    )


# Written by ``lora_finetune.py`` next to every adapter and checkpoint (``g4t.train.config.CONFIG_FILE``);
# its ``prompt_template_name`` tells inference and the demo which template the model was trained with.
TRAINING_CONFIG_FILE = "training_config.json"


def _saved_in(folder: str | None) -> str | None:
    """``prompt_template_name`` from ``<folder>/training_config.json``, if that file exists."""
    if not folder or folder.lower() == "none":
        return None
    from g4t.llm.sources import SHIPPED

    if folder.lower() in SHIPPED:  # a shipped model: its delta folder holds the file
        folder = str(SHIPPED[folder.lower()].path())
    path = Path(folder).expanduser() / TRAINING_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    name = data.get("prompt_template_name") if isinstance(data, dict) else None
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ValueError(f"{path}: field 'prompt_template_name' must be a template name, got {name!r}")
    return name


def saved_template_name(lora_model: str | None, base_model: str | None = None) -> str | None:
    """The conversation template a model was trained with, read from its ``training_config.json``.

    ``lora_finetune.py`` writes that file next to every adapter and into a ``--full_finetune``
    output folder. The adapter's file wins; without an adapter (``None``/``"none"``), or when the
    adapter has none, the base model folder's file is read, so a full fine-tune served with
    ``--lora_model none`` keeps its template. Returns None when neither has one (a hub id, a folder
    without the file, a file without ``prompt_template_name``); callers then fall back to ``gpt4tools``.

    Raises:
        ValueError: the file exists but is not valid JSON, or the key is not a string.
    """
    return _saved_in(lora_model) or _saved_in(base_model)


def template_name_for_adapter(lora_model: str | None, base_model: str | None = None) -> str | None:
    """Alias of ``saved_template_name`` (kept for existing callers)."""
    return saved_template_name(lora_model, base_model)
