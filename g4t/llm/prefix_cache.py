"""KV cache of earlier prompts, reused by token prefix: an agent step's prompt is the previous step's prompt
plus a few new lines, and every user's prompt starts with the same tool list.

``PrefixCache`` keeps the keys/values of the last few single-prompt generations (prompt + completion),
keyed by their token ids. For a new prompt it finds the entry with the longest common token prefix and
hands out a copy of that many positions as a transformers ``DynamicCache``; the model then computes only
the rest. Matching is on token ids (the new prompt is tokenised whole), and the keys/values of a token
depend only on the tokens before it, so greedy outputs are those of a full prefill (checked on the
packaged SmolLM2 in ``bench/agent_steps.py`` and ``tests/test_llm_prefix_cache.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PrefixCache", "common_prefix"]


@dataclass
class _Entry:
    ids: tuple[int, ...]
    layers: list[tuple]  # per layer: (keys, values), [1, kv_heads, len(ids), head_dim]
    nbytes: int


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _reusable_layers(cache, length: int) -> list[tuple] | None:
    """The per-layer ``(keys, values)`` of a batch-of-one, full-attention ``DynamicCache`` holding ``length``
    positions; None for anything else (sliding windows, quantised or static caches, beams)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    if type(cache) is not DynamicCache or not cache.layers:
        return None
    layers = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer or layer.keys is None or layer.values is None:
            return None
        if layer.keys.shape[0] != 1 or layer.keys.shape[2] != length or layer.values.shape[2] != length:
            return None
        layers.append((layer.keys, layer.values))
    return layers


class PrefixCache:
    """A thread-safe LRU of prompt KV caches, bounded in entries and bytes.

    Args:
        max_entries: entries kept (a few per concurrent conversation is enough; 0 disables the cache).
        max_bytes: total size of the kept keys/values; the least recently used entries go first.
        min_tokens: shortest common prefix worth reusing.

    Attributes:
        reused_tokens: prompt positions taken from the cache so far.
        computed_tokens: prompt positions the model had to compute so far (misses included).
    """

    def __init__(self, max_entries: int = 4, max_bytes: int = 2 << 30, min_tokens: int = 8) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.min_tokens = min_tokens
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next_key = 0
        self._lock = threading.Lock()
        self.reused_tokens = 0
        self.computed_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of keys/values held."""
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def take(self, ids: Sequence[int]):
        """``(n, cache)``: a fresh ``DynamicCache`` holding the first ``n`` positions of ``ids`` (the longest
        prefix found, at most ``len(ids) - 1`` so the model computes the next token's logits), or ``(0, None)``."""
        best_key, best = None, 0
        with self._lock:
            for key, entry in self._entries.items():
                n = min(common_prefix(entry.ids, ids), len(ids) - 1)
                if n > best:
                    best_key, best = key, n
            if best_key is None or best < self.min_tokens:
                self.computed_tokens += len(ids)
                return 0, None
            self._entries.move_to_end(best_key)
            layers = self._entries[best_key].layers
            self.reused_tokens += best
            self.computed_tokens += len(ids) - best
        from transformers import DynamicCache

        # The entry stays for the other conversations that share this prefix: DynamicCache copies what it is
        # given (torch.cat onto an empty tensor) and only ever replaces its tensors, never writes into them.
        return best, DynamicCache([(k[:, :, :best], v[:, :, :best]) for k, v in layers])

    def put(self, ids: Sequence[int], cache) -> bool:
        """Keep ``cache`` (the ``DynamicCache`` of a finished generation holding exactly ``ids``'s positions;
        it must not be used afterwards). Returns False when it is not reusable or is over ``max_bytes`` alone."""
        if self.max_entries <= 0 or not ids:
            return False
        layers = _reusable_layers(cache, len(ids))
        if layers is None:
            return False
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if nbytes > self.max_bytes:
            return False
        entry = _Entry(tuple(ids), layers, nbytes)
        with self._lock:
            # An entry that the new one contains (same tokens, or a prefix of them) is redundant.
            for key in [k for k, e in self._entries.items() if common_prefix(e.ids, entry.ids) == len(e.ids)]:
                del self._entries[key]
            self._entries[self._next_key] = entry
            self._next_key += 1
            total = sum(e.nbytes for e in self._entries.values())
            while len(self._entries) > self.max_entries or total > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                total -= dropped.nbytes
        return True

    def clear(self) -> None:
        """Drop every entry (e.g. after the model's weights changed)."""
        with self._lock:
            self._entries.clear()
