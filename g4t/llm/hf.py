"""Local transformers causal LM (+ optional peft LoRA, 8-bit / 4-bit) with batched generation."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from g4t.llm.base import GenerationConfig, ModelLoadError, truncate_at_stop
from g4t.precision import DTypeName, dtype_label, resolve_dtype

__all__ = ["HFBackend", "load_model"]

logger = logging.getLogger(__name__)


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
    dtype: DTypeName = "auto",
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    merge_lora: bool = False,
):
    """Load a causal LM and its tokenizer, optionally with a peft LoRA attached or merged.

    Args:
        base_model: Hugging Face id, local folder, ``.gguf`` file or packaged short name (``smollm2``);
            see ``g4t.llm.sources.resolve_model``.
        lora_model: peft adapter id or path; None (or "none") for the base model alone.
        device: torch device for the whole model (``cpu``, ``cuda``, ``cuda:1``...).
        dtype: weight dtype; ``auto`` follows ``g4t.precision.resolve_dtype`` (bf16 on CUDA and on CPUs
            with native bf16 units, fp16 on older GPUs, fp32 elsewhere).
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
    from g4t.llm.sources import resolve_model

    try:
        source = resolve_model(base_model)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    torch_dtype = resolve_dtype(dtype, device)
    logger.info(f"LLM {base_model}: {dtype_label(torch_dtype)} weights on {device} (--dtype {dtype})")
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
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise _load_error("tokenizer of", base_model, e) from e
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
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


_DECODE_ATTENTION = "g4t_decode_attention"
_FAST_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3"}
_attn_lock = threading.Lock()
_registered = False


def _decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """One-token decode attention over a slot cache: two matmuls per KV head group, no ``repeat_kv`` copy.

    torch's CPU SDPA kernels are tiled for long queries; for a single query row over a long padded
    cache they are several times slower than a plain ``q @ K^T -> softmax -> @ V``. Anything else
    (prefill, no additive mask) goes to transformers' SDPA.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[2] != 1 or attention_mask is None or attention_mask.dtype == torch.bool or dropout:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling)
    batch, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    q = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)).mul_(scaling if scaling is not None else dim**-0.5)
    scores.add_(attention_mask)  # [batch, 1, 1, keys] additive: 0 or -inf (padding)
    out = torch.matmul(torch.softmax(scores, dim=-1), value)  # [batch, kv_heads, group, dim]
    return out.reshape(batch, 1, heads, dim), None


def _register_decode_attention() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(_DECODE_ATTENTION, _decode_attention)
        _registered = True


class _SlotCache:
    """Preallocated KV cache ``[rows, kv_heads, columns, head_dim]`` per layer (duck-typed ``Cache``).

    Row ``r`` holds its prompt right-aligned at columns ``[width - len_r, width)`` and every row writes
    its generated tokens at the shared column ``pos``. ``row`` selects one row for its prefill.
    """

    def __init__(self, layers: int, rows: int, kv_heads: int, columns: int, head_dim: int, dtype, device) -> None:
        import torch

        shape = (rows, kv_heads, columns, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.row: int | None = None  # prefill of one row: columns [start, pos) are written and read
        self.start = 0
        self.pos = 0

    def update(self, key, value, layer_idx: int, *args, **kwargs):
        n = key.shape[2]
        if self.row is not None:
            r = slice(self.row, self.row + 1)
            self.keys[layer_idx][r, :, self.pos : self.pos + n] = key
            self.values[layer_idx][r, :, self.pos : self.pos + n] = value
            return (
                self.keys[layer_idx][r, :, self.start : self.pos + n],
                self.values[layer_idx][r, :, self.start : self.pos + n],
            )
        self.keys[layer_idx][:, :, self.pos : self.pos + n] = key
        self.values[layer_idx][:, :, self.pos : self.pos + n] = value
        return self.keys[layer_idx][:, :, : self.pos + n], self.values[layer_idx][:, :, : self.pos + n]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.pos

    def keep(self, rows) -> None:
        """Drop finished rows (``rows``: index tensor of the rows to keep)."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]


