"""Shared-prefix packing: the same loss and gradients as ordinary packing, with fewer tokens computed."""

from __future__ import annotations

import json

import pytest
import torch
from train_samples import TOOLS
from transformers import AutoModelForCausalLM, AutoTokenizer

from g4t.prompts import (
    Step,
    format_steps,
    human_response,
    image_history,
    load_template,
    render_training_prompt,
    tool_response,
)
from g4t.train.packing import LossLogitsOnly, make_collator, register_varlen_attention
from g4t.train.shared_prefix import PrefixGroupedSampler, SharedPrefixCollator, blocks, plan_groups
from g4t.train.tokenize import IGNORE_INDEX, tokenize_records


def session_records() -> list[dict[str, str]]:
    """Two sessions (one image, one tool list, several requests; a call and its relay) and a loner."""
    out = []
    for s, image in enumerate(("image/aaaa.png", "cache/bbbb.png")):
        history = image_history(image, "a dog on a red sofa")
        for j, request in enumerate(("describe it", "find the edges please", "what is the capital of France?")):
            prompt = render_training_prompt(TOOLS[s:] + TOOLS[:s], history, request)
            if j == 2:
                out.append({"instruction": prompt, "input": "", "output": human_response("Paris.")})
                continue
            tool = TOOLS[j][0]
            out.append({"instruction": prompt, "input": "", "output": tool_response(tool, image)})
            relay = prompt + format_steps([Step(tool, image, "Result saved as out.png")])
            out.append({"instruction": relay, "input": "", "output": human_response("Result saved as out.png")})
    loner = render_training_prompt(TOOLS[:1], "", "hello")
    out.append({"instruction": loner, "input": "", "output": human_response("Hi!")})
    return out


@pytest.fixture(scope="module")
def setup(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    samples, _ = tokenize_records(tok, load_template("gpt4tools"), session_records(), 2048, train_on_inputs=False)
    return tiny_llama, tok, samples


def _model(path):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation=register_varlen_attention())


def test_plan_shares_prompts_and_never_a_labeled_token(setup):
    _, _, samples = setup
    groups = plan_groups(samples)
    assert sorted(i for members, _ in groups for i in members) == list(range(len(samples)))
    assert len(groups) == 3  # two sessions and the loner
    for members, shared in groups:
        if len(members) == 1:
            assert shared == 0
            continue
        head = samples[members[0]]["input_ids"]
        assert shared > 100  # the tool list and the history
        for i in members[1:]:
            s = samples[i]
            assert s["input_ids"][:shared] == head[:shared]
            assert all(x == IGNORE_INDEX for x in s["labels"][: shared + 1])  # its first prediction is kept


def test_same_loss_and_gradients_as_plain_packing_with_fewer_tokens(setup):
    path, tok, samples = setup
    shared_model, plain_model = _model(path), _model(path)
    packer = SharedPrefixCollator()
    shared = LossLogitsOnly(packer)(samples)
    plain = make_collator(tok, packing=True, loss_logits_only=True)(samples)
    total = sum(len(s["input_ids"]) for s in samples)
    assert packer.sample_tokens == total and shared["input_ids"].shape[1] == packer.packed_tokens
    assert packer.packed_tokens < 0.5 * total
    assert sorted(shared["shift_labels"].tolist()) == sorted(plain["shift_labels"].tolist())  # the same labels
    out, ref = shared_model(**shared), plain_model(**plain)
    torch.testing.assert_close(out.loss, ref.loss, atol=1e-5, rtol=1e-5)
    out.loss.backward()
    ref.loss.backward()
    for (name, a), (_, b) in zip(shared_model.named_parameters(), plain_model.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-3, msg=name)


def test_without_the_member_mask_samples_would_leak(setup):
    """Control: the same row read as one causal sequence per group changes the loss."""
    path, _, samples = setup
    model = _model(path)
    batch = LossLogitsOnly(SharedPrefixCollator())(samples)
    pos = batch["position_ids"][0]
    restarted = torch.zeros_like(pos)  # every group one plain causal sample: members see each other
    for t in range(1, len(pos)):
        restarted[t] = 0 if pos[t] == 0 else restarted[t - 1] + 1
    with torch.no_grad():
        good = model(**batch).loss
        leaked = model(**{**batch, "position_ids": restarted[None]}).loss
    assert (good - leaked).abs() > 1e-3


def test_train_on_inputs_shares_nothing(tiny_llama):
    """With the prompt in the loss no prefix may be shared (its labels would count once): plain packing."""
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    samples, _ = tokenize_records(tok, load_template("gpt4tools"), session_records(), 2048, train_on_inputs=True)
    assert all(shared == 0 for _, shared in plan_groups(samples))


def test_blocks_reads_the_layout_back():
    # group 0: head of 5 tokens, a member sharing 3; group 1: a plain sample of 2
    assert blocks([0, 1, 2, 3, 4, 3, 4, 5, 0, 1]) == [(0, 5, 0, 0), (5, 8, 0, 3), (8, 10, 0, 0)]
    assert blocks([0, 1, 2]) == [(0, 3, 0, 0)]
    with pytest.raises(ValueError, match="shared prefix"):
        blocks([0, 1, 5, 6])  # claims 5 tokens of a 2-token head


def test_sampler_keeps_sessions_together_and_shuffles_them(setup):
    _, _, samples = setup
    sampler = PrefixGroupedSampler(samples, seed=0)
    assert len(sampler) == len(samples) and len(sampler.runs) == 3
    orders = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(len(samples)))
        orders.add(tuple(order))
        for run in sampler.runs:  # each session is contiguous
            at = [order.index(i) for i in run]
            assert max(at) - min(at) == len(run) - 1
    assert len(orders) > 1
    sampler.set_epoch(2)
    again = PrefixGroupedSampler(samples, seed=0)
    again.set_epoch(2)
    assert list(sampler) == list(again)  # a resumed run sees the same order


def test_lora_finetune_share_prefix_runs_and_records_the_saving(tiny_llama, tmp_path):
    from g4t.train.config import LoraTrainConfig
    from g4t.train.trainer import main

    data = tmp_path / "data.json"
    data.write_text(json.dumps(session_records() * 2))
    cfg = LoraTrainConfig(
        base_model=tiny_llama,
        data_path=str(data),
        output_dir=str(tmp_path / "out"),
        batch_size=8,
        micro_batch_size=8,
        num_epochs=1,
        val_set_size=0,
        cutoff_len=2048,
        share_prefix=True,
        warmup_steps=0,
        logging_steps=1,
    )
    assert cfg.packing
    resolved = main(cfg)
    saving = resolved["shared_prefix"]
    assert saving["sample_tokens"] == resolved["train"]["tokens"]
    assert saving["computed_tokens"] < 0.6 * saving["sample_tokens"]
    saved = json.loads((tmp_path / "out" / "training_config.json").read_text())
    assert saved["share_prefix"] is True and resolved["attn_implementation"] == "g4t_varlen_sdpa"
