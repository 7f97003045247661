"""Greedy decoding with prompt-lookup drafts, continuing from a pre-filled KV cache.

An agent step's reply is mostly copied from its prompt: ``Thought: Do I need to use a tool? Yes``, a tool
name from the tool list, an image name from the last observation. Prompt-lookup decoding guesses the next
few tokens by finding the sequence's last n-gram earlier in the text and proposing what followed it; one
forward pass over ``[last token] + draft`` checks every guess at once, and the tokens up to the first
wrong guess are kept, plus the model's own token after them. Every kept token is the model's greedy
choice, so the text is that of greedy decoding; on a CPU, where a decoding step costs the time to read
the weights, checking ten tokens costs about as much as producing one.

transformers has this (``generate(prompt_lookup_num_tokens=...)``), but its first step feeds the whole
sequence again when ``past_key_values`` already holds the prompt (transformers 5.23, measured in
``bench/agent_steps.py``): it would undo the prefix cache. This loop starts where the cache ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["draft_tokens", "greedy_lookup_decode"]


def draft_tokens(ids: Sequence[int], num_tokens: int = 10, max_ngram: int = 3) -> list[int]:
    """Up to ``num_tokens`` tokens that followed an earlier occurrence of ``ids``'s last n-gram, longest
    n-gram first (``max_ngram`` down to 1); empty when none recurs.

    The latest occurrence with ``num_tokens`` tokens after it wins (the previous agent step is a better
    guide than the format instructions); failing that, the one with the most tokens after it.
    """
    ids = list(ids)
    for n in range(min(max_ngram, len(ids) - 1), 0, -1):
        tail, best = ids[-n:], []
        for start in range(len(ids) - n - 1, -1, -1):
            if ids[start : start + n] == tail:
                follow = ids[start + n : start + n + num_tokens]
                if len(follow) == num_tokens:
                    return follow
                best = max(best, follow, key=len)
        if best:
            return best
    return []


def greedy_lookup_decode(
    model,
    ids: Sequence[int],
    cache,
    max_new_tokens: int,
    eos_token_ids: Sequence[int] = (),
    stopped: Callable[[list[int]], bool] | None = None,
    on_tokens: Callable[[list[int]], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    num_draft: int = 10,
    max_ngram: int = 3,
    choose: Callable[[list[int], object], int] | None = None,
) -> list[int]:
    """Greedy continuation of the prompt ``ids`` (batch of one).

    Args:
        model: a causal LM (transformers or peft), in inference mode.
        ids: the prompt's token ids.
        cache: a ``DynamicCache`` holding the keys/values of a prefix of ``ids`` (possibly empty); it is
            extended in place and ends holding every position but the last new token's.
        max_new_tokens: at most this many tokens are returned.
        eos_token_ids: generation ends after any of these (which is kept, as ``generate`` keeps it).
        stopped: called with the new tokens after each one; True ends generation there (stop strings).
        on_tokens: hears each run of accepted tokens as it is decided (streaming).
        cancelled: polled before each forward pass; True ends generation.
        num_draft: tokens proposed per check (0: plain greedy decoding, one token per pass).
        max_ngram: longest n-gram matched in the text.
        choose: ``choose(new_ids, logits)`` picks the token after ``new_ids`` from that position's logits
            (default: the argmax); a draft token is kept only when it is the choice. A constraint
            (``g4t.llm.tool_constraint``) decides here, position by position.

    Returns:
        The new token ids.
    """
    import torch

    ids = list(ids)
    device = next(model.parameters()).device
    eos = set(eos_token_ids)
    start = cache.get_seq_length()
    feed = ids[start:]
    new: list[int] = []
    while len(new) < max_new_tokens and not (cancelled and cancelled()):
        draft = draft_tokens(ids + new, num_draft, max_ngram) if new and num_draft else []
        draft = draft[: max_new_tokens - len(new) - 1]
        logits = model(
            input_ids=torch.tensor([feed + draft], device=device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=len(draft) + 1,
        ).logits[0, -len(draft) - 1 :]
        if choose is None:
            choice = logits.argmax(-1).tolist()
            n = 0
            while n < len(draft) and draft[n] == choice[n]:
                n += 1
        else:  # one position at a time: each choice depends on the tokens kept before it
            choice, n = [], 0
            while True:
                choice.append(choose(new + draft[:n], logits[n]))
                if n == len(draft) or draft[n] != choice[n]:
                    break
                n += 1
        accepted, done = [], False
        for token in draft[:n] + [choice[n]]:
            accepted.append(token)
            if token in eos or (stopped is not None and stopped(new + accepted)):
                done = True
                break
        excess = cache.get_seq_length() - (len(ids) + len(new) + len(accepted) - 1)
        if excess:
            cache.crop(-excess)  # the keys/values of rejected drafts
        new += accepted
        if on_tokens is not None:
            on_tokens(accepted)
        if done:
            break
        feed = [new[-1]]
    return new
