"""Shared-prefix packing (``--share_prefix``): a prompt prefix common to several samples is computed once.

GPT4Tools samples are long prompts (the tool list is ~600 tokens) with a short trained response. Records
cut from one conversation (the tool call, then the relay after its observation) or asked in one session
(``generate_annotations.py --session_prompts``: one image, one tool list, several requests) repeat the
same prompt tokens. Packed one after another, every copy is run through the model again.

Here a micro-batch becomes one row in which each group of samples sharing a prefix appears as
``prefix + rest_1 + rest_2 + ...``: the first member whole, every other member without the shared
prefix. Position ids carry the layout: each group restarts at 0; every later member restarts at the
prefix length ``P`` (its tokens keep the positions they have alone). The attention (``g4t_varlen_sdpa``,
see ``packing.py``) reads that layout back with ``blocks``: a member attends to the group's first ``P``
tokens and causally to itself, never to the other members.

Same objective, exactly: the prefix is cut only inside the unlabeled prompt, and before the first token
whose prediction carries a loss (so no member loses a label: ``P < first labeled index``). Every labeled
token sees the same context at the same positions as alone, so the loss (the same token mean over the
same labels) and its gradients are those of ordinary packing; gradients of the shared prefix sum over
its members, as autograd does for any reused tensor.

The sampler (``PrefixGroupedSampler``) puts samples that share most of their prompt next to each other
(lexicographic order of the token ids, then the groups shuffled, seeded per epoch), so they meet in one
micro-batch; which samples share within a micro-batch is then chosen by ``plan_groups``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from g4t.llm.prefix_cache import common_prefix
from g4t.train.tokenize import IGNORE_INDEX

__all__ = ["MIN_SHARED", "PrefixGroupedSampler", "SharedPrefixCollator", "blocks", "plan_groups"]

MIN_SHARED = 16  # shorter common prefixes are not worth a group


def _first_labeled(labels: Sequence[int]) -> int:
    for i, x in enumerate(labels):
        if x != IGNORE_INDEX:
            return i
    return len(labels)


def plan_groups(features: Sequence[dict], min_shared: int = MIN_SHARED) -> list[tuple[list[int], int]]:
    """Groups ``[(member indices, shared length P)]`` covering ``features``, chosen to save the most tokens.

    Members are ordered by token ids (so common prefixes are neighbours); a group is a run of that order
    whose prefix ``P`` is common to all its members and ends before every non-first member's first
    labeled token. Runs are picked by dynamic programming over the order, maximising ``P * (members - 1)``.
    A group of one has ``P = 0``.
    """
    ids = [list(f["input_ids"]) for f in features]
    order = sorted(range(len(features)), key=lambda i: ids[i])
    limit = [_first_labeled(features[i]["labels"]) - 1 for i in order]  # the prefix must end before this
    n = len(order)
    best = [0] * (n + 1)  # best[i]: most tokens saved on the first i members of the order
    choice = [0] * (n + 1)
    for end in range(1, n + 1):
        best[end], choice[end] = best[end - 1], end - 1  # member end-1 alone
        shared = len(ids[order[end - 1]])
        for start in range(end - 2, -1, -1):  # the run order[start:end], order[start] first (whole)
            shared = min(shared, common_prefix(ids[order[start]], ids[order[start + 1]]), limit[start + 1])
            if shared < min_shared:
                break
            saved = best[start] + shared * (end - start - 1)
            if saved > best[end]:
                best[end], choice[end] = saved, start
    groups = []
    end = n
    while end > 0:
        start = choice[end]
        members = [order[k] for k in range(start, end)]
        shared = 0
        if len(members) > 1:
            shared = min(
                min(common_prefix(ids[order[k]], ids[order[k + 1]]) for k in range(start, end - 1)),
                min(limit[k] for k in range(start + 1, end)),
            )
        groups.append((members, shared))
        end = start
    return groups[::-1]


class SharedPrefixCollator:
    """Pack a micro-batch into one row with shared prefixes computed once (see the module docs).

    Returns ``input_ids``, ``labels`` and ``position_ids`` of shape ``[1, tokens]`` (no ``attention_mask``:
    the layout is in the position ids). ``stats`` counts sample tokens and packed tokens.
    """

    def __init__(self, min_shared: int = MIN_SHARED) -> None:
        self.min_shared = min_shared
        self.sample_tokens = 0
        self.packed_tokens = 0

    def __call__(self, features: list[dict]) -> dict[str, Any]:
        import torch

        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for members, shared in plan_groups(features, self.min_shared):
            for k, i in enumerate(members):
                f = features[i]
                start = 0 if k == 0 else shared
                seq, lab = list(f["input_ids"]), list(f["labels"])
                ids += seq[start:]
                labels += [IGNORE_INDEX] + lab[start + 1 :]  # nothing predicts across a boundary
                positions += range(start, len(seq))
                self.sample_tokens += len(seq)
        self.packed_tokens += len(ids)
        as_row = lambda xs: torch.tensor([xs], dtype=torch.long)  # noqa: E731
        return {"input_ids": as_row(ids), "labels": as_row(labels), "position_ids": as_row(positions)}


def blocks(position_ids: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """The attention layout of a packed row: ``(start, end, prefix_start, prefix_len)`` per block.

    Queries ``[start, end)`` attend causally to themselves and, when ``prefix_len > 0``, to all of
    ``[prefix_start, prefix_start + prefix_len)`` (their group's shared prefix). A position id of 0 starts
    a group (a block with no prefix); any other break in the ``+1`` sequence starts a member that shares
    the group's first ``position`` tokens.

    Raises:
        ValueError: a member claims a longer prefix than its group's first block holds.
    """
    out: list[tuple[int, int, int, int]] = []
    group = 0
    head_len = 0
    for t, p in enumerate(position_ids):
        if t and p == position_ids[t - 1] + 1:
            continue
        if out:
            s, _, ps, pl = out[-1]
            out[-1] = (s, t, ps, pl)
            if pl == 0:
                head_len = t - s
        if p == 0:
            group = t
            out.append((t, t, 0, 0))
        else:
            if not out or p > head_len:
                raise ValueError(f"position id {p} at {t} does not continue a shared prefix of its group")
            out.append((t, t, group, p))
    if out:
        s, _, ps, pl = out[-1]
        out[-1] = (s, len(position_ids), ps, pl)
    return out


class PrefixGroupedSampler:
    """Sample order for shared prefixes: samples sharing at least half of the shorter one's unlabeled
    prompt become neighbours (token-id order); those runs are shuffled as units, seeded per epoch.

    Args:
        samples: tokenized samples (``input_ids``, ``labels``).
        seed: base seed (the order of epoch ``e`` uses ``seed + e``; ``set_epoch`` is called by the Trainer).
    """

    def __init__(self, samples: Sequence[dict], seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        ids = [list(s["input_ids"]) for s in samples]
        prompt = [_first_labeled(s["labels"]) for s in samples]
        order = sorted(range(len(samples)), key=lambda i: ids[i])
        self.runs: list[list[int]] = []
        for i in order:
            if self.runs:
                j = self.runs[-1][-1]
                if common_prefix(ids[i], ids[j]) * 2 >= min(prompt[i], prompt[j]) > 0:
                    self.runs[-1].append(i)
                    continue
            self.runs.append([i])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    def __iter__(self) -> Iterator[int]:
        runs = list(self.runs)
        random.Random(self.seed + self.epoch).shuffle(runs)
        for run in runs:
            yield from run
