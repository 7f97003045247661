"""``HFBackend.stream``: deltas that add up to ``generate``, cut at stop strings across deltas, prompt close."""

from __future__ import annotations

import threading

import pytest

from g4t.llm.base import GenerationConfig, stream_text

PROMPT = "GPT4Tools can handle various text and visual tasks. Human: describe image/1a2b3c4d.png\nAI:"


@pytest.fixture(scope="module")
def backend(tiny_llama):
    from g4t.llm.hf import HFBackend, load_model

    model, tokenizer = load_model(tiny_llama)
    return HFBackend(model, tokenizer)


def _streams() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "g4t-hf-stream"]


def test_deltas_add_up_to_generate_and_stop_strings_span_deltas(backend):
    gen = GenerationConfig(max_new_tokens=24)
    free = backend.generate([PROMPT], gen=gen)[0]
    deltas = list(backend.stream(PROMPT, gen=gen))
    assert len(deltas) > 3 and "".join(deltas) == free
    for stop in ([free[6:12]], [free[-5:]], ["never in the text"], [free[2:4], free[10:15]]):
        expected = backend.generate([PROMPT], stop, gen)[0]
        assert "".join(backend.stream(PROMPT, stop, gen)) == expected
        assert "".join(stream_text(backend, PROMPT, stop, gen)) == expected
    assert not _streams()


def test_closing_the_stream_stops_generation(backend):
    lengths: list[int] = []
    handle = backend.model.get_input_embeddings().register_forward_pre_hook(lambda m, i: lengths.append(1))
    try:
        stream = backend.stream(PROMPT + " more", gen=GenerationConfig(max_new_tokens=400))
        next(stream)
        stream.close()
        passes = len(lengths)
        assert not _streams()  # the worker has finished by the time close() returns
        assert passes < 50 and len(lengths) == passes  # it stopped after a few tokens, not 400
    finally:
        handle.remove()


def test_the_stream_reuses_the_previous_step_and_raises_generation_errors(backend, monkeypatch):
    gen = GenerationConfig(max_new_tokens=10)
    reply = backend.generate([PROMPT], gen=gen)[0]
    step2 = f"{PROMPT}{reply}\nObservation: image/5e6f7a8b.png\nThought:"
    before = backend.prefix_cache.computed_tokens
    text = "".join(backend.stream(step2, gen=gen))
    assert backend.prefix_cache.computed_tokens - before < len(backend.tokenizer(step2)["input_ids"]) // 2
    from g4t.llm.hf import HFBackend

    plain = HFBackend(backend.model, backend.tokenizer, prefix_cache=0, prompt_lookup=0)  # model.generate
    assert text == plain.generate([step2], gen=gen)[0]

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(backend.model, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(backend.stream(PROMPT, gen=gen))
    assert not _streams()
