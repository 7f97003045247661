"""Model-based indicators through their production loaders: a tiny random reward model (DebertaV2),
a tiny random CLIP, and the LLM judge against a local OpenAI-compatible HTTP server."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from g4t.prompts import human_response, image_history, render_training_prompt, tool_response
from g4t.selection.indicators import compute_indicators
from g4t.selection.judge import LLMJudge, parse_judge_score
from g4t.selection.models import ClipScorer, RewardScorer
from testkit.fake_openai import FakeServer, scripted

TOOLS = [("Edge Detection On Image", "useful when you want to detect the edge of the image.")]


def rec(output: str, image: str = "image/abcdefgh.png", caption: str = "a dog on a red sofa") -> dict:
    history = image_history(image, caption) if image else ""
    return {
        "instruction": render_training_prompt(TOOLS, history, "detect the edges of the dog"),
        "input": "",
        "output": output,
    }


RECORDS = [
    rec(tool_response("Edge Detection On Image", "image/abcdefgh.png")),
    rec(human_response("Result saved as image/ijklmnop.png")),
    rec("nonsense", image="", caption=""),
]


def _word_tokenizer(path, pair_sep: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [r["output"] for r in RECORDS] + ["detect the edges of the dog", "a dog on a red sofa"]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair=f"[CLS] $A {pair_sep} $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=128,
    )
    fast.save_pretrained(str(path))
    return fast


@pytest.fixture(scope="module")
def tiny_reward(tmp_path_factory):
    """A random ``DebertaV2ForSequenceClassification`` (1 logit) with a local tokenizer, saved to disk."""
    import torch
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    path = tmp_path_factory.mktemp("reward")
    tok = _word_tokenizer(path, "[SEP]")
    cfg = DebertaV2Config(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    DebertaV2ForSequenceClassification(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random ``CLIPModel`` + ``CLIPProcessor`` (byte-level CLIP tokenizer, 32 px images)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from testkit.tiny_vision import build_clip_tokenizer

    path = tmp_path_factory.mktemp("clip")
    tok = build_clip_tokenizer(path / "tok")
    proc = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok,
    )
    proc.save_pretrained(str(path))
    cfg = CLIPConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 32,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(path)
    return str(path)


def test_reward_scores_request_output_pairs(tiny_reward, tmp_path):
    scorer = RewardScorer(tiny_reward, max_length=64, device="cpu")
    scores = scorer.score(RECORDS)
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    assert len(set(np.round(scores, 5))) > 1  # different outputs, different rewards
    # the logit times 10: the model's own forward pass on the same pair
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok, model = (
        AutoTokenizer.from_pretrained(tiny_reward),
        AutoModelForSequenceClassification.from_pretrained(tiny_reward),
    )
    enc = tok("detect the edges of the dog", RECORDS[0]["output"], return_tensors="pt", truncation=True, max_length=64)
    with torch.no_grad():
        expected = 10 * model(**enc).logits[0, 0].item()
    assert scores[0] == pytest.approx(expected, abs=1e-4)
    # cached: a second pass over the same records does not reload the model
    compute_indicators(RECORDS, [scorer], str(tmp_path))
    fresh = RewardScorer(tiny_reward, max_length=64, device="cpu")
    again = compute_indicators(RECORDS, [fresh], str(tmp_path))["reward"]
    assert fresh._model is None and np.allclose(again, scores, atol=1e-4)


def test_clip_scores_only_existing_images(tiny_clip, tmp_path):
    (tmp_path / "image").mkdir()
    Image.new("RGB", (40, 40), "red").save(tmp_path / "image" / "abcdefgh.png")
    recs = [RECORDS[0], rec("x", image="image/missing0.png"), RECORDS[2]]
    scores = ClipScorer(tiny_clip, image_root=str(tmp_path), device="cpu").score(recs)
    assert math.isfinite(scores[0]) and -100 <= scores[0] <= 100
    assert math.isnan(scores[1]) and math.isnan(scores[2])  # missing file, no image at all


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("85\nGood.", 85.0),
        ("Score: 100 - perfect", 100.0),
        ("I rate it 7 out of 10", 7.0),
        ("no idea", math.nan),
        ("250 then 40", 40.0),
    ],
)
def test_parse_judge_score(reply, value):
    got = parse_judge_score(reply)
    assert (math.isnan(got) and math.isnan(value)) or got == value


def _judge_reply(prompt: str) -> str:
    return "90\nvalid tool call" if "Action: Edge Detection" in prompt else "20\nnot a tool call"


def test_llm_judge_through_local_openai_server():
    with FakeServer(scripted(_judge_reply)) as server:
        judge = LLMJudge("judge-model", base_url=server.base_url, api_key="k")
        scores = judge.score(RECORDS)
    assert scores == [90.0, 20.0, 20.0]
    body = server.requests[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert "Request: detect the edges of the dog" in body["messages"][0]["content"]
    assert "GPT4Tools has access" not in body["messages"][0]["content"]  # the shared tool prompt is left out
