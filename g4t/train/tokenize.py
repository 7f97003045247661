"""Tokenize records through a conversation template, with label masking and EOS as published.

Lifted from alpaca-lora's ``tokenize`` / ``generate_and_tokenize_prompt`` closures (the GPT4Tools v1
trainer) into plain functions:

* the full text ``template.render(instruction, input, output)`` is tokenized, truncated at
  ``cutoff_len``, and gets an EOS token when it is not truncated (published: always, whatever
  ``--add_eos_token`` says);
* labels are a copy of the ids; unless ``train_on_inputs``, the prompt part gets ``-100``. The
  boundary is found with the tokenizer's character offsets (exact even when a token straddles the
  prompt/response boundary); tokenizers without offsets fall back to the published rule "mask the
  first ``len(tokenize(prompt))`` tokens";
* unless ``train_on_observations``, the tool results after each ``Observation:`` get ``-100`` too
  (``prompts.observation_spans``): the model never writes them, and generated results are random
  file names whose loss is noise (not published; see ``docs/training.md``);
* unless ``train_on_chitchat``, the text of a final answer given without any tool in its turn
  (``prompts.direct_answer_span``) gets ``-100``: the decision ``Thought: ... No`` / ``AI:`` and the
  EOS stay trained, the world-knowledge answer does not (not published; see ``docs/training.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from g4t.prompts import PromptTemplate, direct_answer_span, observation_spans

__all__ = ["IGNORE_INDEX", "TokenizeStats", "tokenize_records", "tokenize_sample"]

IGNORE_INDEX = -100  # label value the loss ignores
logger = logging.getLogger(__name__)


@dataclass
class TokenizeStats:
    """What tokenization did to a split (logged before training, saved in training_config.json).

    Attributes:
        samples: records in.
        kept: samples with at least one trained label (the others are dropped).
        truncated: samples cut at ``cutoff_len`` (they get no EOS, as published).
        dropped_no_labels: samples whose response was cut off entirely (response-only loss).
        tokens: total tokens of the kept samples.
        label_tokens: tokens that carry a loss.
        max_len: longest kept sample, in tokens.
        longest_untruncated: longest sample before truncation (to pick ``cutoff_len``).
    """

    samples: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_no_labels: int = 0
    tokens: int = 0
    label_tokens: int = 0
    max_len: int = 0
    longest_untruncated: int = 0
    lengths: list[int] = field(default_factory=list, repr=False)

    def summary(self, cutoff_len: int, split: str = "train") -> str:
        pct = 100.0 * self.truncated / max(1, self.samples)
        mean = self.tokens / max(1, self.kept)
        text = (
            f"{split}: {self.kept}/{self.samples} samples, {self.tokens:,} tokens (mean {mean:.0f}, max {self.max_len}), "
            f"{self.label_tokens:,} with loss; {self.truncated} ({pct:.1f}%) truncated at cutoff_len={cutoff_len}"
            f" (longest sample: {self.longest_untruncated} tokens)"
        )
        if self.dropped_no_labels:
            text += f"; {self.dropped_no_labels} dropped (response entirely past cutoff_len)"
        return text

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lengths"}


def _supports_offsets(tokenizer) -> bool:
    return bool(getattr(tokenizer, "is_fast", False))


def tokenize_sample(
    tokenizer,
    template: PromptTemplate,
    record: dict[str, str],
    cutoff_len: int,
    train_on_inputs: bool = False,
    train_on_observations: bool = True,
    train_on_chitchat: bool = True,
) -> tuple[dict[str, list[int]], bool]:
    """Tokenize one record.

    Args:
        tokenizer: a Hugging Face tokenizer (adds BOS itself when the model expects it).
        template: conversation template (``load_template(name)``).
        record: ``{"instruction", "input", "output"}``.
        cutoff_len: maximum length in tokens, EOS included.
        train_on_inputs: keep the prompt tokens in the loss (published alpaca-lora default); otherwise
            only the response and its EOS are trained.
        train_on_observations: keep the tool results (the text after each ``Observation:``) in the
            loss, as published; otherwise they are masked wherever they occur.
        train_on_chitchat: keep the text of direct answers (no tool in the turn) in the loss, as
            published; otherwise it is masked (the decision and the ``AI:`` prefix stay trained).

    Returns:
        ``({"input_ids", "attention_mask", "labels"}, truncated)``.
    """
    out, stats = _tokenize_batch(
        tokenizer,
        template,
        [record],
        cutoff_len,
        train_on_inputs,
        train_on_observations,
        train_on_chitchat,
        keep_empty=True,
    )
    return out[0], bool(stats.truncated)


def _tokenize_batch(
    tokenizer,
    template,
    records,
    cutoff_len,
    train_on_inputs,
    train_on_observations=True,
    train_on_chitchat=True,
    keep_empty=False,
):
    stats = TokenizeStats(samples=len(records))
    prompts = [template.render(r["instruction"], r.get("input", "")) for r in records]
    fulls = [p + r["output"] for p, r in zip(prompts, records, strict=True)]
    if not (train_on_observations and train_on_chitchat) and not _supports_offsets(tokenizer):
        raise ValueError(
            "masking tool observations or chit-chat answers (--train_on_observations / --train_on_chitchat false) "
            "needs a fast tokenizer"
        )
    with_offsets = _supports_offsets(tokenizer) and not (
        train_on_inputs and train_on_observations and train_on_chitchat
    )
    enc = tokenizer(fulls, truncation=False, padding=False, return_offsets_mapping=with_offsets, verbose=False)
    if not train_on_inputs and not with_offsets:
        prompt_lens = [len(ids) for ids in tokenizer(prompts, truncation=False, padding=False)["input_ids"]]
    eos = tokenizer.eos_token_id
    out: list[dict[str, list[int]]] = []
    for i, ids in enumerate(enc["input_ids"]):
        stats.longest_untruncated = max(stats.longest_untruncated, len(ids) + (eos is not None))
        truncated = len(ids) > cutoff_len
        ids = list(ids[:cutoff_len])
        # Published rule: append EOS when the last id is not EOS and there is room; truncated samples get none.
        if eos is not None and ids and ids[-1] != eos and len(ids) < cutoff_len:
            ids.append(eos)
        elif eos is not None and not truncated and len(ids) == cutoff_len and ids[-1] != eos:
            truncated = True  # the text fit but its EOS did not
        labels = list(ids)
        if not train_on_inputs:
            if with_offsets:
                boundary = len(prompts[i])
                offsets = enc["offset_mapping"][i]
                n_prompt = sum(1 for j in range(min(len(offsets), len(ids))) if offsets[j][1] <= boundary)
            else:
                n_prompt = prompt_lens[i]
            labels[:n_prompt] = [IGNORE_INDEX] * min(n_prompt, len(labels))
        spans = [] if train_on_observations else observation_spans(fulls[i])
        if not train_on_chitchat and (answer := direct_answer_span(records[i]["instruction"], records[i]["output"])):
            spans.append((len(prompts[i]) + answer[0], len(prompts[i]) + answer[1]))
        if spans:
            for j, (start, _) in enumerate(enc["offset_mapping"][i][: len(ids)]):
                if any(a <= start < b for a, b in spans):
                    labels[j] = IGNORE_INDEX
        n_labels = sum(1 for x in labels[1:] if x != IGNORE_INDEX)  # the first label is never predicted
        stats.truncated += truncated
        if n_labels == 0 and not keep_empty:
            stats.dropped_no_labels += 1
            continue
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
        stats.kept += 1
        stats.tokens += len(ids)
        stats.label_tokens += n_labels
        stats.max_len = max(stats.max_len, len(ids))
        stats.lengths.append(len(ids))
    return out, stats


def tokenize_records(
    tokenizer,
    template: PromptTemplate,
    records: Sequence[dict[str, str]],
    cutoff_len: int,
    train_on_inputs: bool = False,
    train_on_observations: bool = True,
    train_on_chitchat: bool = True,
    chunk_size: int = 2000,
) -> tuple[list[dict[str, list[int]]], TokenizeStats]:
    """Tokenize every record (batched through the fast tokenizer) and collect ``TokenizeStats``.

    Samples left without any trained token (the response lies entirely past ``cutoff_len``) are
    dropped and counted: they would only add zero-loss padding to a batch.
    """
    samples: list[dict[str, list[int]]] = []
    total = TokenizeStats()
    for start in range(0, len(records), chunk_size):
        part, stats = _tokenize_batch(
            tokenizer,
            template,
            records[start : start + chunk_size],
            cutoff_len,
            train_on_inputs,
            train_on_observations,
            train_on_chitchat,
        )
        samples.extend(part)
        for name in ("samples", "kept", "truncated", "dropped_no_labels", "tokens", "label_tokens"):
            setattr(total, name, getattr(total, name) + getattr(stats, name))
        total.max_len = max(total.max_len, stats.max_len)
        total.longest_untruncated = max(total.longest_untruncated, stats.longest_untruncated)
        total.lengths.extend(stats.lengths)
    return samples, total
