"""Template rendering and label masking on hand-made samples (response-only and train-on-inputs)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from g4t.prompts import load_template
from g4t.train import tokenize as tk
from g4t.train.tokenize import IGNORE_INDEX, tokenize_records, tokenize_sample

RECORD = {
    "instruction": "GPT4Tools can handle various text and visual tasks.\nNew input: detect the dog\n",
    "input": "",
    "output": "Thought: Do I need to use a tool? Yes\nAction: Detect the Give Object\nAction Input: a.png, dog\n"
    "Observation:\n",
}


@pytest.fixture(scope="module")
def tok(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


def _trained_text(tok, sample) -> str:
    return tok.decode([i for i, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX])


def test_gpt4tools_template_renders_published_training_text():
    t = load_template("gpt4tools")
    assert t.render(RECORD["instruction"], "", RECORD["output"]) == (
        RECORD["instruction"] + "\n### ASSISTANT:\n" + RECORD["output"]
    )
    assert t.render("x", "y") == "x\n### USER: y\n### ASSISTANT:\n"
    v = load_template("gpt4tools_vicuna")
    assert v.render("do it", "", "ok") == "USER: do itASSISTANT: ok"


@pytest.mark.parametrize("name", ["gpt4tools", "gpt4tools_vicuna", "vicuna_v1.1", "vicuna_v1.5"])
def test_response_only_masks_the_prompt_and_trains_response_plus_eos(tok, name):
    template = load_template(name)
    sample, truncated = tokenize_sample(tok, template, RECORD, cutoff_len=1024)
    assert not truncated
    assert sample["input_ids"][0] == tok.bos_token_id and sample["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(sample["input_ids"], skip_special_tokens=True) == template.render(
        RECORD["instruction"], "", RECORD["output"]
    )
    # every response character is trained; a token straddling the boundary (" Thought") counts as response
    trained = _trained_text(tok, sample)
    assert trained.endswith(RECORD["output"] + tok.eos_token) and not trained[: -len(RECORD["output"]) - 4].strip()
    n_masked = sum(1 for x in sample["labels"] if x == IGNORE_INDEX)
    masked = tok.decode(sample["input_ids"][:n_masked], skip_special_tokens=True)
    prompt = template.render(RECORD["instruction"])
    assert prompt.startswith(masked) and not prompt[len(masked) :].strip()


def test_train_on_inputs_keeps_every_label(tok):
    sample, _ = tokenize_sample(tok, load_template("gpt4tools"), RECORD, 1024, train_on_inputs=True)
    assert sample["labels"] == sample["input_ids"]
    assert sample["attention_mask"] == [1] * len(sample["input_ids"])


def test_with_input_field_uses_prompt_input(tok):
    rec = {**RECORD, "input": "extra context"}
    sample, _ = tokenize_sample(tok, load_template("gpt4tools"), rec, 1024)
    text = tok.decode(sample["input_ids"], skip_special_tokens=True)
    assert "### USER: extra context\n### ASSISTANT:\n" in text
    assert _trained_text(tok, sample) == RECORD["output"] + tok.eos_token


def test_truncation_drops_eos_and_is_counted(tok):
    template = load_template("gpt4tools")
    full, _ = tokenize_sample(tok, template, RECORD, 1024)
    n = len(full["input_ids"])
    cut, truncated = tokenize_sample(tok, template, RECORD, n - 3)
    assert truncated and len(cut["input_ids"]) == n - 3 and cut["input_ids"][-1] != tok.eos_token_id
    # exactly the text length: it fits but its EOS does not -> counted as truncated, no EOS (published rule)
    exact, truncated = tokenize_sample(tok, template, RECORD, n - 1)
    assert truncated and exact["input_ids"] == full["input_ids"][:-1]
    # a cutoff inside the prompt leaves nothing to train: dropped and reported
    samples, stats = tokenize_records(tok, template, [RECORD, RECORD], cutoff_len=8)
    assert samples == [] and stats.dropped_no_labels == 2 and stats.truncated == 2
    assert "2 (100.0%) truncated at cutoff_len=8" in stats.summary(8)


def test_published_length_rule_without_offsets(tok, monkeypatch):
    """Tokenizers without offsets: mask len(tokenize(prompt)) tokens, as alpaca-lora did."""
    monkeypatch.setattr(tk, "_supports_offsets", lambda tokenizer: False)
    template = load_template("gpt4tools")
    sample, _ = tokenize_sample(tok, template, RECORD, 1024)
    n_prompt = len(tok(template.render(RECORD["instruction"]))["input_ids"])
    assert sample["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert all(x != IGNORE_INDEX for x in sample["labels"][n_prompt:])


def test_stats_summary(tok):
    samples, stats = tokenize_records(tok, load_template("gpt4tools"), [RECORD] * 3, 1024)
    assert len(samples) == stats.kept == 3 and stats.truncated == 0
    assert stats.tokens == 3 * len(samples[0]["input_ids"]) and stats.label_tokens > 0


CHAIN = {
    "instruction": "GPT4Tools can handle various text and visual tasks.\nNew input: edges then a cat\n"
    "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: a.png\n"
    "Observation: image/qzkfjwpe.png\n",
    "input": "",
    "output": "Thought: Do I need to use a tool? Yes\nAction: Generate Image Condition On Canny Image\n"
    "Action Input: image/qzkfjwpe.png, a cat\nObservation:\nResult saved as image/xvbnmlkj.png\n"
    "Thought: Do I need to use a tool? No\nAI: Result saved as image/xvbnmlkj.png\n\n",
}


def test_observation_spans_cover_each_tool_result_only():
    from g4t.prompts import observation_spans

    text = CHAIN["instruction"] + CHAIN["output"]
    results = [text[a:b] for a, b in observation_spans(text)]
    assert results == [" image/qzkfjwpe.png", "\nResult saved as image/xvbnmlkj.png"]
    assert observation_spans("Thought: x\nObservation:") == []  # a bare marker has no result
    tail = "Observation: a tail\nwithout a thought\n\n### ASSISTANT:\n"  # stops at a blank line (template)
    assert [tail[a:b] for a, b in observation_spans(tail)] == [" a tail\nwithout a thought"]


@pytest.mark.parametrize("train_on_inputs", [False, True])
def test_masking_observations_drops_only_the_tool_results(tok, train_on_inputs):
    t = load_template("gpt4tools")
    kept, _ = tokenize_sample(tok, t, CHAIN, 1024, train_on_inputs=train_on_inputs)
    masked, _ = tokenize_sample(tok, t, CHAIN, 1024, train_on_inputs=train_on_inputs, train_on_observations=False)
    assert masked["input_ids"] == kept["input_ids"]
    full, trained = _trained_text(tok, kept), _trained_text(tok, masked)
    assert "Result saved as image/xvbnmlkj.png\nThought" in full
    # the result is gone from the loss, but the final answer that copies it is still trained
    assert trained.count("xvbnmlkj") == 1 and "AI: Result saved as image/xvbnmlkj.png" in trained
    assert "Observation:" in trained and "Action Input: image/qzkfjwpe.png, a cat" in trained
    assert ("Observation: image/qzkfjwpe.png" in full) is train_on_inputs
    assert trained.count("qzkfjwpe") == 1  # only where the model copies it into its action input


def test_train_on_observations_flag_and_old_runs_resume(tmp_path):
    from g4t.cli import parse_args
    from g4t.train.config import LoraTrainConfig
    from g4t.train.trainer import run_differences

    (cfg,) = parse_args(LoraTrainConfig, args=["--base_model", "m", "--train_on_observations", "False"])
    assert cfg.train_on_observations is False
    (default,) = parse_args(LoraTrainConfig, args=["--base_model", "m"])
    saved = {k: v for k, v in default.to_dict().items() if k != "train_on_observations"}  # saved before the flag
    assert run_differences(default, saved) == []
    assert run_differences(cfg, saved) == ["--train_on_observations None -> False"]


CHITCHAT = {
    "instruction": "GPT4Tools can handle various text and visual tasks.\nPrevious conversation:\n\n"
    "Human: Provide an image named a.png. Description: a dog.\nAI: Received.\n\nNew input: Btw what is 9 plus 34?\n",
    "input": "",
    "output": "Thought: Do I need to use a tool? No\nAI: 9 plus 34 is 43.\n",
}
RELAY = {
    "instruction": CHITCHAT["instruction"].replace("Btw what is 9 plus 34?", "edges please")
    + "Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: a.png\n"
    "Observation: image/qzkfjwpe.png\n",
    "input": "",
    "output": "Thought: Do I need to use a tool? No\nAI: image/qzkfjwpe.png\n\n",
}


def test_direct_answer_span_is_the_chitchat_text_only():
    from g4t.prompts import direct_answer_span

    a, b = direct_answer_span(CHITCHAT["instruction"], CHITCHAT["output"])
    assert CHITCHAT["output"][a:b] == " 9 plus 34 is 43."
    assert direct_answer_span(RELAY["instruction"], RELAY["output"]) is None  # relays a tool result
    assert direct_answer_span(CHAIN["instruction"], CHAIN["output"]) is None  # calls a tool
    assert direct_answer_span("New input: hi\n", "Thought: Do I need to use a tool? No\nAI: \n") is None  # empty


def test_masking_chitchat_keeps_the_decision_and_the_end(tok):
    t = load_template("gpt4tools")
    kept, _ = tokenize_sample(tok, t, CHITCHAT, 1024)
    masked, _ = tokenize_sample(tok, t, CHITCHAT, 1024, train_on_chitchat=False)
    assert masked["input_ids"] == kept["input_ids"]
    assert "43" in _trained_text(tok, kept)
    trained = _trained_text(tok, masked)
    assert (
        "Do I need to use a tool? No" in trained and "AI:" in trained and "43" not in trained and "plus" not in trained
    )
    assert masked["labels"][-1] == kept["labels"][-1] == tok.eos_token_id  # the answer still ends
    for record in (RELAY, CHAIN):  # tool-use answers are untouched
        assert (
            tokenize_sample(tok, t, record, 1024, train_on_chitchat=False)[0]
            == tokenize_sample(tok, t, record, 1024)[0]
        )
