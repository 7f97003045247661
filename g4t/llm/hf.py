"""Local transformers causal LM (+ optional peft LoRA, 8-bit / 4-bit) with batched generation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from g4t.llm.base import GenerationConfig, ModelLoadError, truncate_at_stop

__all__ = ["HFBackend", "load_model", "resolve_dtype"]

logger = logging.getLogger(__name__)
DType = Literal["auto", "float32", "float16", "bfloat16"]


def resolve_dtype(dtype: DType, device: str):
    """``auto`` = bf16 on CUDA when supported, else fp16 on CUDA, fp32 elsewhere."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _load_error(what: str, name: str, err: Exception) -> ModelLoadError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
    return ModelLoadError(
        f"Could not load the {what} {name!r}: {reason}\n"
        f"If this machine cannot reach the Hugging Face Hub, download the model elsewhere and pass its local "
        f"directory (e.g. --base_model /models/vicuna-13b-v1.1 --lora_model /models/gpt4tools-lora), or run the "
        f"agent on an OpenAI-compatible server instead (--openai_base_url http://localhost:8000/v1 --openai_model NAME)."
    )


def load_model(
    base_model: str,
    lora_model: str | None = None,
    device: str = "cpu",
    dtype: DType = "auto",
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    merge_lora: bool = False,
):
    """Load a causal LM and its tokenizer, optionally with a peft LoRA attached or merged.

    Args:
        base_model: Hugging Face id or local path of the base model.
        lora_model: peft adapter id or path; None (or "none") for the base model alone.
        device: torch device for the whole model (``cpu``, ``cuda``, ``cuda:1``...).
        dtype: weight dtype; ``auto`` picks bf16/fp16 on CUDA and fp32 on CPU.
        load_in_8bit: quantise linear layers to int8 with bitsandbytes.
        load_in_4bit: quantise to 4-bit NF4 with bitsandbytes (QLoRA-style).
        merge_lora: merge the adapter into the weights (faster generation; not with 8/4-bit).

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left.

    Raises:
        ModelLoadError: with advice on local paths / OpenAI-compatible servers.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if load_in_8bit and load_in_4bit:
        raise ValueError("choose at most one of load_in_8bit and load_in_4bit")
    torch_dtype = resolve_dtype(dtype, device)
    kwargs = {"dtype": torch_dtype}
    if load_in_8bit or load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True)
            if load_in_8bit
            else BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch_dtype,
                bnb_4bit_use_double_quant=True,
            )
        )
        kwargs["device_map"] = {"": device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_model)
    except (OSError, ValueError) as e:
        raise _load_error("tokenizer of", base_model, e) from e
    try:
        model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    except (OSError, ValueError) as e:
        raise _load_error("base model", base_model, e) from e
    if "device_map" not in kwargs:
        model.to(device)
    if lora_model and lora_model.lower() != "none":
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, lora_model)
        except (OSError, ValueError) as e:
            raise _load_error("LoRA adapter", lora_model, e) from e
        if merge_lora and not (load_in_8bit or load_in_4bit):
            model = model.merge_and_unload()
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    return model, tokenizer


class HFBackend:
    """Batched generation with a local model.

    Prompts are sorted longest first and generated ``batch_size`` at a time with left padding and the
    KV cache; each sequence stops at its own stop string or EOS. Completions come back in input order.

    Args:
        model: a causal LM (or peft model) from ``load_model``.
        tokenizer: its tokenizer (left padding).
        batch_size: prompts per ``generate`` call.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, base_model: str, lora_model: str | None = None, batch_size: int = 8, **kwargs
    ) -> HFBackend:
        model, tokenizer = load_model(base_model, lora_model, **kwargs)
        return cls(model, tokenizer, batch_size)

    def _generation_kwargs(self, gen: GenerationConfig, stop: Sequence[str]) -> dict:
        kwargs = {
            "max_new_tokens": gen.max_new_tokens,
            "num_beams": gen.num_beams,
            "do_sample": gen.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if gen.do_sample:
            kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
        else:  # silence "temperature is set but do_sample=False" warnings from model generation configs
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        return kwargs

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        import torch

        gen = gen or GenerationConfig()
        kwargs = self._generation_kwargs(gen, stop)
        device = next(self.model.parameters()).device
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        results: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(device)
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs)
            new_tokens = out[:, batch["input_ids"].shape[1] :]
            for i, row in zip(idx, new_tokens, strict=True):
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                results[i] = truncate_at_stop(text, stop)
        return results
