"""Configuration of the Gradio demo (``gpt4tools.py``) and the pieces it is built from.

``DemoConfig`` holds every flag of the published demo (``--base_model --lora_model --llm_device
--load --server_name --server_port --share``, with the published spellings as aliases) plus the
OpenAI-compatible backend, quantisation, prompt and generation options. ``build_agent`` turns a
config into an ``Agent``: it loads the LLM (which may raise ``ModelLoadError`` with advice), the
toolbox (tool weights load lazily, on first use) and picks the prompt template and layout.

No gradio here: importing this module is cheap, so ``gpt4tools.py --help`` answers at once.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from g4t.cli import arg, parse_args
from g4t.llm.base import Backend, GenerationConfig, ModelLoadError
from g4t.precision import DTYPE_HELP, DTypeName
from g4t.prompts import CHAT_TEMPLATE, Layout, PromptTemplate, available_templates, load_template, saved_template_name

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_LOAD",
    "DEFAULT_LORA_MODEL",
    "DemoConfig",
    "build_agent",
    "build_backend",
    "parse_demo_args",
    "resolve_layout",
    "resolve_template",
]

DEFAULT_BASE_MODEL = "lmsys/vicuna-13b-v1.1"  # the base the released LoRA was trained on
DEFAULT_LORA_MODEL = "stevengrove/gpt4tools-vicuna-13b-lora"  # the released GPT4Tools adapter
DEFAULT_LOAD = "ImageCaptioning_cpu,Image2Canny_cpu"  # two tools that run well on a CPU
FALLBACK_TEMPLATE = "gpt4tools"  # the alpaca-style template of the released LoRA
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DemoConfig:
    """Flags of ``gpt4tools.py`` (generation settings live in ``gen``; see ``GenerationConfig``)."""

    # ---- the LLM -----------------------------------------------------------------------------
    base_model: str = arg(
        DEFAULT_BASE_MODEL,
        "Base LLM: Hugging Face id, local directory, .gguf file, or smollm2 (packaged SmolLM2-135M-Instruct).",
    )
    lora_model: str = arg(
        DEFAULT_LORA_MODEL, "peft LoRA adapter (id or local directory) attached to the base model; 'none' for none."
    )
    llm_device: str = arg(
        "auto", "Device of the local LLM: auto (cuda:0 when a GPU is visible, else cpu), cpu, cuda, cuda:N, mps."
    )
    dtype: DTypeName = arg(
        "auto",
        DTYPE_HELP,
    )
    load_in_8bit: bool = arg(False, "Load the LLM in 8-bit with bitsandbytes (CUDA only; ~14 GB for 13B).")
    load_in_4bit: bool = arg(False, "Load the LLM in 4-bit NF4 with bitsandbytes (CUDA only; ~8 GB for 13B).")
    merge_lora: bool = arg(False, "Merge the LoRA into the weights (faster generation; not with 8/4-bit).")
    # ---- or an OpenAI-compatible server instead of a local model -----------------------------
    openai_base_url: str | None = arg(
        None,
        "Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama: e.g. http://localhost:8000/v1). "
        "Setting this or --openai_model uses the server instead of a local model; the key is read from OPENAI_API_KEY.",
    )
    openai_model: str | None = arg(
        None, "Model name on the OpenAI-compatible server (e.g. gpt-4o-mini, the vLLM served model or LoRA name)."
    )
    openai_mode: Literal["chat", "completions"] = arg(
        "chat", "chat: send the prompt as one user message; completions: raw prompt (for a served GPT4Tools LoRA)."
    )
    # ---- prompt ------------------------------------------------------------------------------
    template: str = arg(
        "auto",
        "Conversation template wrapping the prompt: auto (prompt_template_name from the training_config.json of the "
        f"adapter, else of the base model folder, else {FALLBACK_TEMPLATE}; none in OpenAI chat mode), none, chat "
        "(the local model's own chat template), or one of: "
        f"{', '.join(t for t in available_templates() if t != CHAT_TEMPLATE)}.",
    )
    prompt_layout: Literal["auto", "training", "demo"] = arg(
        "auto",
        "Agent prompt layout: training (what the released LoRA learned; default for local models and completions "
        "servers) or demo (the published langchain prompt; default in OpenAI chat mode).",
    )
    # ---- tools -------------------------------------------------------------------------------
    load: str = arg(
        DEFAULT_LOAD,
        'Tool classes and devices, "Class_device,...", e.g. "Text2Box_cuda:0,Segmenting_cuda:0,ImageCaptioning_cpu".',
    )
    tool_models: str = arg(
        "", 'Model id or local path per tool class, "Class=path,...", e.g. "ImageCaptioning=/models/blip".'
    )
    tool_seed: int | None = arg(
        None, "Seed for every image-generation call (reproducible images); default: a fresh seed per call."
    )
    offload_tools: bool = arg(
        False, "Keep image-generation weights on the CPU between calls; move them to the tool's device only to run."
    )
    max_steps: int = arg(5, "Tool calls per user message before the agent gives up (published: 15).")
    keep_last_n: int = arg(
        3,
        "Exchanges of chat history kept in the prompt (an image upload counts as one).",
        aliases=["--keep_last_n_paragraphs", "--keep-last-n-paragraphs"],
    )
    image_dir: str = arg(
        "demo_outputs", "Output root: every browser session gets its own <image_dir>/<session id>/image/ folder."
    )
    keep_session_files: bool = arg(
        False,
        "Keep a browser session's folder after the session ends; otherwise it is deleted an hour after its tab closes.",
    )
    # ---- server ------------------------------------------------------------------------------
    server_name: str = arg("127.0.0.1", "Address to serve on; 0.0.0.0 to accept remote users.")
    server_port: int = arg(8888, "Port to serve on.")
    share: bool = arg(False, "Create a public gradio.live link (needs internet access).")
    concurrency_limit: int = arg(
        1, "Requests processed at once (one model answers one at a time; raise it for an OpenAI-compatible server)."
    )
    gen: GenerationConfig = dataclasses.field(default_factory=GenerationConfig, init=False)

    def __post_init__(self) -> None:
        from g4t.tools.registry import parse_load, parse_tool_models

        problems = []
        for name, parse in (("load", parse_load), ("tool_models", parse_tool_models)):
            try:
                parse(getattr(self, name))
            except ValueError as e:
                problems.append(str(e))
        if self.template not in ("auto", "none", *available_templates()):
            problems.append(
                f"--template: unknown {self.template!r}; use auto, none or {', '.join(available_templates())}"
            )
        if self.template == CHAT_TEMPLATE and self.use_openai and self.openai_mode == "completions":
            problems.append(
                "--template chat needs the model's tokenizer; in OpenAI completions mode use --openai_mode chat "
                "(the server applies the chat template) or a template from templates/"
            )
        if self.openai_base_url and not self.openai_model:
            problems.append("--openai_base_url needs --openai_model (the model name the server serves)")
        if self.load_in_8bit and self.load_in_4bit:
            problems.append("choose at most one of --load_in_8bit and --load_in_4bit")
        if self.max_steps < 1:
            problems.append(f"--max_steps must be >= 1, got {self.max_steps}")
        if self.keep_last_n < 0:
            problems.append(f"--keep_last_n must be >= 0, got {self.keep_last_n}")
        if self.concurrency_limit < 1:
            problems.append(f"--concurrency_limit must be >= 1, got {self.concurrency_limit}")
        if not 0 <= self.server_port <= 65535:
            problems.append(f"--server_port must be in 0..65535, got {self.server_port}")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.llm_device):
            problems.append(f"--llm_device: use auto, cpu, cuda, cuda:N or mps, got {self.llm_device!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def use_openai(self) -> bool:
        """True when the LLM is an OpenAI-compatible server rather than a local model."""
        return bool(self.openai_base_url or self.openai_model)


def _attribute_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of a Google-style class docstring."""
    docs: dict[str, str] = {}
    current = None
    in_section = False
    for line in inspect.cleandoc(cls.__doc__ or "").splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line.startswith(" "):  # next section
            break
        m = re.match(r"^ {4}(\w+)\s*:\s*(.*)$", line)
        if m:
            current = m[1]
            docs[current] = m[2].strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _documented(cls: type) -> type:
    """A subclass of dataclass ``cls`` whose fields carry CLI help taken from its docstring."""
    docs = _attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    fields = [
        (f.name, hints[f.name], dataclasses.field(default=f.default, metadata={"help": docs.get(f.name, "")}))
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, fields, bases=(cls,))


