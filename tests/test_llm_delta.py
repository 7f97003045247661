"""g4t.llm.delta: a fine-tune as low-rank factors on its base, merged back into an ordinary model folder."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from g4t.llm.delta import DELTA_FILE, MANIFEST_FILE, apply_delta, compress, delta_digest
from testkit.tiny import build_llama


def _tuned(base, path, update):
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            update(name, p)
    model.save_pretrained(path)
    (path / "training_config.json").write_text(json.dumps({"prompt_template_name": "gpt4tools"}))
    return path


def _weights(folder):
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_llama(tmp_path_factory.mktemp("base"), hidden_size=32, num_layers=2, vocab_size=200)


def test_a_low_rank_change_and_the_norms_come_back_exactly(base, tmp_path):
    g = torch.Generator().manual_seed(0)

    def update(name, p):
        if p.ndim == 2:  # a rank-2 change on every matrix, tied embedding included
            p.add_(torch.randn(p.shape[0], 2, generator=g) @ torch.randn(2, p.shape[1], generator=g) * 0.01)
        else:
            p.add_(0.05)

    tuned = _tuned(base, tmp_path / "tuned", update)
    manifest = compress(tuned, base, tmp_path / "delta", rank=4, base_id={"sha256": "x"})
    assert (tmp_path / "delta" / DELTA_FILE).is_file() and manifest["energy_kept"]["min"] > 0.999
    assert json.loads((tmp_path / "delta" / MANIFEST_FILE).read_text())["rank"] == 4
    merged = apply_delta(base, tmp_path / "delta", tmp_path / "merged")
    want, got = _weights(tuned), _weights(merged)
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=2e-4, rtol=1e-3)  # fp16 factors
    assert json.loads((merged / "training_config.json").read_text())["prompt_template_name"] == "gpt4tools"
    assert (merged / "tokenizer.json").is_file() or (merged / "tokenizer_config.json").is_file()


def test_a_full_rank_change_keeps_its_top_directions(base, tmp_path):
    g = torch.Generator().manual_seed(1)
    tuned = _tuned(base, tmp_path / "tuned", lambda n, p: p.add_(torch.randn(p.shape, generator=g) * 0.01))
    manifest = compress(tuned, base, tmp_path / "delta", rank=4, base_id={})
    assert 0 < manifest["energy_kept"]["min"] < 0.9  # random noise is spread over every direction
    merged = _weights(apply_delta(base, tmp_path / "delta", tmp_path / "merged"))
    b, t = _weights(base), _weights(tuned)
    name = "model.layers.0.mlp.up_proj.weight"
    # the kept part points the way the real change does
    cos = torch.nn.functional.cosine_similarity((merged[name] - b[name]).flatten(), (t[name] - b[name]).flatten(), 0)
    assert 0.2 < cos < 0.99


def test_a_delta_for_another_model_is_refused_by_name(base, tmp_path):
    tuned = _tuned(base, tmp_path / "tuned", lambda n, p: p.add_(0.01))
    compress(tuned, base, tmp_path / "delta", rank=2, base_id={})
    other = build_llama(tmp_path / "other", hidden_size=48, num_layers=2, vocab_size=200)
    with pytest.raises(ValueError, match="shape"):
        apply_delta(other, tmp_path / "delta", tmp_path / "merged")
    with pytest.raises(ValueError, match="not a model delta"):
        apply_delta(base, tmp_path, tmp_path / "merged2")
    assert len(delta_digest(tmp_path / "delta")) == 64
