"""Settings groups shared by every script: the same flag names, help and checks everywhere.

* ``ModelLoading`` -- a local transformers model: base model, LoRA, device, dtype, 8/4-bit, merge.
* ``OpenAIConnection`` -- an OpenAI-compatible server: URL, model, mode, key variable, concurrency,
  retries, timeouts.
* ``GenerationConfig`` (in ``g4t.llm.base``, re-exported here) -- decoding.

A script config holds them as settings-group fields (``model: ModelLoading = group(...)``, see
``g4t.cli``): their flags are flat (``--base_model``, ``--temperature``), and a script sets its own
defaults through the group's factory. Earlier spellings stay accepted as aliases: ``--load_8bit``,
``--base_url`` / ``--model`` / ``--mode`` (published ``inference_chatgpt.py``), ``--concurrency`` and
``--max_concurrency``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from g4t.cli import arg
from g4t.llm.base import GenerationConfig, ModelLoadError
from g4t.precision import DTYPE_HELP, DTypeName

__all__ = ["GenerationConfig", "ModelLoading", "OpenAIConnection"]

_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class ModelLoading:
    """Local model (transformers + peft)."""

    base_model: str | None = arg(
        None,
        help="Base LLM: Hugging Face id, local folder, .gguf file, smollm2 (packaged SmolLM2-135M-Instruct) or "
        "gpt4tools-smollm2 (the project's GPT4Tools fine-tune of it, shipped in models/; use --lora_model none).",
    )
    lora_model: str = arg("none", help="peft LoRA adapter (id or local folder) on the base model; 'none' for none.")
    llm_device: str = arg(
        "auto", help="Device of the local LLM: auto (cuda:0 when a GPU is visible, else cpu), cpu, cuda, cuda:N, mps."
    )
    dtype: DTypeName = arg("auto", help=DTYPE_HELP)
    load_in_8bit: bool = arg(
        False, help="Load the LLM in 8-bit with bitsandbytes (CUDA only; ~14 GB for 13B).", aliases=["--load_8bit"]
    )
    load_in_4bit: bool = arg(False, help="Load the LLM in 4-bit NF4 with bitsandbytes (CUDA only; ~8 GB for 13B).")
    merge_lora: bool = arg(False, help="Merge the LoRA into the weights (faster generation; not with 8/4-bit).")

    def __post_init__(self) -> None:
        problems = []
        if self.load_in_8bit and self.load_in_4bit:
            problems.append("choose at most one of --load_in_8bit and --load_in_4bit")
        if not _DEVICE.fullmatch(self.llm_device):
            problems.append(f"--llm_device: use auto, cpu, cuda, cuda:N or mps, got {self.llm_device!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def lora(self) -> str | None:
        """The adapter, or None for ``--lora_model none``."""
        return None if not self.lora_model or self.lora_model.lower() == "none" else self.lora_model

    def device(self) -> str:
        """``--llm_device`` with ``auto`` resolved (``cuda:0`` when a GPU is visible, else ``cpu``)."""
        from g4t.precision import resolve_device

        return resolve_device(self.llm_device)

    def load_backend(self, batch_size: int = 8):
        """An ``HFBackend`` with this model.

        Raises:
            ValueError: no ``--base_model``.
            ModelLoadError: the model or adapter cannot be loaded (the message says what to do instead).
        """
        from g4t.llm.hf import HFBackend

        if not self.base_model:
            raise ValueError("--base_model is required for a local model (--backend hf)")
        _check_local("base model", self.base_model)
        _check_local("LoRA adapter", self.lora)
        return HFBackend.from_pretrained(
            self.base_model,
            self.lora,
            batch_size=batch_size,
            device=self.device(),
            dtype=self.dtype,
            load_in_8bit=self.load_in_8bit,
            load_in_4bit=self.load_in_4bit,
            merge_lora=self.merge_lora,
        )


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


@dataclass
class OpenAIConnection:
    """OpenAI-compatible server (OpenAI, vLLM, SGLang, llama.cpp, Ollama)."""

    openai_base_url: str | None = arg(
        None,
        help="Server root ending in /v1, e.g. http://localhost:8000/v1 (vLLM, llama.cpp, Ollama); default: OpenAI.",
        aliases=["--base_url"],
    )
    openai_model: str | None = arg(
        None,
        help="Model name on the server (gpt-4o-mini, the vLLM served model or LoRA name).",
        aliases=["--model"],
    )
    openai_mode: Literal["chat", "completions"] = arg(
        "chat",
        help="chat: the prompt as one message to /v1/chat/completions; completions: the raw prompt to "
        "/v1/completions (for a served GPT4Tools LoRA: exactly its training layout).",
        aliases=["--mode"],
    )
    chat_role: Literal["system", "user"] = arg("user", help="Role of the chat message (published baseline: system).")
    api_key_env: str = arg(
        "OPENAI_API_KEY", help="Environment variable holding the API key, read at request time (local servers: none)."
    )
    max_concurrency: int = arg(8, help="Requests in flight at once.", aliases=["--concurrency"])
    max_retries: int = arg(5, help="Retries per prompt on 429/5xx/timeouts/connection errors/malformed bodies.")
    timeout: float = arg(60.0, help="Seconds per request.")
    backoff_base: float = arg(1.0, help="First retry delay in seconds (doubles per retry, full jitter).")
    backoff_max: float = arg(30.0, help="Longest single retry delay in seconds (also caps Retry-After).")
    protocol: Literal["react", "tools"] = arg(
        "react",
        help="react: the GPT4Tools ReAct text protocol; tools: native function calling (the tools as JSON-Schema "
        "'tools', the model's 'tool_calls' run or scored; chat mode; vLLM needs --enable-auto-tool-choice). "
        "See docs/protocol_tools.md.",
    )

    def __post_init__(self) -> None:
        problems = []
        if self.openai_base_url and not self.openai_model:
            problems.append("--openai_base_url needs --openai_model (the model name the server serves)")
        if self.max_concurrency < 1:
            problems.append(f"--max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            problems.append(f"--max_retries must be >= 0, got {self.max_retries}")
        if self.timeout <= 0:
            problems.append(f"--timeout must be > 0, got {self.timeout}")
        if self.protocol == "tools" and self.openai_mode != "chat":
            problems.append("--protocol tools needs --openai_mode chat (tool calls are a chat API feature)")
        if self.backoff_base < 0 or self.backoff_max < 0:
            problems.append("--backoff_base and --backoff_max must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def backend(self, **extra):
        """An ``OpenAIBackend`` for this server (``ToolCallingBackend`` with ``--protocol tools``; no request is
        made here). ``extra``: further ``OpenAIBackend`` arguments of the calling script (e.g. ``max_tokens``)."""
        from g4t.llm.openai_backend import OpenAIBackend
        from g4t.llm.tool_calls import ToolCallingBackend

        if not self.openai_model:
            raise ValueError("--openai_model is required for an OpenAI-compatible server (--backend openai)")
        return (ToolCallingBackend if self.protocol == "tools" else OpenAIBackend)(
            self.openai_model,
            base_url=self.openai_base_url,
            mode=self.openai_mode,
            max_concurrency=self.max_concurrency,
            max_retries=self.max_retries,
            timeout=self.timeout,
            chat_role=self.chat_role,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            api_key_env=self.api_key_env,
            **extra,
        )
