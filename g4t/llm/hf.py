"""Local transformers causal LM (+ optional peft LoRA, 8-bit / 4-bit) with batched generation."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence

from g4t.llm.base import (
    Completion,
    GenerationConfig,
    ModelLoadError,
    OnResult,
    complete_in_batches,
    stream_until_stop,
    truncate_at_stop,
)
from g4t.llm.prefix_cache import PrefixCache
from g4t.llm.prompt_lookup import greedy_lookup_decode
from g4t.precision import DTypeName, dtype_label, quantization_config, resolve_dtype

__all__ = ["HFBackend", "load_model"]

logger = logging.getLogger(__name__)


def _load_error(what: str, name: str, err: Exception) -> ModelLoadError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
    return ModelLoadError(
        f"Could not load the {what} {name!r}: {reason}\n"
        f"If this machine cannot reach the Hugging Face Hub, download the model elsewhere and pass its local "
        f"directory (e.g. --base_model /models/vicuna-13b-v1.1 --lora_model /models/gpt4tools-lora), or run the "
        f"agent on an OpenAI-compatible server instead (--openai_base_url http://localhost:8000/v1 --openai_model NAME)."
    )


def load_model(
    base_model: str,
    lora_model: str | None = None,
    device: str = "cpu",
    dtype: DTypeName = "auto",
    load_in_8bit: bool = False,
    load_in_4bit: bool = False,
    merge_lora: bool = False,
):
    """Load a causal LM and its tokenizer, optionally with a peft LoRA attached or merged.

    Args:
        base_model: Hugging Face id, local folder, ``.gguf`` file or packaged short name (``smollm2``);
            see ``g4t.llm.sources.resolve_model``.
        lora_model: peft adapter id or path; None (or "none") for the base model alone; a shipped model's
            short name (``gpt4tools-smollm2``) on its own base means that shipped model.
        device: torch device for the whole model (``cpu``, ``cuda``, ``cuda:1``...).
        dtype: weight dtype; ``auto`` follows ``g4t.precision.resolve_dtype`` (bf16 on CUDA and on CPUs
            with native bf16 units, fp16 on older GPUs, fp32 elsewhere).
        load_in_8bit: quantise linear layers to int8 with bitsandbytes.
        load_in_4bit: quantise to 4-bit NF4 with bitsandbytes (QLoRA-style).
        merge_lora: merge the adapter into the weights (faster generation; not with 8/4-bit).

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left.

    Raises:
        ModelLoadError: with advice on local paths / OpenAI-compatible servers.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from g4t.llm.sources import SHIPPED, resolve_model

    if lora_model and lora_model.lower() in SHIPPED:  # a shipped model named as the adapter on its base
        shipped = SHIPPED[lora_model.lower()]
        if base_model.lower() not in (shipped.base, lora_model.lower()):
            raise ModelLoadError(
                f"--lora_model {lora_model} is a fine-tune of --base_model {shipped.base}, not of {base_model}: "
                f"use --base_model {shipped.base} --lora_model {lora_model} (or --base_model {lora_model} "
                "--lora_model none)"
            )
        base_model, lora_model = lora_model, None
    try:
        source = resolve_model(base_model)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    torch_dtype = resolve_dtype(dtype, device)
    logger.info(f"LLM {base_model}: {dtype_label(torch_dtype)} weights on {device} (--dtype {dtype})")
    kwargs = {"dtype": torch_dtype}
    if load_in_8bit or load_in_4bit:
        kwargs["quantization_config"] = quantization_config(load_in_8bit, load_in_4bit, torch_dtype)
        kwargs["device_map"] = {"": device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise _load_error("tokenizer of", base_model, e) from e
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise _load_error("base model", base_model, e) from e
    if "device_map" not in kwargs:
        model.to(device)
    if lora_model and lora_model.lower() != "none":
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, lora_model)
        except (OSError, ValueError) as e:
            raise _load_error("LoRA adapter", lora_model, e) from e
        if merge_lora and not (load_in_8bit or load_in_4bit):
            model = model.merge_and_unload()
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
    return model, tokenizer


