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


def test_a_shipped_short_name_merges_its_delta_onto_the_packaged_base_once(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    from g4t.llm import sources
    from g4t.prompts import saved_template_name

    monkeypatch.setenv("G4T_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "models" / "tiny-delta"
    folder.mkdir(parents=True)
    norm = "model.layers.0.input_layernorm.weight"
    save_file({f"{norm}.delta": torch.full((576,), 0.5, dtype=torch.float16)}, str(folder / "delta.safetensors"))
    manifest = {"format": "g4t low-rank delta v1", "rank": 64, "base": {"sha256": "0" * 64}}
    (folder / "delta.json").write_text(json.dumps(manifest))
    (folder / "training_config.json").write_text(json.dumps({"prompt_template_name": "gpt4tools"}))
    monkeypatch.setitem(sources.SHIPPED, "tiny-shipped", sources.ShippedModel(str(folder), "smollm2"))
    with pytest.raises(ValueError, match="not the base the delta was made on"):
        resolve_model("tiny-shipped")
    manifest["base"]["sha256"] = sources._sha256(SMOLLM2.gguf_path())
    (folder / "delta.json").write_text(json.dumps(manifest))
    merged = resolve_model("tiny-shipped")
    assert merged.startswith(str(tmp_path / "cache" / "shipped"))
    base = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2"), dtype=torch.float32).state_dict()[norm]
    tuned = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).state_dict()[norm]
    torch.testing.assert_close(tuned, base + 0.5)
    stamp = (sources.Path(merged) / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("tiny-shipped") == merged  # merged once, then read
    assert (sources.Path(merged) / "model.safetensors").stat().st_mtime_ns == stamp
    assert saved_template_name(None, "tiny-shipped") == "gpt4tools"
    assert saved_template_name("tiny-shipped", "smollm2") == "gpt4tools"
    # named as the adapter on its own base, it is the same merged model
    from g4t.llm.base import ModelLoadError
    from g4t.llm.hf import load_model

    model, _ = load_model("smollm2", "tiny-shipped", dtype="fp32")
    torch.testing.assert_close(model.state_dict()[norm], base + 0.5)
    with pytest.raises(ModelLoadError, match="fine-tune of --base_model smollm2"):
        load_model("HuggingFaceTB/SmolLM-360M", "tiny-shipped")
    monkeypatch.setitem(sources.SHIPPED, "gone", sources.ShippedModel(str(tmp_path / "nowhere"), "smollm2"))
    with pytest.raises(ValueError, match="holds no model delta"):
        resolve_model("gone")


def test_the_committed_shipped_model_is_small_and_names_its_base():
    from g4t.llm.sources import SHIPPED, _sha256

    folder = SHIPPED["gpt4tools-smollm2"].path()
    manifest = json.loads((folder / "delta.json").read_text())
    assert manifest["base"]["sha256"] == _sha256(SMOLLM2.gguf_path())
    assert (folder / "delta.safetensors").stat().st_size < 50e6
    assert json.loads((folder / "training_config.json").read_text())["prompt_template_name"] == "gpt4tools"
    assert "## Figures" in (folder / "README.md").read_text()  # the model card
