"""LLM backends behind one contract: ``generate(prompts, stop, gen) -> list[str]``.

Implementations: ``HFBackend`` (local transformers + optional peft LoRA, 8/4-bit), ``OpenAIBackend``
(any OpenAI-compatible chat/completions server), ``ScriptedBackend`` (canned replies, for tests).
Heavy libraries are imported by the implementing modules only.
"""

from g4t.llm.base import Backend, GenerationConfig, LLMError, ModelLoadError, truncate_at_stop
from g4t.llm.scripted import ScriptedBackend

__all__ = ["Backend", "GenerationConfig", "LLMError", "ModelLoadError", "ScriptedBackend", "truncate_at_stop"]
