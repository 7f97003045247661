"""Prompt-lookup decoding (``g4t.llm.prompt_lookup`` inside ``HFBackend``): greedy text, fewer forward passes."""

from __future__ import annotations

import pytest

from g4t.llm.base import GenerationConfig
from g4t.llm.prompt_lookup import draft_tokens

# Repetitive text, so the drafts have something to copy (the tiny model's greedy output repeats too).
PROMPT = ("Thought: Do I need to use a tool? Yes\nAction: Edge Detection On Image\nAction Input: image/1a2b.png\n"
          "Observation: image/5e6f.png\n") * 4 + "Human: detect the edges\n"  # fmt: skip


def test_drafts_copy_what_followed_the_latest_match_longest_ngram_first():
    assert draft_tokens([1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3], num_tokens=2) == [7, 8]  # latest occurrence
    assert draft_tokens([4, 4, 4, 4, 4, 4], num_tokens=2) == [4, 4]  # not the overlapping match with 1 after it
    assert draft_tokens([1, 2, 5, 9, 1, 2, 6, 1, 2], num_tokens=8) == [5, 9, 1, 2, 6, 1, 2]  # longest follow-up
    # "2 3 4" beats the later "3 4"
    assert draft_tokens([5, 2, 3, 4, 6, 3, 4, 1, 2, 3, 4], num_tokens=3, max_ngram=3) == [6, 3, 4]
    assert draft_tokens([5, 6, 7, 6, 1, 6], num_tokens=5, max_ngram=1) == [7, 6, 1, 6]  # n = 1
    assert draft_tokens([1, 2, 3, 4]) == [] and draft_tokens([7]) == [] and draft_tokens([]) == []


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from g4t.llm.hf import load_model

    model, tokenizer = load_model(tiny_llama)
    passes: list[int] = []
    handle = model.get_input_embeddings().register_forward_pre_hook(lambda m, i: passes.append(i[0].shape[-1]))
    yield model, tokenizer, passes
    handle.remove()


@pytest.mark.parametrize("stop", [[], ["\nObservation:"], ["Action"]])
@pytest.mark.parametrize("max_new_tokens", [1, 7, 40])
def test_same_text_as_generate_in_fewer_passes(tiny, stop, max_new_tokens):
    from g4t.llm.hf import HFBackend

    model, tokenizer, passes = tiny
    gen = GenerationConfig(max_new_tokens=max_new_tokens)
    plain = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0)  # model.generate
    lookup = HFBackend(model, tokenizer, prefix_cache=0)
    for prompt in (PROMPT, PROMPT + "AI:", "Hi."):
        expected = plain.generate([prompt], stop, gen)[0]
        passes.clear()
        assert lookup.generate([prompt], stop, gen)[0] == expected
        assert len(passes) <= max_new_tokens  # never more passes than tokens


def test_drafts_are_accepted_and_the_cache_is_kept_for_the_next_step(tiny):
    from g4t.llm.hf import HFBackend

    model, tokenizer, passes = tiny
    gen = GenerationConfig(max_new_tokens=40)
    plain = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0)
    lookup = HFBackend(model, tokenizer)
    text = PROMPT * 2
    passes.clear()
    reply = lookup.generate([text], gen=gen)[0]
    used = len(passes)
    assert reply == plain.generate([text], gen=gen)[0]
    assert used < len(tokenizer(reply, add_special_tokens=False)["input_ids"])  # passes that kept several tokens
    step2 = text + reply + "\nObservation: image/9c0d.png\nThought:"
    passes.clear()
    assert lookup.generate([step2], gen=gen)[0] == plain.generate([step2], gen=gen)[0]
    assert passes[0] < 20  # the first pass only computes the new lines: the cache held prompt + reply


def test_generation_config_processors_fall_back_to_generate(tiny, monkeypatch):
    from g4t.llm.hf import HFBackend

    model, tokenizer, _ = tiny
    backend = HFBackend(model, tokenizer)
    assert backend._plain_greedy(GenerationConfig())
    assert not backend._plain_greedy(GenerationConfig(do_sample=True)) and not backend._plain_greedy(
        GenerationConfig(num_beams=2)
    )
    monkeypatch.setattr(model.generation_config, "repetition_penalty", 1.3)
    assert not backend._plain_greedy(GenerationConfig())
    gen = GenerationConfig(max_new_tokens=12)
    expected = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0).generate([PROMPT], gen=gen)[0]
    assert backend.generate([PROMPT], gen=gen)[0] == expected
