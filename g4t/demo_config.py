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
import logging
from collections.abc import Sequence
from typing import Literal

from g4t.cli import arg, group, parse_args
from g4t.llm.base import Backend, GenerationConfig
from g4t.prompts import (
    CHAT_TEMPLATE,
    DEMO,
    TRAINING,
    PromptLayout,
    PromptTemplate,
    available_templates,
    load_template,
    prompt_layout,
)
from g4t.react import DEFAULT_TEMPLATE, RAW_TEMPLATE, template_name
from g4t.settings import ModelLoading, OpenAIConnection

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_LOAD",
    "DEFAULT_LORA_MODEL",
    "OFFLINE_TOOLS",
    "SHIPPED_MODEL",
    "DemoConfig",
    "build_agent",
    "build_backend",
    "build_toolbox",
    "parse_demo_args",
    "resolve_auto",
    "resolve_layout",
    "resolve_template",
]

DEFAULT_BASE_MODEL = "lmsys/vicuna-13b-v1.1"  # the base the released LoRA was trained on
DEFAULT_LORA_MODEL = "stevengrove/gpt4tools-vicuna-13b-lora"  # the released GPT4Tools adapter
SHIPPED_MODEL = "gpt4tools-smollm2"  # the project's own fine-tune, committed in models/ (g4t.llm.sources)
AUTO = "auto"
# Tools that run on a CPU with no download (OCR needs Debian's tesseract-ocr), and the captioner that
# joins them when its weights can be fetched or are cached.
OFFLINE_TOOLS = ("Image2Canny_cpu", "CropImage_cpu", "TextDetection_cpu")
DEFAULT_LOAD = AUTO
logger = logging.getLogger(__name__)


