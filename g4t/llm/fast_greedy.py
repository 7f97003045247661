"""Batched greedy decoding of Llama-family models without padding compute (the CPU batch path of ``HFBackend``).

Same tokens as ``model.generate`` (greedy); faster on CPU because:

* the token prefix shared by all prompts of a call (the system prompt) is prefilled once and its KV reused;
* every prompt's remaining tokens are prefilled on their own into a preallocated slot cache (no padding);
* the batch decodes one token per step with a matmul attention over the slots, stop strings are checked
  on decoded tails in Python, and finished rows leave the batch.

Chosen by measurement (``bench/inference_throughput.py``, figures in ``bench/results/``); ``HFBackend``
uses it only on the device where it wins.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from g4t.llm.base import GenerationConfig, truncate_at_stop

__all__ = ["FastGreedy"]

_DECODE_ATTENTION = "g4t_decode_attention"
_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3"}
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


class FastGreedy:
    """Greedy batch decoder over a slot cache (see the module docstring).

    Args:
        model: a Llama-family causal LM (``supports`` says whether this one and these settings qualify).
        tokenizer: its tokenizer.
    """

    def __init__(self, model, tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._candidates = None

    def supports(self, gen: GenerationConfig) -> bool:
        """Greedy decoding of a full-attention Llama-family model with SDPA or eager attention."""
        config = getattr(self.model, "config", None)
        return (
            not gen.do_sample
            and gen.num_beams == 1
            and getattr(config, "model_type", None) in _MODEL_TYPES
            and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
            and getattr(config, "sliding_window", None) is None
            and getattr(config, "num_key_value_heads", None) is not None
        )

    def _stop_candidates(self, stop: Sequence[str]):
        """Boolean tensor over the vocabulary: tokens whose text may complete a stop string."""
        import torch

        key = tuple(stop)
        if self._candidates is not None and self._candidates[0] == key:
            return self._candidates[1]
        lasts = {s[-1] for s in stop if s}
        texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
        flags = torch.tensor([("\ufffd" in t) or any(c in t for c in lasts) for t in texts], dtype=torch.bool)
        self._candidates = (key, flags)
        return flags

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str], gen: GenerationConfig, batch_size: int
    ) -> list[str] | None:
        """Completions of ``prompts`` (input order, cut at ``stop``), ``batch_size`` rows at a time, longest
        first; None when a prompt tokenises to nothing (the caller then uses ``model.generate``)."""
        import torch

        stop = [s for s in stop if s]
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        if any(not ids for ids in encoded):
            return None
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
                ids = torch.tensor([first[:shared]], device=next(self.model.parameters()).device)
                prefix = self.model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [encoded[i] for i in idx]
                decoded = self._decode_batch(batch, shared, prefix, gen, eos_ids, stop, candidates, tail)
                for i, toks in zip(idx, decoded, strict=True):
                    results[i] = truncate_at_stop(self.tokenizer.decode(toks, skip_special_tokens=True), stop)
        return results

    def _decode_batch(self, batch, shared, prefix, gen, eos_ids, stop, candidates, tail) -> list[list[int]]:
        import torch

        config = self.model.config
        param = next(self.model.parameters())
        device, dtype = param.device, param.dtype
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
