"""Packing keeps samples apart: per-sample loss packed == alone; the padded and packed batches agree."""

from __future__ import annotations

import pytest
import torch
from train_samples import records
from transformers import AutoModelForCausalLM, AutoTokenizer

from g4t.prompts import load_template
from g4t.train.packing import (
    VARLEN_ATTENTION,
    make_collator,
    pick_attn_implementation,
    register_varlen_attention,
    supports_logits_mask,
)
from g4t.train.tokenize import IGNORE_INDEX, tokenize_records


@pytest.fixture(scope="module")
def setup(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    samples, _ = tokenize_records(tok, load_template("gpt4tools"), records(5), 1024, train_on_inputs=False)
    return tiny_llama, tok, samples


def _model(path, attn):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn).eval()


def _per_sample_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss of one sample's slice."""
    return torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX)


@pytest.mark.parametrize("attn", [VARLEN_ATTENTION, "sdpa"])
def test_packed_per_sample_loss_equals_alone(setup, attn):
    path, tok, samples = setup
    attn = register_varlen_attention() if attn == VARLEN_ATTENTION else attn
    model = _model(path, attn)
    batch = make_collator(tok, packing=True)(samples)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    assert batch["position_ids"][0].tolist() == [i for s in samples for i in range(len(s["input_ids"]))]
    with torch.no_grad():
        # use_cache=False as in training: transformers' sdpa only detects packed position_ids without a cache
        # (with the default use_cache=True it silently attends across samples); the varlen kernel needs no cache rule.
        packed = model(**batch, use_cache=False).logits[0]
        offset = 0
        for s in samples:
            n = len(s["input_ids"])
            ids, labels = torch.tensor([s["input_ids"]]), torch.tensor(s["labels"])
            alone = model(input_ids=ids).logits[0]
            torch.testing.assert_close(packed[offset : offset + n], alone, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(
                _per_sample_losses(packed[offset : offset + n], labels), _per_sample_losses(alone, labels)
            )
            offset += n


def test_without_separation_samples_would_leak(setup):
    """Control: the same flat row attended causally as one sequence gives different logits after sample 0."""
    path, tok, samples = setup
    model = _model(path, "sdpa")
    ids = torch.tensor([[i for s in samples for i in s["input_ids"]]])
    with torch.no_grad():
        leaked = model(input_ids=ids).logits[0]
        n0, n1 = len(samples[0]["input_ids"]), len(samples[1]["input_ids"])
        alone = model(input_ids=torch.tensor([samples[1]["input_ids"]])).logits[0]
    assert (leaked[n0 : n0 + n1] - alone).abs().max() > 1e-3


def test_packed_batch_loss_and_gradients_equal_padded(setup):
    path, tok, samples = setup
    packed_model, padded_model = _model(path, register_varlen_attention()), _model(path, "sdpa")
    packed = make_collator(tok, packing=True)(samples)
    padded = make_collator(tok, packing=False)(samples)
    assert padded["input_ids"].shape[1] % 8 == 0  # published pad_to_multiple_of=8
    loss_packed, loss_padded = packed_model(**packed).loss, padded_model(**padded).loss
    torch.testing.assert_close(loss_packed, loss_padded, atol=1e-5, rtol=1e-5)
    loss_packed.backward()
    loss_padded.backward()
    for (name, a), (_, b) in zip(packed_model.named_parameters(), padded_model.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_attention_choice():
    assert pick_attn_implementation("auto", packing=False, cuda=False) == "sdpa"
    assert pick_attn_implementation("auto", packing=True, cuda=False) == VARLEN_ATTENTION
    assert pick_attn_implementation("eager", packing=False, cuda=False) == "eager"


@pytest.mark.parametrize("packing", [True, False])
def test_logits_only_at_loss_positions_gives_the_same_loss_and_gradients(setup, packing):
    path, tok, samples = setup
    attn = register_varlen_attention() if packing else "sdpa"
    full_model, masked_model = _model(path, attn), _model(path, attn)
    assert supports_logits_mask(masked_model)
    full = make_collator(tok, packing=packing)(samples)
    masked = make_collator(tok, packing=packing, loss_logits_only=True)(samples)
    trained = sum(int((torch.tensor(s["labels"][1:]) != IGNORE_INDEX).sum()) for s in samples)
    assert masked["shift_labels"].numel() == int(masked["logits_to_keep"].sum()) == trained
    out = masked_model(**masked)
    assert out.logits.shape[0] == trained  # one row per trained position, not per token
    ref = full_model(**full)
    torch.testing.assert_close(out.loss, ref.loss, atol=1e-6, rtol=1e-6)
    # the Trainer's token-count normalisation (num_items_in_batch) goes through the same path
    n = torch.tensor(trained)
    torch.testing.assert_close(masked_model(**masked, num_items_in_batch=n).loss, ref.loss, atol=1e-6, rtol=1e-6)
    out.loss.backward()
    ref.loss.backward()
    for (name, a), (_, b) in zip(masked_model.named_parameters(), full_model.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-4, msg=name)