class _TokenQueue:
    """A transformers streamer that hands each step's new token ids to a queue (the prompt is skipped)."""

    def __init__(self, tokens: queue.Queue) -> None:
        self.tokens = tokens
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first puts the prompt
            self.prompt_seen = True
            return
        self.add(value.reshape(-1).tolist())

    def add(self, ids: list[int]) -> None:
        """New token ids (from a decoder that does not put the prompt first)."""
        self.tokens.put(ids)

    def end(self) -> None:
        pass


class _Cancelled:
    """Stopping criterion: true once ``event`` is set (the stream's consumer went away)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


_DONE = object()


def _processors(constraints, start: int):
    """A ``LogitsProcessorList`` with the ``ToolNameProcessor`` of ``constraints`` (new tokens from ``start``)."""
    from transformers import LogitsProcessorList

    from g4t.llm.tool_constraint import ToolNameProcessor

    return LogitsProcessorList([ToolNameProcessor(constraints, start)])


class HFBackend:
    """Generation with a local model: batches for batch inference, one prompt at a time for the agent.

    * One prompt (an agent step; ``stream``): decoding starts from the KV cache of the longest token prefix
      it shares with a recent prompt + completion (``PrefixCache``), so an agent step computes only what
      is new since the previous step, and a new conversation only what follows the tool list. Greedy
      decoding checks prompt-lookup drafts (``greedy_lookup_decode``: the reply copies tool names and file
      names from the prompt) several tokens per forward pass; sampling, beams and generation configs with
      logits processors go through ``model.generate``. Greedy outputs are those of ``model.generate``
      with a full prefill.
    * ``gen.constrain_tools``: each ``Action:`` line may only name a tool listed in its prompt
      (``g4t.llm.tool_constraint``): ``model.generate`` gets a ``ToolNameProcessor``, and prompt-lookup
      decoding takes the same masked choice at every position it checks (drafts and prefix cache stay on).
    * Several prompts: ``model.generate`` on left-padded batches of ``batch_size``, sorted longest first; each
      sequence stops at its own stop string or EOS; completions come back in input order. (A hand-written
      slot-cache decoder was measured against this on SmolLM2 and lost; ``bench/inference_throughput.py``.)

    Args:
        model: a causal LM (or peft model) from ``load_model``.
        tokenizer: its tokenizer (left padding).
        batch_size: prompts per batch.
        prefix_cache: prompt KV caches kept for reuse (0: none, every prompt is prefilled in full).
        prompt_lookup: draft tokens checked per forward pass when one prompt is decoded greedily
            (``g4t.llm.prompt_lookup``; 0: ``model.generate``, one token per pass).
    """

    def __init__(self, model, tokenizer, batch_size: int = 8, prefix_cache: int = 4, prompt_lookup: int = 10) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.prefix_cache = PrefixCache(prefix_cache) if prefix_cache > 0 else None
        self.prompt_lookup = prompt_lookup

    @classmethod
    def from_pretrained(
        cls, base_model: str, lora_model: str | None = None, batch_size: int = 8, **kwargs
    ) -> HFBackend:
        model, tokenizer = load_model(base_model, lora_model, **kwargs)
        return cls(model, tokenizer, batch_size)

    def _constraints(self, prompts: Sequence[str], gen: GenerationConfig):
        """Per prompt, its ``ToolNameConstraint`` (None: no tool list); None when nothing is constrained."""
        if not gen.constrain_tools:
            return None
        from g4t.llm.tool_constraint import constraints_for

        found = constraints_for(self.tokenizer, prompts)
        return found if any(c is not None for c in found) else None

    def _generation_kwargs(self, gen: GenerationConfig, stop: Sequence[str]) -> dict:
        kwargs = {
            "max_new_tokens": gen.max_new_tokens,
            "num_beams": gen.num_beams,
            "do_sample": gen.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if gen.do_sample:
            kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
        else:  # silence "temperature is set but do_sample=False" warnings from model generation configs
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        return kwargs

    def generate(
        self, prompts: Sequence[str], stop: Sequence[str] = (), gen: GenerationConfig | None = None
    ) -> list[str]:
        gen = gen or GenerationConfig()
        stop = [s for s in stop if s]
        if len(prompts) == 1:
            return [self._generate_one(prompts[0], stop, gen)]
        return self._generate_hf(prompts, stop, gen)

    def prompt_token_budget(self, gen: GenerationConfig | None = None) -> int | None:
        """Prompt tokens that leave room for ``gen.max_new_tokens`` in the model's context window
        (``max_position_embeddings``; None when the config has none). The agent trims history to fit."""
        window = getattr(self.model.config, "max_position_embeddings", None)
        if not window:
            return None
        return max(1, window - (gen or GenerationConfig()).max_new_tokens)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as a prompt (special tokens included)."""
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def complete(
        self,
        prompts: Sequence[str],
        stop: Sequence[str] = (),
        gen: GenerationConfig | None = None,
        on_result: OnResult | None = None,
    ) -> list[Completion]:
        """Backend contract, per sample: ``batch_size`` prompts per ``generate`` call, longest first across
        all the prompts; ``on_result`` hears each result as its batch finishes. Errors (out of memory...) raise.
        """
        return complete_in_batches(self.generate, prompts, stop, gen, on_result, self.batch_size, longest_first=True)

    def stream(self, prompt: str, stop: Sequence[str] = (), gen: GenerationConfig | None = None) -> Iterator[str]:
        """The completion of ``prompt`` as text deltas, generated on a worker thread.

        The deltas concatenate to ``generate([prompt], stop, gen)[0]`` (cut at the first stop string, which
        may span deltas); closing the generator stops generation after the token being computed.
        """
        gen = gen or GenerationConfig()
        stop = [s for s in stop if s]
        tokens: queue.Queue = queue.Queue()
        cancel = threading.Event()

        def work() -> None:
            try:
                self._generate_one(prompt, stop, gen, _TokenQueue(tokens), cancel)
            except BaseException as e:  # handed to the consumer, raised there
                tokens.put(e)
            finally:
                tokens.put(_DONE)

        worker = threading.Thread(target=work, name="g4t-hf-stream", daemon=True)
        worker.start()
        try:
            yield from stream_until_stop(self._deltas(tokens), stop)
        finally:
            cancel.set()
            worker.join()

    def _deltas(self, tokens: queue.Queue) -> Iterator[str]:
        """Text deltas of the token ids arriving on ``tokens``; the newest token's text (and an unfinished
        UTF-8 character) is held back until the next token settles how it decodes."""
        ids: list[int] = []
        sent = ""
        while (item := tokens.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            ids.extend(item)
            settled = self.tokenizer.decode(ids[:-1], skip_special_tokens=True).rstrip("\ufffd")
            if len(settled) > len(sent) and settled.startswith(sent):
                yield settled[len(sent) :]
                sent = settled
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if not text.startswith(sent):  # a tokenizer whose decoding of a prefix is no prefix of the whole
            logger.warning("streamed text diverged from the final decoding; the stream differs from generate")
        yield text[len(sent) :] if text.startswith(sent) else ""

    def _generate_one(self, prompt: str, stop: Sequence[str], gen: GenerationConfig, streamer=None, cancel=None):
        """One prompt, from the longest cached token prefix (prompt-lookup decoding when greedy, else
        ``model.generate``); stores the new cache.

        With ``gen.constrain_tools`` the same paths decode: prompt-lookup decoding picks the best allowed
        token at each position it checks (``ToolNameConstraint.choose``), ``model.generate`` gets a
        ``ToolNameProcessor``; both give the text of ``model.generate`` with the processor.
        """
        import torch

        ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if not ids:
            return self._generate_hf([prompt], stop, gen)[0]
        constraints = self._constraints([prompt], gen)
        constraint = constraints[0] if constraints else None
        if self.prompt_lookup and self._plain_greedy(gen):
            return self._lookup_one(ids, stop, gen, streamer, cancel, constraint)
        device = next(self.model.parameters()).device
        reuse = self.prefix_cache is not None and gen.num_beams == 1
        kwargs = self._generation_kwargs(gen, stop)
        if constraint is not None:
            kwargs["logits_processor"] = _processors([constraint], len(ids))
        if cancel is not None:
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancel)])
        input_ids = torch.tensor([ids], device=device)
        with torch.inference_mode():
            cached, past = self.prefix_cache.take(ids) if reuse else (0, None)
            if past is not None:
                kwargs["past_key_values"] = past
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                streamer=streamer,
                return_dict_in_generate=True,
                **kwargs,
            )
        new = out.sequences[0, len(ids) :].tolist()
        if reuse and out.past_key_values is not None:
            held = out.past_key_values.get_seq_length()  # prompt + every new token but the last
            if len(ids) <= held <= len(ids) + len(new):
                self.prefix_cache.put(ids + new[: held - len(ids)], out.past_key_values)
        return truncate_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), stop)

    # generation-config fields that change greedy choices; with any of them set, model.generate decodes
    _PROCESSORS = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens",
                   "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id", "min_length",
                   "min_new_tokens", "sequence_bias", "encoder_repetition_penalty")  # fmt: skip

    def _plain_greedy(self, gen: GenerationConfig) -> bool:
        """Greedy decoding with nothing that ``greedy_lookup_decode`` would not reproduce."""
        if gen.do_sample or gen.num_beams != 1:
            return False
        config = getattr(self.model, "generation_config", None)
        neutral = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                   "min_length": 0, "min_new_tokens": 0}  # fmt: skip
        return not any(getattr(config, k, None) not in (None, neutral.get(k)) for k in self._PROCESSORS)

    def _eos_ids(self) -> list[int]:
        config_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids = config_eos if isinstance(config_eos, list) else [config_eos]
        return [i for i in [*ids, self.tokenizer.eos_token_id] if i is not None]

    def _lookup_one(
        self, ids: list[int], stop: Sequence[str], gen: GenerationConfig, streamer, cancel, constraint=None
    ) -> str:
        """Greedy decoding of one prompt with prompt-lookup drafts, from the longest cached prefix
        (``constraint``: a ``ToolNameConstraint`` that chooses each token)."""
        import torch
        from transformers import DynamicCache

        def stopped(new: list[int]) -> bool:
            return bool(stop) and any(s in self.tokenizer.decode(new, skip_special_tokens=True) for s in stop)

        with torch.inference_mode():
            _, past = self.prefix_cache.take(ids) if self.prefix_cache is not None else (0, None)
            cache = past if past is not None else DynamicCache(config=self.model.config)
            new = greedy_lookup_decode(
                self.model,
                ids,
                cache,
                gen.max_new_tokens,
                self._eos_ids(),
                stopped,
                streamer.add if streamer is not None else None,
                cancel.is_set if cancel is not None else None,
                num_draft=self.prompt_lookup,
                choose=constraint.choose if constraint is not None else None,
            )
        if self.prefix_cache is not None and new:
            self.prefix_cache.put(ids + new[:-1], cache)
        return truncate_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), stop)

    def _generate_hf(self, prompts: Sequence[str], stop: Sequence[str], gen: GenerationConfig) -> list[str]:
        import torch

        kwargs = self._generation_kwargs(gen, stop)
        device = next(self.model.parameters()).device
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        constraints = self._constraints(prompts, gen)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        results: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(device)
            if constraints is not None:  # left padding: every row's new tokens start at the padded width
                rows = [constraints[i] for i in idx]
                if any(c is not None for c in rows):
                    kwargs["logits_processor"] = _processors(rows, batch["input_ids"].shape[1])
                else:
                    kwargs.pop("logits_processor", None)
            with torch.inference_mode():
                out = self.model.generate(**batch, **kwargs)
            new_tokens = out[:, batch["input_ids"].shape[1] :]
            for i, row in zip(idx, new_tokens, strict=True):
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                results[i] = truncate_at_stop(text, stop)
        return results
