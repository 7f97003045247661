"""Shared fixtures: offline environment, one thread, tiny local models built once per session."""

from __future__ import annotations

import os

# Before any library import: no hub access, one thread (two threads on a busy 2-core box are far slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["G4T_CPU_BF16"] = "0"  # --dtype auto = fp32 on every CPU here, so figures do not depend on the machine

import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """Directory of a tiny random LlamaForCausalLM + locally trained tokenizer."""
    from testkit.tiny import build_llama

    return str(build_llama(tmp_path_factory.mktemp("tiny_llama")))


@pytest.fixture(scope="session")
def tiny_lora(tiny_llama, tmp_path_factory):
    """A peft LoRA adapter for ``tiny_llama`` with non-zero weights (so it changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("tiny_lora")
    peft_model.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory):
    from testkit.tiny_vision import build_blip_captioning

    return str(build_blip_captioning(tmp_path_factory.mktemp("tiny_blip")))


@pytest.fixture
def square_image():
    """A white 256x192 picture with a black square: it has strong, known edges."""
    image = Image.new("RGB", (256, 192), "white")
    ImageDraw.Draw(image).rectangle([64, 48, 160, 144], fill="black")
    return image


# Captions of a small get_instruction output (tests/test_data_build.py, tests/test_data_sessions.py).
CAPTIONS = [
    "A man rides a brown horse on a beach [10, 20, 200, 300].",
    "Two cats sleep on a red sofa near a window.",
    "A kitchen with a white fridge and a wooden table.",
    "A red bus drives down a busy city street at dusk.",
    "A girl flies a kite in a green park.",
    "A plate of pasta with tomatoes and basil.",
    "An old lighthouse stands on a rocky coast.",
    "A skateboarder jumps over a set of stairs.",
    "Three sheep graze on a hill under clouds.",
    "A boat is moored at a small wooden dock.",
]


@pytest.fixture(scope="module")
def replies(tmp_path_factory):
    """A get_instruction output (JSONL) with published-style replies for 10 images."""
    import json

    from g4t.data.teacher import teacher_prompt
    from testkit.teacher_server import fake_reply

    path = tmp_path_factory.mktemp("replies") / "instructions.jsonl"
    with open(path, "w") as f:
        for i, cap in enumerate(CAPTIONS):
            rec = {
                "id": str(i),
                "file_name": f"{i:012d}.jpg",
                "caption": cap,
                "instructions": fake_reply(teacher_prompt(cap)),
            }
            f.write(json.dumps(rec) + "\n")
    return path
