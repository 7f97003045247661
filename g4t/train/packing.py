"""Batch collation: padded (published), and padding-free packing with attention kept per sample.

Padded (published recipe): ``DataCollatorForSeq2Seq`` pads every micro-batch to its longest sample
(rounded up to a multiple of 8); labels are padded with ``-100``. Padding is right-sided here, so
position ids start at 0 as in the packed path (RoPE attention is shift-invariant, so the published
left padding gives the same loss).

Packed (``--packing``): transformers' ``DataCollatorWithFlattening`` concatenates the micro-batch
into one row of shape ``[1, total_tokens]``, restarts ``position_ids`` at 0 for every sample, puts
``-100`` on each sample's first label (so no sample predicts across a boundary) and passes the
sample boundaries (``cu_seq_lens_q``) to the attention. The micro-batch holds exactly the same
samples as the padded one, and the loss is the same token mean, so the training objective is
unchanged; only the padding compute disappears.

Attention must stay within each sample. On GPU with flash-attn installed, ``flash_attention_2``
reads the boundaries natively. Everywhere else we register ``g4t_varlen_sdpa`` through
transformers' ``AttentionInterface``: it runs causal SDPA on each sample's slice (cost
``sum(len_i^2)`` instead of ``total^2``; transformers' own ``sdpa`` also handles packed
``position_ids``, but by materialising a ``total x total`` block mask).

Logits only where the loss is (both collators, ``loss_logits_only=True``): with the loss on the
response only, most positions of a GPT4Tools sample (the long tool prompt) carry no label, yet the
published recipe projects every position onto the vocabulary and runs a softmax over it. The
collator adds ``logits_to_keep`` (a boolean ``[batch, seq]`` mask of the positions whose next token is
trained) and ``shift_labels`` (those labels, flattened); transformers' causal LMs then apply
``lm_head`` to those hidden states only and the loss reads ``shift_labels``. The loss is the same
token mean over the same labels (the Trainer counts ``shift_labels`` for ``num_items_in_batch``);
only the work for positions that never reach the loss is skipped.
"""

from __future__ import annotations

from typing import Any

from g4t.train.tokenize import IGNORE_INDEX

__all__ = [
    "VARLEN_ATTENTION",
    "LossLogitsOnly",
    "make_collator",
    "pick_attn_implementation",
    "register_varlen_attention",
    "supports_logits_mask",
]

VARLEN_ATTENTION = "g4t_varlen_sdpa"
_registered = False


def _layout(cu_seq_lens, position_ids, length: int) -> list[tuple[int, int, int, int]]:
    """Blocks ``(start, end, prefix_start, prefix_len)`` of a packed row: sample boundaries from
    ``cu_seq_lens``, else from ``position_ids`` (restarts at 0; shared prefixes, see ``shared_prefix.blocks``)."""
    if cu_seq_lens is not None:
        bounds = [int(x) for x in cu_seq_lens.tolist()]
        return [(a, b, 0, 0) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]
    if position_ids is None or position_ids.shape[0] != 1:
        return [(0, length, 0, 0)]
    from g4t.train.shared_prefix import blocks

    return blocks(position_ids[0].tolist())


def _varlen_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Causal SDPA per packed sample (and shared-prefix member); a padded batch (mask given) goes to transformers' sdpa."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling)
    layout = _layout(kwargs.get("cu_seq_lens_q"), kwargs.get("position_ids"), query.shape[2])
    if len(layout) == 1:
        return sdpa_attention_forward(module, query, key, value, None, dropout=dropout, scaling=scaling, is_causal=True)
    outs = []
    for a, b, ps, pl in layout:
        if not pl:
            out = sdpa_attention_forward(
                module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None,
                dropout=dropout, scaling=scaling, is_causal=True,
            )[0]  # fmt: skip
        else:  # all of the group's prefix, then causal within the member
            n = b - a
            mask = torch.ones(n, pl + n, dtype=torch.bool, device=query.device)
            mask[:, pl:] = torch.ones(n, n, dtype=torch.bool, device=query.device).tril()
            k = torch.cat([key[:, :, ps : ps + pl], key[:, :, a:b]], dim=2)
            v = torch.cat([value[:, :, ps : ps + pl], value[:, :, a:b]], dim=2)
            out = sdpa_attention_forward(
                module, query[:, :, a:b], k, v, mask[None, None], dropout=dropout, scaling=scaling
            )[0]
        outs.append(out)
    return torch.cat(outs, dim=1), None  # [batch, seq, heads, head_dim], as sdpa_attention_forward returns


def _varlen_mask(*args, attention_mask=None, **kwargs):
    """No mask for packed rows (the attention splits them); the ordinary sdpa mask for padded batches."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register_varlen_attention() -> str:
    """Register ``g4t_varlen_sdpa`` with transformers (idempotent) and return its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(VARLEN_ATTENTION, _varlen_sdpa)
        AttentionMaskInterface.register(VARLEN_ATTENTION, _varlen_mask)
        _registered = True
    return VARLEN_ATTENTION


def pick_attn_implementation(requested: str, packing: bool, cuda: bool, share_prefix: bool = False) -> str:
    """Resolve ``--attn_implementation auto``: flash-attn (GPU, if installed) or varlen SDPA for packing, else sdpa.
    Shared prefixes always take varlen SDPA (flash-attn's varlen kernel cannot read their layout)."""
    if requested == VARLEN_ATTENTION or (requested == "auto" and (packing or share_prefix)):
        import importlib.util

        if requested == "auto" and cuda and not share_prefix and importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
        return register_varlen_attention()
    return "sdpa" if requested == "auto" else requested


class LossLogitsOnly:
    """Wrap a collator so the model computes logits only at positions whose next token has a label."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        import torch

        batch = self.collator(features)
        shifted = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE_INDEX)
        keep = shifted != IGNORE_INDEX
        batch["logits_to_keep"] = keep
        batch["shift_labels"] = shifted[keep]
        return batch


def supports_logits_mask(model) -> bool:
    """Whether ``model`` (a transformers causal LM, possibly peft-wrapped) accepts a boolean ``logits_to_keep``."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        source = inspect.getsource(type(base).forward)
    except (OSError, TypeError):
        return False
    return "slice_logits_to_keep" in source


def make_collator(tokenizer, packing: bool, loss_logits_only: bool = False, share_prefix: bool = False) -> Any:
    """The collator for a training run: shared-prefix packing (``share_prefix``, see ``shared_prefix.py``),
    padding-free flattening (``packing``) or published padding.

    ``loss_logits_only`` adds the ``logits_to_keep`` mask and ``shift_labels`` (see the module docs);
    use it only with a model for which ``supports_logits_mask`` is true.
    """
    if share_prefix:
        from g4t.train.shared_prefix import SharedPrefixCollator

        collator = SharedPrefixCollator()
    elif packing:
        from transformers import DataCollatorWithFlattening

        collator = DataCollatorWithFlattening(return_flash_attn_kwargs=True)
    else:
        from transformers import DataCollatorForSeq2Seq

        collator = DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, return_tensors="pt", padding=True)
    return LossLogitsOnly(collator) if loss_logits_only else collator
