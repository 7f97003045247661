"""``inference_chatgpt.py``: the one batch runner (``g4t.inference``) with an OpenAI-compatible server
by default, then evaluation.

Modes:

* ``--openai_mode chat`` (published ChatGPT baseline): the message is ``instruction + "\\n" + "Thought: Do
  I need to use a tool? "`` (``--template none``, the default in chat mode); a reply that does not start
  with ``Thought:`` gets that prefix back, so the evaluator sees the whole thought.
* ``--openai_mode completions`` with a training template (``--template gpt4tools``): the raw prompt of
  the trained layout goes to ``/v1/completions`` -- a GPT4Tools LoRA served by vLLM or SGLang is
  evaluated exactly as trained.

Every flag of ``inference.py`` works here and the other way round; only these defaults differ:
``--backend openai``, ``--openai_model gpt-4o-mini`` and ``--evaluate True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from g4t.cli import arg, group
from g4t.inference import InferenceConfig
from g4t.settings import OpenAIConnection

__all__ = ["ApiInferenceConfig"]


@dataclass
class ApiInferenceConfig(InferenceConfig):
    """``inference_chatgpt.py`` (published: ``--ann_path --save_path --save_name --model``)."""

    PROG: ClassVar[str] = "inference_chatgpt.py"

    backend: Literal["hf", "openai"] = arg(
        "openai", help="openai: an OpenAI-compatible server; hf: a local model (--base_model, --lora_model ...)."
    )
    evaluate: bool = arg(True, help="Evaluate the chunk when done (needs GT 'output' fields; one chunk only).")
    openai: OpenAIConnection = group(lambda: OpenAIConnection(openai_model="gpt-4o-mini"))
