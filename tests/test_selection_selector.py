"""Clustering quotas, equal-size label subsets, and the attention selector (training, no subset mixing)."""

from __future__ import annotations

import numpy as np
import pytest

from g4t.selection.clustering import cluster_quotas, diversity_clusters, kmeans_subsets, select_by_quota
from g4t.selection.compare import cross_validate, held_out
from g4t.selection.selector import SelectorConfig, correlations, pad_subsets, train_selector


@pytest.mark.parametrize("budget", [1, 3, 10, 57, 200, 999])
def test_quotas_sum_to_budget(budget):
    sizes = [1234, 880, 325, 300, 286, 177, 85, 80, 59, 13]
    quota = cluster_quotas(sizes, budget)
    assert sum(quota.values()) == budget
    assert all(0 <= quota[c] <= s for c, s in enumerate(sizes))
    if budget >= len(sizes):
        assert all(q >= 1 for q in quota.values())


def test_quotas_published_allocation_and_edge_cases():
    # proportional to size with largest remainders (the published floor(204 x share) gave 73, 52, 19, ...)
    sizes = [1234, 880, 325, 300, 286, 177, 85, 80, 59, 13]
    assert list(cluster_quotas(sizes, 200).values()) == [72, 51, 19, 17, 17, 10, 5, 5, 3, 1]
    assert cluster_quotas([5, 1, 1], 7) == {0: 5, 1: 1, 2: 1}  # capped at the cluster size
    assert sum(cluster_quotas([100, 1, 1, 1, 1], 5).values()) == 5
    with pytest.raises(ValueError):
        cluster_quotas([2, 2], 5)


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")
def test_spectral_clusters_and_selection_by_quota():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 4)), rng.normal(5, 0.1, (10, 4))])
    labels = diversity_clusters(x, 2, "spectral", seed=0)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[-1]
    scores = np.arange(40, dtype=float)
    picked = select_by_quota(scores, labels, 8)
    assert len(picked) == 8
    assert sum(picked >= 30) == 2 and set(picked[picked >= 30]) == {38, 39}  # top of the small cluster
    assert set(picked[picked < 30]) == set(range(24, 30))  # top 6 of the big one
    assert len(diversity_clusters(x, 3, "kmeans", seed=0)) == 40


def test_kmeans_subsets_are_disjoint_and_equal_size():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (50, 3)), rng.normal(8, 1, (14, 3))])
    subsets = kmeans_subsets(x, 4, 12, seed=0)
    assert [len(s) for s in subsets] == [12] * 4
    flat = np.concatenate(subsets)
    assert len(set(flat.tolist())) == 48
    with pytest.raises(ValueError):
        kmeans_subsets(x, 10, 10)


def _toy(seed=0, k=24, size=12, d=5):
    """A pool whose subset label is the mean of feature 0 plus noise: learnable by the selector."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (k * size, d))
    subsets = [np.arange(i * size, (i + 1) * size) for i in range(k)]
    x[:, 0] += np.repeat(rng.normal(0, 1.5, k), size)
    labels = np.array([x[s, 0].mean() for s in subsets]) + rng.normal(0, 0.05, k)
    return x, subsets, labels


def test_selector_learns_subset_labels_with_held_out_split():
    x, subsets, labels = _toy()
    sel = train_selector(x, subsets, labels, SelectorConfig(epochs=200, seed=0))
    assert sel.val_ids and not set(sel.val_ids) & set(sel.train_ids)
    assert sel.history[sel.best_epoch][1] == min(v for _, v in sel.history)  # best weights kept
    pred = sel.predict_subsets(x, [subsets[i] for i in sel.val_ids])
    assert correlations(pred, labels[sel.val_ids])["pearson"] > 0.8
    scores = sel.score_samples(x, 12, rounds=2)
    assert scores.shape == (len(x),) and correlations(scores, x[:, 0])["spearman"] > 0.5
    table = held_out(sel, x, subsets, labels, {"f0": x[:, 0], "noise": x[:, 1]})
    assert table["selector"]["pearson"] > 0.8 and table["f0"]["pearson"] > 0.8
    cv = cross_validate(x, subsets, labels, {"f0": x[:, 0]}, SelectorConfig(epochs=80, seed=0), n_folds=3)
    assert set(cv) == {"selector", "ridge", "f0"} and cv["selector"]["spearman"] > 0.5


def test_attention_never_mixes_subsets():
    import torch

    x, subsets, labels = _toy(k=6, size=5)
    sel = train_selector(x, subsets, labels, SelectorConfig(epochs=20, seed=0))
    ragged = [subsets[0], subsets[1][:3], subsets[2]]  # one shorter subset: padding must be masked too
    xb, valid = pad_subsets(sel._norm(x), ragged)
    with torch.no_grad():
        before = sel.net(xb, valid)
        xb2 = xb.clone()
        xb2[1] += torch.randn_like(xb2[1]) * 10  # perturb subset 1 only (padding included)
        after = sel.net(xb2, valid)
    assert torch.equal(before[0], after[0]) and torch.equal(before[2], after[2])
    assert not torch.allclose(before[1, :3], after[1, :3])
    # within a subset, samples do attend to each other
    xb3 = xb.clone()
    xb3[0, 0] += 10
    with torch.no_grad():
        changed = sel.net(xb3, valid)
    assert not torch.allclose(changed[0, 1:], before[0, 1:])
    # padded positions never influence the valid ones
    xb4 = xb.clone()
    xb4[1, 3:] = 1e3
    with torch.no_grad():
        assert torch.allclose(sel.net(xb4, valid)[1, :3], before[1, :3])
