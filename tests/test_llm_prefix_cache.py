"""Prefix KV reuse between agent steps (``g4t.llm.prefix_cache`` inside ``HFBackend``): same outputs, less prefill."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from g4t.llm.base import GenerationConfig
from g4t.llm.sources import PACKAGED

GEN = GenerationConfig(max_new_tokens=12)
SYSTEM = "GPT4Tools can handle various text and visual tasks. TOOLS: > Get Photo Description: the image_path.\n" * 3


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    from g4t.llm.hf import load_model

    model, tokenizer = load_model(tiny_llama)
    lengths: list[int] = []  # positions of each forward pass
    handle = model.get_input_embeddings().register_forward_pre_hook(
        lambda m, inputs: lengths.append(inputs[0].shape[-1])
    )
    yield model, tokenizer, lengths
    handle.remove()


def _prefill(lengths: list[int], call):
    """``call()``'s result and the positions of its first forward pass (the prefill)."""
    lengths.clear()
    result = call()
    return result, lengths[0]


def _steps(backend, first: str, n: int = 3) -> tuple[list[str], list[int]]:
    """An agent-like turn: each prompt is the previous one + its reply + an observation."""
    prompt, replies, prompts = first, [], []
    for k in range(n):
        prompts.append(prompt)
        replies.append(backend.generate([prompt], stop=["\nObservation:"], gen=GEN)[0])
        prompt = f"{prompt}{replies[-1]}\nObservation: image/{k:08x}.png\nThought:"
    return replies, prompts


def test_agent_steps_reuse_the_previous_step_and_give_the_same_replies(tiny):
    from g4t.llm.hf import HFBackend

    model, tokenizer, lengths = tiny
    plain, cached = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0), HFBackend(model, tokenizer)
    expected, prompts = _steps(plain, SYSTEM + "Human: detect the dog\n")
    lengths.clear()
    assert _steps(cached, SYSTEM + "Human: detect the dog\n") == (expected, prompts)
    cache = cached.prefix_cache
    full = [len(tokenizer(p)["input_ids"]) for p in prompts]
    assert cache.reused_tokens > 0 and cache.reused_tokens + cache.computed_tokens == sum(full)
    # Step 3 computes only what step 2's prompt + reply does not already hold.
    (reply,), computed = _prefill(lengths, lambda: cached.generate([prompts[2]], ["\nObservation:"], GEN))
    assert reply == expected[2]
    assert computed == 1  # the same prompt again: only its last position (for the next token's logits)
    step2 = len(tokenizer(prompts[1])["input_ids"])
    assert step2 < full[2]
    fresh = HFBackend(model, tokenizer)
    fresh.generate([prompts[1]], ["\nObservation:"], GEN)
    (reply,), computed = _prefill(lengths, lambda: fresh.generate([prompts[2]], ["\nObservation:"], GEN))
    assert reply == expected[2] and computed <= full[2] - step2 + 2  # the new lines (+ a re-tokenised boundary)


def test_the_shared_system_prefix_serves_other_users_and_entries_survive(tiny):
    from g4t.llm.hf import HFBackend

    model, tokenizer, lengths = tiny
    plain, cached = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0), HFBackend(model, tokenizer)
    a, b = SYSTEM + "Human: who are you?\n", SYSTEM + "Human: make it red\n"
    cached.generate([a], gen=GEN)
    (reply_b,), computed = _prefill(lengths, lambda: cached.generate([b], gen=GEN))
    assert reply_b == plain.generate([b], gen=GEN)[0]
    assert computed < len(tokenizer(b)["input_ids"]) // 4  # user B reused the system prompt of user A
    (reply_a,), computed = _prefill(lengths, lambda: cached.generate([a], gen=GEN))
    assert reply_a == plain.generate([a], gen=GEN)[0] and computed == 1  # A's entry was copied, not consumed


def test_beams_sampling_and_batches_still_work_with_the_cache(tiny):
    from g4t.llm.hf import HFBackend

    model, tokenizer, _ = tiny
    plain, cached = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0), HFBackend(model, tokenizer)
    prompt = SYSTEM + "Human: hi\n"
    beams = GenerationConfig(max_new_tokens=6, num_beams=2)
    assert cached.generate([prompt], gen=beams) == plain.generate([prompt], gen=beams)
    assert len(cached.prefix_cache) == 0  # beam caches are not kept
    cached.generate([prompt], gen=GEN)
    assert cached.generate([prompt + "x", prompt + "y"], gen=GEN) == plain.generate(
        [prompt + "x", prompt + "y"], gen=GEN
    )