def parse_demo_args(args: Sequence[str] | None = None) -> DemoConfig:
    """Parse ``gpt4tools.py`` flags (``sys.argv[1:]`` by default) into a ``DemoConfig`` with its ``gen``."""
    cfg, gen = parse_args(
        DemoConfig,
        _documented(GenerationConfig),
        args=args,
        description="GPT4Tools web demo: chat with an LLM that uses visual tools on your images.",
    )
    cfg.gen = GenerationConfig(**dataclasses.asdict(gen))
    return cfg


def resolve_template(cfg: DemoConfig, tokenizer=None) -> PromptTemplate | None:
    """The conversation template for ``cfg.template`` (``None`` = send the bare prompt).

    ``auto`` reads ``prompt_template_name`` from ``training_config.json`` (written by our trainer next
    to every adapter and into a full fine-tune's folder): the adapter's, else the base model folder's
    (``saved_template_name``); it falls back to ``gpt4tools`` (the released LoRA's template), and is
    ``none`` in OpenAI chat mode, where the server applies the model's own chat template (so ``chat``
    is ``none`` there too). ``chat`` renders the local model's ``tokenizer`` chat template.
    """
    name = cfg.template
    if cfg.use_openai and cfg.openai_mode == "chat" and name in ("auto", CHAT_TEMPLATE):
        return None
    if name == "auto":
        name = FALLBACK_TEMPLATE
        if not cfg.use_openai:
            try:
                name = saved_template_name(cfg.lora_model, cfg.base_model) or name
            except ValueError as e:
                logger.warning("%s; using the %s template", e, FALLBACK_TEMPLATE)
        if name not in available_templates():
            logger.warning("unknown saved template %r; using the %s template", name, FALLBACK_TEMPLATE)
            name = FALLBACK_TEMPLATE
    return None if name == "none" else load_template(name, tokenizer=tokenizer)


