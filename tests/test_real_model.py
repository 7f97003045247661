"""The packaged real model (SmolLM2-135M-Instruct, GGUF from PyPI) through the production loader."""

from __future__ import annotations

import json

import pytest

from g4t.llm.base import GenerationConfig
from g4t.llm.sources import PACKAGED, convert_gguf, resolve_model

SMOLLM2 = PACKAGED["smollm2"]
pytestmark = pytest.mark.skipif(
    SMOLLM2.gguf_path() is None, reason=f"packaged model not installed ({SMOLLM2.pip}; scripts/setup.sh does it)"
)


@pytest.fixture(scope="module")
def smollm2():
    from g4t.llm.hf import HFBackend

    return HFBackend.from_pretrained("smollm2", None, batch_size=2, device="cpu", dtype="fp32")


def test_short_name_offline_is_the_converted_packaged_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model("smollm2")
    assert folder == resolve_model(SMOLLM2.hub_id) == resolve_model(str(SMOLLM2.gguf_path()))
    config = json.loads((convert_gguf(SMOLLM2.gguf_path()) / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (
        "llama",
        30,
        576,
        49152,
    )


def test_real_answer_through_the_production_loader(smollm2):
    tok = smollm2.tokenizer
    assert tok.chat_template, "the converted folder keeps the model's chat template"
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, tokenize=False
    )
    (answer,) = smollm2.generate([prompt], stop=["<|im_end|>"], gen=GenerationConfig(max_new_tokens=16))
    assert "Paris" in answer, answer


def test_unreadable_gguf_and_missing_file_are_clear_errors(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(ValueError, match="broken.gguf"):
        resolve_model(str(bad))
    with pytest.raises(ValueError, match="not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