def test_concurrent_users_get_their_own_answers(tiny):
    from g4t.llm.hf import HFBackend

    model, tokenizer, _ = tiny
    plain, cached = (
        HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0),
        HFBackend(model, tokenizer, prefix_cache=3),
    )
    firsts = [SYSTEM + f"Human: request number {i}\n" for i in range(4)]
    expected = [_steps(plain, f, 2)[0] for f in firsts]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda f: _steps(cached, f, 2)[0], firsts)) == expected
    assert len(cached.prefix_cache) <= 3


def test_bounds_and_what_is_kept():
    import torch
    from transformers import DynamicCache

    from g4t.llm.prefix_cache import PrefixCache

    def cache_of(n: int) -> DynamicCache:
        return DynamicCache([(torch.randn(1, 2, n, 4), torch.randn(1, 2, n, 4)) for _ in range(2)])

    per_token = 2 * 2 * (2 * 4 * 4)  # layers * (k, v) * heads * dim * fp32 bytes
    pc = PrefixCache(max_entries=2, max_bytes=100 * per_token, min_tokens=2)
    assert pc.take([1, 2, 3]) == (0, None)
    assert not pc.put([1, 2, 3], cache_of(4))  # the cache does not hold exactly these positions
    assert not pc.put(list(range(101)), cache_of(101))  # over max_bytes on its own
    assert pc.put([1, 2, 3], cache_of(3)) and pc.put([1, 2, 3, 4, 5], cache_of(5))
    assert len(pc) == 1  # [1, 2, 3] is contained in the new entry
    n, past = pc.take([1, 2, 3, 4, 9])
    assert n == 4 and past.get_seq_length() == 4 and len(past.layers) == 2
    assert pc.take([1, 2, 3, 4, 5])[0] == 4  # at most len - 1: the model must compute the last position
    assert pc.take([7, 1, 2]) == (0, None) and pc.take([1, 5]) == (0, None)  # nothing, or under min_tokens
    pc.put([9, 9, 9], cache_of(3))
    pc.put([8, 8, 8], cache_of(3))
    assert len(pc) == 2 and pc.take([1, 2, 3, 4, 5, 6])[0] == 0  # least recently used went first
    assert pc.put(list(range(60)), cache_of(60)) and pc.nbytes <= 100 * per_token and len(pc) == 2


@pytest.mark.slow  # 29 s on the shared 2-core CPU: four prefills of ~600 tokens
@pytest.mark.skipif(PACKAGED["smollm2"].gguf_path() is None, reason="packaged SmolLM2 not installed")
def test_real_model_agent_steps_are_identical_with_reuse():
    """On SmolLM2-135M-Instruct: published agent prompt, 2 steps, with and without the cache."""
    from g4t.agent import STOP, Agent, Memory
    from g4t.llm.hf import HFBackend, load_model
    from g4t.prompts import Step, load_template
    from g4t.tools.registry import Toolbox

    model, tokenizer = load_model("smollm2", dtype="fp32")
    agent = Agent(HFBackend(model, tokenizer), Toolbox("Image2Canny_cpu,CropImage_cpu"), load_template("gpt4tools"))
    memory = Memory()
    memory.add_image("image/1a2b3c4d.png", "a dog on a sofa")
    steps = [[], [Step("Edge Detection On Image", "image/1a2b3c4d.png", "image/5e6f7a8b.png")]]
    prompts = [agent.build_prompt(memory, "Detect the edges of the image", s) for s in steps]
    gen = GenerationConfig(max_new_tokens=8)
    plain = HFBackend(model, tokenizer, prefix_cache=0, prompt_lookup=0)
    replies = [agent.backend.generate([p], STOP, gen)[0] for p in prompts]
    assert replies == [plain.generate([p], STOP, gen)[0] for p in prompts]
    cache = agent.backend.prefix_cache
    assert cache.computed_tokens - len(tokenizer(prompts[0])["input_ids"]) < 0.2 * len(
        tokenizer(prompts[1])["input_ids"]
    )