def resolve_layout(cfg: DemoConfig) -> Layout:
    """``training`` for local models and completions servers, ``demo`` for chat APIs (unless set).

    The released LoRA was fine-tuned on the training layout (one blank line after the format block,
    the ``Description:`` image line, ...); the demo layout is what the published app sent through
    langchain and what a general chat model handles as well as any other.
    """
    if cfg.prompt_layout != "auto":
        return cfg.prompt_layout
    return "demo" if cfg.use_openai and cfg.openai_mode == "chat" else "training"


def _llm_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _looks_local(name: str) -> bool:
    """A model name that can only be a local path (hub ids are ``name`` or ``org/name``)."""
    return name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1 or ":" in name[1:3]


def _check_local(what: str, name: str | None) -> None:
    from g4t.llm.sources import PACKAGED

    if name and name.lower() not in PACKAGED and _looks_local(name) and not Path(name).expanduser().exists():
        raise ModelLoadError(
            f"The {what} {name!r} does not exist. Pass the directory that holds the downloaded model "
            f"(e.g. --base_model /models/vicuna-13b-v1.1 --lora_model /models/gpt4tools-lora), a Hugging Face id, "
            f"or use an OpenAI-compatible server instead (--openai_base_url http://localhost:8000/v1 --openai_model NAME)."
        )


def build_backend(cfg: DemoConfig) -> Backend:
    """The LLM backend of ``cfg``: an OpenAI-compatible client or a local transformers model.

    Raises:
        ModelLoadError: the local model or adapter cannot be loaded (the message says what to do).
    """
    if cfg.use_openai:
        from g4t.llm.openai_backend import OpenAIBackend

        # a person is waiting: retry less than a batch job would (the backend's default is 5)
        return OpenAIBackend(cfg.openai_model, base_url=cfg.openai_base_url, mode=cfg.openai_mode, max_retries=2)
    from g4t.llm.hf import HFBackend

    lora = None if cfg.lora_model.lower() == "none" else cfg.lora_model
    _check_local("base model", cfg.base_model)
    _check_local("LoRA adapter", lora)
    return HFBackend.from_pretrained(
        cfg.base_model,
        lora,
        batch_size=1,
        device=_llm_device(cfg.llm_device),
        dtype=cfg.dtype,
        load_in_8bit=cfg.load_in_8bit,
        load_in_4bit=cfg.load_in_4bit,
        merge_lora=cfg.merge_lora,
    )


def build_agent(cfg: DemoConfig, backend: Backend | None = None):
    """An ``Agent`` for ``cfg``: backend (built unless given), toolbox, template, layout, limits."""
    from g4t.agent import Agent
    from g4t.tools.diffusion import DiffusionModel
    from g4t.tools.registry import Toolbox, parse_tool_models

    toolbox = Toolbox(cfg.load, parse_tool_models(cfg.tool_models))
    for inst in toolbox.instances.values():
        if isinstance(inst, DiffusionModel):
            if cfg.tool_seed is not None:
                inst.seed = cfg.tool_seed
            if cfg.offload_tools:
                inst.offload = True
    backend = backend if backend is not None else build_backend(cfg)
    return Agent(
        backend,
        toolbox,
        template=resolve_template(cfg, getattr(backend, "tokenizer", None)),
        layout=resolve_layout(cfg),
        max_steps=cfg.max_steps,
        gen=cfg.gen,
    )
