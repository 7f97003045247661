"""Template ``chat``: the tokenizer's own chat template for training, inference and the demo; saved templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_samples import write

from g4t.prompts import CHAT_TEMPLATE, available_templates, chat_template, load_template, saved_template_name

ANN = str(Path(__file__).parent / "assets" / "eval" / "annotations.json")
# ChatML with a default system message, as SmolLM2-Instruct / Qwen2.5-Instruct render it.
CHATML = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HEADER = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"


def _make_chat(path: Path, template: str | None = CHATML) -> Path:
    """A tiny Llama whose tokenizer speaks ChatML (EOS ``<|im_end|>``), like SmolLM2-135M-Instruct."""
    from transformers import AutoTokenizer

    from testkit.tiny import build_llama

    build_llama(path, model_vocab_size=1024)  # room for the two added special tokens
    tok = AutoTokenizer.from_pretrained(path)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = template
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> str:
    return str(_make_chat(tmp_path_factory.mktemp("chat_llama")))


@pytest.fixture(scope="module")
def chat_tok(chat_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(chat_model)


def _config(folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "training_config.json").write_text(json.dumps({"prompt_template_name": name}))
    return str(folder)


def test_chat_template_renders_the_tokenizer_format(chat_tok):
    t = load_template("chat", tokenizer=chat_tok)
    assert t == chat_template(chat_tok) and t.name == CHAT_TEMPLATE and "chat" in available_templates()
    assert t.prompt_no_input == HEADER + "{instruction}<|im_end|>\n<|im_start|>assistant\n"
    assert t.response_split == "<|im_start|>assistant\n"
    rendered = t.render("INST")
    messages = [{"role": "user", "content": "INST"}]
    assert rendered == chat_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    with_input = t.render("INST", "IN")
    messages = [{"role": "user", "content": "INST\n\nIN"}]
    assert with_input == chat_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_round_trip_render_and_response(chat_tok):
    t = chat_template(chat_tok)
    full = t.render("What is in {image}?", output="A dog.<|im_end|>")
    assert full.count(t.response_split) == 1
    assert t.response(full).removesuffix("<|im_end|>") == "A dog."
    assert t.render("x", output="") == t.render("x")


def test_error_without_chat_template(tmp_path, chat_tok):
    from transformers import AutoTokenizer

    from testkit.tiny import build_tokenizer

    plain = build_tokenizer(tmp_path / "plain")
    with pytest.raises(ValueError, match="has no chat template"):
        load_template("chat", tokenizer=plain)
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        load_template("chat")
    no_prompt = AutoTokenizer.from_pretrained(tmp_path / "plain")
    no_prompt.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    with pytest.raises(ValueError, match="no distinct generation prompt"):
        chat_template(no_prompt)


def test_bos_written_by_the_template_is_not_doubled(chat_tok):
    from copy import deepcopy

    tok = deepcopy(chat_tok)  # the tiny tokenizer prepends <s> itself (like Llama)
    tok.chat_template = "{{ bos_token }}" + CHATML
    t = chat_template(tok)
    assert t.prompt_no_input.startswith("<|im_start|>system") and not t.prompt_no_input.startswith("<s>")
    ids = tok(t.render("INST"))["input_ids"]
    assert ids.count(tok.bos_token_id) == 1


def test_training_tokenization_masks_the_prompt_and_ends_with_eos(chat_tok):
    from g4t.train.tokenize import IGNORE_INDEX, tokenize_sample

    t = chat_template(chat_tok)
    record = {"instruction": "Describe image/a.png", "input": "", "output": "A red sofa."}
    sample, truncated = tokenize_sample(chat_tok, t, record, 1024)
    ids, labels = sample["input_ids"], sample["labels"]
    assert not truncated and ids[-1] == chat_tok.eos_token_id == chat_tok.convert_tokens_to_ids("<|im_end|>")
    trained = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]
    assert chat_tok.decode(trained) == "A red sofa.<|im_end|>"  # the assistant turn closes natively
    prompt = chat_tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE_INDEX])
    assert prompt.endswith("<|im_start|>assistant\n") and "Describe image/a.png<|im_end|>" in prompt


def test_saved_template_precedence(tmp_path):
    from g4t.react import template_name as resolve_template

    lora = _config(tmp_path / "lora", "vicuna_v1.1")
    base = _config(tmp_path / "full_ft", "gpt4tools_vicuna")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert saved_template_name(lora, base) == "vicuna_v1.1"  # the adapter's file wins
    assert saved_template_name("none", base) == saved_template_name(None, base) == "gpt4tools_vicuna"
    assert saved_template_name(str(empty), base) == "gpt4tools_vicuna"  # adapter without a file
    assert saved_template_name("none", "org/hub-model") is None
    assert resolve_template("vicuna_v1.5", lora, base) == "vicuna_v1.5"  # explicit --template first
    assert resolve_template(None, lora, base) == "vicuna_v1.1"
    assert resolve_template(None, "none", base) == "gpt4tools_vicuna"
    assert resolve_template(None, "none", str(empty)) == "gpt4tools"
    assert resolve_template(None, "none", _config(tmp_path / "chat_ft", "chat")) == "chat"
    (empty / "training_config.json").write_text("{oops")
    with pytest.raises(ValueError, match="invalid JSON"):
        saved_template_name("none", str(empty))


def test_demo_resolution(tmp_path, chat_tok):
    from g4t.demo_config import DemoConfig, parse_demo_args, resolve_template
    from g4t.settings import OpenAIConnection

    base = _config(tmp_path / "full_ft", "chat")
    lora = _config(tmp_path / "lora", "vicuna_v1.1")
    cfg = parse_demo_args(["--base_model", base, "--lora_model", "none"])
    assert resolve_template(cfg, chat_tok) == chat_template(chat_tok)
    assert resolve_template(parse_demo_args(["--base_model", base, "--lora_model", lora])).name == "vicuna_v1.1"
    assert resolve_template(parse_demo_args(["--base_model", base, "--template", "gpt4tools"])).name == "gpt4tools"
    with pytest.raises(ValueError, match="needs the model's tokenizer"):
        resolve_template(cfg)
    # OpenAI chat mode: the server applies the chat template itself; completions mode cannot
    assert resolve_template(parse_demo_args(["--openai_model", "m", "--template", "chat"])) is None
    with pytest.raises(ValueError, match="--template chat needs the model's tokenizer"):
        DemoConfig(openai=OpenAIConnection(openai_model="m", openai_mode="completions"), template="chat")


def test_full_finetune_with_chat_then_inference_picks_it_up(tmp_path, chat_model, monkeypatch):
    from g4t.cli import parse_args
    from g4t.inference import InferenceConfig, run
    from g4t.llm.hf import HFBackend
    from g4t.train.config import LoraTrainConfig
    from g4t.train.trainer import main as train

    out = tmp_path / "full_ft"
    cfg = LoraTrainConfig(
        base_model=chat_model, data_path=str(write(tmp_path / "d.json", 4)), output_dir=str(out), batch_size=2,
        micro_batch_size=2, max_steps=1, cutoff_len=512, val_set_size=0, warmup_steps=0, full_finetune=True,
        prompt_template_name="chat", save_steps=10,
    )  # fmt: skip
    resolved = train(cfg)
    assert resolved["template"]["response_split"] == "<|im_start|>assistant\n"
    assert json.loads((out / "training_config.json").read_text())["prompt_template_name"] == "chat"

    seen: list[str] = []
    original = HFBackend.generate

    def recording(self, prompts, stop=(), gen=None):
        seen.extend(prompts)
        return original(self, prompts, stop, gen)

    monkeypatch.setattr(HFBackend, "generate", recording)
    args = ["--base_model", str(out), "--lora_model", "none", "--ann_path", ANN, "--save_path", str(tmp_path),
            "--save_name", "chat", "--max_new_tokens", "4", "--llm_device", "cpu"]  # fmt: skip
    (icfg,) = parse_args(InferenceConfig, args=args)
    path = run(icfg).path
    assert json.loads(path.with_suffix(".meta.json").read_text())["template"] == "chat"
    anns = json.loads(Path(ANN).read_text())
    assert len(seen) == len(anns)
    assert all(p.startswith(HEADER) and p.endswith("<|im_end|>\n<|im_start|>assistant\n") for p in seen)