@dataclasses.dataclass
class DemoConfig:
    """Flags of ``gpt4tools.py``: the demo's own, plus the shared settings groups ``model`` (local LLM),
    ``openai`` (an OpenAI-compatible server, used when ``--openai_model`` or ``--openai_base_url`` is set)
    and ``gen`` (decoding); see ``g4t.settings``."""

    # ---- the LLM: a local model (--base_model ...) or an OpenAI-compatible server (--openai_model ...) --
    model: ModelLoading = group(lambda: ModelLoading(base_model=AUTO, lora_model=AUTO))
    openai: OpenAIConnection = group(lambda: OpenAIConnection(max_retries=2))  # a person waits: retry less
    gen: GenerationConfig = group(lambda: GenerationConfig(constrain_tools=True))  # local models only
    # ---- prompt ------------------------------------------------------------------------------
    template: str = arg(
        "auto",
        "Conversation template wrapping the prompt: auto (prompt_template_name from the training_config.json of the "
        f"adapter, else of the base model folder, else {DEFAULT_TEMPLATE}; none in OpenAI chat mode), none, chat "
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
        'Tool classes and devices, "Class_device,...", e.g. "Text2Box_cuda:0,Segmenting_cuda:0,ImageCaptioning_cpu"; '
        f"auto: the tools that run here without a download ({','.join(OFFLINE_TOOLS)}), plus ImageCaptioning "
        "when the Hugging Face Hub is reachable or its weights are cached.",
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
    max_image_pixels: int | None = arg(
        None,
        "Largest image accepted (width x height, checked before decoding) for uploads and tool inputs; "
        "default: the G4T_MAX_IMAGE_PIXELS environment variable, else 25000000.",
    )
    turn_timeout: float = arg(
        300.0,
        "Seconds one message may take (upload, model and tools) before it is stopped with a readable answer; 0 = no "
        "limit. The model stops at its next token; a tool already running finishes in the background.",
    )
    keep_session_files: bool = arg(
        False,
        "Keep a browser session's folder after the session ends; otherwise it is deleted an hour after its tab closes.",
    )
    # ---- MCP server: the --load tools for any MCP client, no LLM loaded (docs/mcp.md) ------------
    mcp: bool = arg(
        False, "Serve the --load tools over the Model Context Protocol instead of the web demo (no LLM is loaded)."
    )
    mcp_transport: Literal["stdio", "streamable-http"] = arg(
        "stdio", "MCP transport: stdio (the client starts this process) or streamable-http (http://HOST:PORT/mcp)."
    )
    mcp_host: str = arg("127.0.0.1", "Address of the streamable-HTTP MCP server.")
    mcp_port: int = arg(8765, "Port of the streamable-HTTP MCP server.")
    # ---- server ------------------------------------------------------------------------------
    server_name: str = arg("127.0.0.1", "Address to serve on; 0.0.0.0 to accept remote users (set --auth too).")
    auth: str | None = arg(
        None,
        "Sign-in for the page, its HTTP API and files: a file with one user:password per line (or the environment "
        "variable G4T_AUTH=user:password,...). Never a password on the command line.",
    )
    mcp_token_file: str | None = arg(
        None,
        "Streamable-HTTP MCP server: a file whose first line is the bearer token every request must carry (or the "
        "environment variable G4T_MCP_TOKEN).",
    )
    server_port: int = arg(8888, "Port to serve on.")
    share: bool = arg(False, "Create a public gradio.live link (needs internet access).")
    concurrency_limit: int = arg(
        1, "Requests processed at once (one model answers one at a time; raise it for an OpenAI-compatible server)."
    )
    max_queue: int = arg(
        20,
        "Turns waiting for their go at most (the page shows each person their place); one more is refused at once "
        "with 'Queue is full! Please try again.' instead of waiting without end.",
    )

    def __post_init__(self) -> None:
        from g4t.tools.registry import parse_load, parse_tool_models

        problems = []
        for name, parse in (("load", parse_load), ("tool_models", parse_tool_models)):
            if getattr(self, name) == AUTO:
                continue
            try:
                parse(getattr(self, name))
            except ValueError as e:
                problems.append(str(e))
        if self.template not in ("auto", "none", *available_templates()):
            problems.append(
                f"--template: unknown {self.template!r}; use auto, none or {', '.join(available_templates())}"
            )
        if self.template == CHAT_TEMPLATE and self.use_openai and self.openai.openai_mode == "completions":
            problems.append(
                "--template chat needs the model's tokenizer; in OpenAI completions mode use --openai_mode chat "
                "(the server applies the chat template) or a template from templates/"
            )
        if self.openai.protocol == "tools" and not self.use_openai:
            problems.append(
                "--protocol tools needs an OpenAI-compatible chat server (--openai_model, --openai_base_url)"
            )
        if self.max_steps < 1:
            problems.append(f"--max_steps must be >= 1, got {self.max_steps}")
        if self.keep_last_n < 0:
            problems.append(f"--keep_last_n must be >= 0, got {self.keep_last_n}")
        if self.max_image_pixels is not None and self.max_image_pixels < 1:
            problems.append(f"--max_image_pixels must be >= 1, got {self.max_image_pixels}")
        if self.turn_timeout < 0:
            problems.append(f"--turn_timeout must be >= 0 seconds (0 = no limit), got {self.turn_timeout}")
        if self.max_queue < 1:
            problems.append(f"--max_queue must be >= 1, got {self.max_queue}")
        if self.concurrency_limit < 1:
            problems.append(f"--concurrency_limit must be >= 1, got {self.concurrency_limit}")
        if not 0 <= self.server_port <= 65535:
            problems.append(f"--server_port must be in 0..65535, got {self.server_port}")
        if not 0 <= self.mcp_port <= 65535:
            problems.append(f"--mcp_port must be in 0..65535, got {self.mcp_port}")
        if problems:
            raise ValueError("; ".join(problems))

        if self.use_openai:  # a server cannot constrain decoding (the demo's default is for local models)
            self.gen.constrain_tools = False

    @property
    def use_openai(self) -> bool:
        """True when the LLM is an OpenAI-compatible server rather than a local model."""
        return bool(self.openai.openai_base_url or self.openai.openai_model)


def parse_demo_args(args: Sequence[str] | None = None) -> DemoConfig:
    """Parse ``gpt4tools.py`` flags (``sys.argv[1:]`` by default) into a ``DemoConfig``."""
    (cfg,) = parse_args(
        DemoConfig,
        args=args,
        description="GPT4Tools web demo: chat with an LLM that uses visual tools on your images. By default "
        f"(--base_model auto) it runs the published {DEFAULT_BASE_MODEL} + {DEFAULT_LORA_MODEL} where a CUDA GPU is "
        f"visible and those weights are cached or the Hub answers, else the shipped {SHIPPED_MODEL} on the CPU.",
    )
    return cfg


def _published_weights_reachable() -> tuple[bool, str]:
    """Whether the published Vicuna-13B + GPT4Tools LoRA can be loaded here: cached, or the Hub answers."""
    from g4t.llm.sources import hub_cached, hub_reachable

    if hub_cached(DEFAULT_BASE_MODEL, "config.json") and hub_cached(DEFAULT_LORA_MODEL, "adapter_config.json"):
        return True, "the published weights are cached"
    if hub_reachable():
        return True, "the Hugging Face Hub is reachable"
    return False, "the Hugging Face Hub is out of reach and the published weights are not cached"


def resolve_auto(cfg: DemoConfig) -> DemoConfig:
    """Fill in ``--base_model auto`` / ``--lora_model auto`` / ``--load auto`` (the defaults) for this machine,
    logging what was chosen and why; explicit values are kept. Idempotent.

    * Model: the published Vicuna-13B v1.1 + GPT4Tools LoRA when a CUDA GPU is visible and its weights are
      cached or the Hub is reachable (what the paper measured, where it can run); else the project's own
      ``gpt4tools-smollm2`` (committed in the repository, runs on any CPU with no download). An explicit
      ``--base_model`` with ``--lora_model auto`` gets the published LoRA on the published base, else none.
    * Tools: ``OFFLINE_TOOLS`` (TextDetection only where ``tesseract`` is installed), plus ImageCaptioning
      (on ``cuda:0`` when there is a GPU) when its weights are cached or the Hub is reachable.
    """
    import shutil

    model = cfg.model
    why = None
    if not cfg.use_openai and model.base_model == AUTO:
        import torch

        if not torch.cuda.is_available():
            model.base_model, why = SHIPPED_MODEL, "no CUDA GPU is visible (Vicuna-13B needs one)"
        else:
            ok, why = _published_weights_reachable()
            model.base_model = DEFAULT_BASE_MODEL if ok else SHIPPED_MODEL
    if model.lora_model == AUTO:
        model.lora_model = DEFAULT_LORA_MODEL if model.base_model == DEFAULT_BASE_MODEL else "none"
    if why:
        logger.info(
            "model: %s%s (%s; --base_model / --lora_model choose another)",
            model.base_model,
            f" + {model.lora_model}" if model.lora else "",
            why,
        )
    if cfg.load == AUTO:
        from g4t.llm.sources import hub_cached, hub_reachable

        tools = [t for t in OFFLINE_TOOLS if t != "TextDetection_cpu" or shutil.which("tesseract")]
        notes = [] if len(tools) == len(OFFLINE_TOOLS) else ["Text Detection left out: tesseract is not installed"]
        captioner = "Salesforce/blip-image-captioning-base"
        if hub_cached(captioner, "config.json") or hub_reachable():
            import torch

            tools.insert(0, f"ImageCaptioning_{'cuda:0' if torch.cuda.is_available() else 'cpu'}")
        else:
            notes.append("Image Captioning left out: its weights are not cached and the Hub is out of reach")
        cfg.load = ",".join(tools)
        logger.info("tools: %s (--load auto%s; --load chooses others)", cfg.load, "".join(f"; {n}" for n in notes))
    return cfg


def resolve_template(cfg: DemoConfig, tokenizer=None) -> PromptTemplate | None:
    """The conversation template for ``cfg.template`` (``None`` = send the bare prompt).

    ``auto`` reads ``prompt_template_name`` from ``training_config.json`` (written by our trainer next
    to every adapter and into a full fine-tune's folder): the adapter's, else the base model folder's
    (``saved_template_name``); it falls back to ``gpt4tools`` (the released LoRA's template), and is
    ``none`` in OpenAI chat mode, where the server applies the model's own chat template (so ``chat``
    is ``none`` there too). ``chat`` renders the local model's ``tokenizer`` chat template.
    """
    if cfg.use_openai and cfg.openai.openai_mode == "chat" and cfg.template in ("auto", CHAT_TEMPLATE):
        return None
    local = not cfg.use_openai
    name = template_name(cfg.template, cfg.model.lora_model if local else None, cfg.model.base_model if local else None,
                         strict=cfg.template != "auto")  # fmt: skip
    return None if name == RAW_TEMPLATE else load_template(name, tokenizer=tokenizer)


def resolve_layout(cfg: DemoConfig) -> PromptLayout:
    """``TRAINING`` for local models and completions servers, ``DEMO`` for chat APIs (unless
    ``--prompt_layout`` names one).

    The released LoRA was fine-tuned on the training layout (one blank line after the format block,
    the ``Description:`` image line, ...); the demo layout is what the published app sent through
    langchain and what a general chat model handles as well as any other.
    """
    if cfg.prompt_layout != "auto":
        return prompt_layout(cfg.prompt_layout)
    return DEMO if cfg.use_openai and cfg.openai.openai_mode == "chat" else TRAINING


def build_backend(cfg: DemoConfig) -> Backend:
    """The LLM backend of ``cfg``: an OpenAI-compatible client or a local transformers model.

    Raises:
        ModelLoadError: the local model or adapter cannot be loaded (the message says what to do).
    """
    resolve_auto(cfg)
    return cfg.openai.backend() if cfg.use_openai else cfg.model.load_backend(batch_size=1)


def build_toolbox(cfg: DemoConfig):
    """The ``Toolbox`` of ``cfg`` (``--load``, ``--tool_models``), with the image-generation options
    (``--tool_seed``, ``--offload_tools``) and the image pixel limit (``--max_image_pixels``) applied.
    Shared by the web demo and the MCP server."""
    from g4t.tools.diffusion import DiffusionModel
    from g4t.tools.images import set_max_pixels
    from g4t.tools.registry import Toolbox, parse_tool_models

    resolve_auto(cfg)
    if cfg.max_image_pixels is not None:
        set_max_pixels(cfg.max_image_pixels)  # every conversation's uploads and tool inputs
    toolbox = Toolbox(cfg.load, parse_tool_models(cfg.tool_models))
    for inst in toolbox.instances.values():
        if isinstance(inst, DiffusionModel):
            if cfg.tool_seed is not None:
                inst.seed = cfg.tool_seed
            if cfg.offload_tools:
                inst.offload = True
    return toolbox


def build_agent(cfg: DemoConfig, backend: Backend | None = None):
    """An ``Agent`` for ``cfg``: backend (built unless given), toolbox, template, layout, limits."""
    from g4t.agent import Agent

    resolve_auto(cfg)
    toolbox = build_toolbox(cfg)
    backend = backend if backend is not None else build_backend(cfg)
    if cfg.use_openai and cfg.openai.protocol == "tools":  # native function calling (docs/protocol_tools.md)
        from g4t.function_calling import ToolCallingAgent

        return ToolCallingAgent(backend, toolbox, max_steps=cfg.max_steps, gen=cfg.gen)
    return Agent(
        backend,
        toolbox,
        template=resolve_template(cfg, getattr(backend, "tokenizer", None)),
        layout=resolve_layout(cfg),
        max_steps=cfg.max_steps,
        gen=cfg.gen,
    )