class HFBackend:
    """Batched generation with a local model.

    Prompts are sorted longest first and generated ``batch_size`` at a time; each sequence stops at its
    own stop string or EOS. Completions come back in input order.

    Greedy decoding of Llama-family models takes a faster path with the same results: the token prefix
    shared by all prompts (the system prompt) is prefilled once and its KV reused; every prompt's
    remaining tokens are prefilled on their own (no padding compute) into a preallocated slot cache;
    then the batch decodes one token per step with a matmul attention over the slots, stop strings
    checked on decoded tails in Python, and finished rows dropped from the batch. Sampling, beam search
    and other architectures use ``model.generate`` on left-padded batches.

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
        gen = gen or GenerationConfig()
        if self._fast_path_ok(gen):
            return self._generate_greedy(prompts, stop, gen)
        return self._generate_hf(prompts, stop, gen)

    def _fast_path_ok(self, gen: GenerationConfig) -> bool:
        config = getattr(self.model, "config", None)
        return (
            not gen.do_sample
            and gen.num_beams == 1
            and getattr(config, "model_type", None) in _FAST_MODEL_TYPES
            and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
            and getattr(config, "sliding_window", None) is None
            and getattr(config, "num_key_value_heads", None) is not None
        )

    def _stop_candidates(self, stop: Sequence[str]):
        """Boolean tensor over the vocabulary: tokens whose text may complete a stop string."""
        import torch

        key = tuple(stop)
        cached = getattr(self, "_candidates", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        lasts = {s[-1] for s in stop if s}
        n = len(self.tokenizer)
        texts = self.tokenizer.batch_decode([[i] for i in range(n)])
        flags = torch.tensor([("\ufffd" in t) or any(c in t for c in lasts) for t in texts], dtype=torch.bool)
        self._candidates = (key, flags)
        return flags

    def _generate_greedy(self, prompts: Sequence[str], stop: Sequence[str], gen: GenerationConfig) -> list[str]:
        import torch

        stop = [s for s in stop if s]
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        if any(not ids for ids in encoded):
            return self._generate_hf(prompts, stop, gen)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        # Token prefix shared by every prompt (each keeps at least one token of its own).
        shared = 0
        first = encoded[0]
        limit = min(len(e) for e in encoded) - 1
        while shared < limit and all(e[shared] == first[shared] for e in encoded):
            shared += 1
        if shared < 16:
            shared = 0
        eos = self.model.generation_config.eos_token_id if self.model.generation_config else None
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        candidates = self._stop_candidates(stop) if stop else None
        tail = 2 * max((len(s) for s in stop), default=0) + 4
        results: list[str] = [""] * len(prompts)
        with _attn_lock, torch.inference_mode():
            prefix = None
            if shared:
                ids = torch.tensor([first[:shared]], device=self._device())
                out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
                prefix = out.past_key_values
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                for i, toks in zip(idx, self._decode_batch([encoded[i] for i in idx], shared, prefix, gen,
                                                           eos_ids, stop, candidates, tail), strict=True):  # fmt: skip
                    text = self.tokenizer.decode(toks, skip_special_tokens=True)
                    results[i] = truncate_at_stop(text, stop)
        return results

    def _device(self):
        return next(self.model.parameters()).device

    def _decode_batch(self, batch, shared, prefix, gen, eos_ids, stop, candidates, tail) -> list[list[int]]:
        import torch

        config = self.model.config
        device, dtype = self._device(), next(self.model.parameters()).dtype
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        lengths = [len(ids) for ids in batch]
        width = max(lengths)
        columns = width + gen.max_new_tokens
        rows = len(batch)
        cache = _SlotCache(config.num_hidden_layers, rows, config.num_key_value_heads, columns, head_dim, dtype, device)
        mask = torch.zeros(rows, 1, 1, columns, dtype=dtype, device=device)
        first_tokens = []
        for r, ids in enumerate(batch):
            begin = width - len(ids)
            mask[r, :, :, :begin] = float("-inf")
            cache.row, cache.start, cache.pos = r, begin, begin
            if prefix is not None:
                for layer in range(config.num_hidden_layers):
                    k, v = prefix.layers[layer].keys, prefix.layers[layer].values
                    cache.keys[layer][r, :, begin : begin + shared] = k[0]
                    cache.values[layer][r, :, begin : begin + shared] = v[0]
                cache.pos = begin + shared
            own = torch.tensor([ids[shared:]], device=device)
            q = own.shape[1]
            causal = torch.full((q, shared + q), float("-inf"), dtype=dtype, device=device).triu(diagonal=shared + 1)
            out = self.model(
                input_ids=own,
                attention_mask=causal[None, None],
                position_ids=torch.arange(shared, shared + q, device=device)[None],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            first_tokens.append(int(out.logits[0, -1].argmax()))
        cache.row, cache.pos = None, width
        generated = [[t] for t in first_tokens]
        active = list(range(rows))  # batch rows still generating, in cache order
        positions = torch.tensor(lengths, device=device)
        next_tokens = torch.tensor(first_tokens, device=device)
        finished: set[int] = set()  # rows done (EOS or stop string) but still in the cache
        _register_decode_attention()
        previous = config._attn_implementation
        config._attn_implementation = _DECODE_ATTENTION
        try:
            for _ in range(gen.max_new_tokens - 1):
                for j in self._finished(active, batch, generated, next_tokens, eos_ids, stop, candidates, tail):
                    finished.add(active[j])
                if len(finished) == len(active):
                    break
                if finished and len(finished) >= max(1, len(active) // 4):  # drop them: less to compute
                    keep = [j for j, r in enumerate(active) if r not in finished]
                    index = torch.tensor(keep, device=device)
                    cache.keep(index)
                    mask, positions, next_tokens = mask[index], positions[index], next_tokens[index]
                    active = [active[j] for j in keep]
                    finished.clear()
                out = self.model(
                    input_ids=next_tokens[:, None],
                    attention_mask=mask[..., : cache.pos + 1],
                    position_ids=positions[:, None],
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                cache.pos += 1
                positions = positions + 1
                next_tokens = out.logits[:, -1].argmax(-1)
                for r, t in zip(active, next_tokens.tolist(), strict=True):
                    if r not in finished:
                        generated[r].append(t)
        finally:
            config._attn_implementation = previous
        return generated

    def _finished(self, active, prompts, generated, next_tokens, eos_ids, stop, candidates, tail) -> list[int]:
        """Positions (in ``active``) of rows whose last token is EOS or completed a stop string.

        As with transformers' ``StopStringCriteria``, the stop string must end in the newest token and may
        begin in the prompt's last tokens.
        """
        done = [j for j, r in enumerate(active) if generated[r][-1] in eos_ids]
        if stop:
            for j in candidates[next_tokens.cpu()].nonzero().flatten().tolist():
                if j not in done:
                    row = active[j]
                    ids = (prompts[row][-tail:] + generated[row])[-tail:]
                    text = self.tokenizer.decode(ids, skip_special_tokens=True)
                    before = len(self.tokenizer.decode(ids[:-1], skip_special_tokens=True))
                    if any(text.find(s, max(0, before - len(s) + 1)) >= 0 for s in stop):  # ends in the new token
                        done.append(j)
        return done

    def _generate_hf(self, prompts: Sequence[str], stop: Sequence[str], gen: GenerationConfig) -> list[str]:
        import torch

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
