"""Diversity: equal-size k-means++ label subsets, spectral clusters, and per-cluster quotas.

* ``kmeans_subsets`` -- the label-generating subsets: k-means++ into ``n_subsets`` clusters, then a
  capacity-constrained assignment (each sample goes to its nearest centroid that still has room)
  so every subset has exactly ``subset_size`` samples. The published code moved the surplus of
  big clusters from the *front* of their member lists, i.e. arbitrary samples.
* ``diversity_clusters`` -- spectral clustering on a k-nearest-neighbour graph (the paper), or
  MiniBatch k-means for large pools.
* ``cluster_quotas`` / ``select_by_quota`` -- the budget split proportionally to cluster size
  (minimum 1, largest remainders, never above a cluster's size) so the quotas sum exactly to the
  budget; inside each cluster the top samples by the *float* selector score.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["cluster_quotas", "diversity_clusters", "kmeans_subsets", "select_by_quota"]


def kmeans_subsets(x: np.ndarray, n_subsets: int, subset_size: int, seed: int = 0) -> list[np.ndarray]:
    """Disjoint subsets of exactly ``subset_size`` samples, built around k-means++ centroids.

    Args:
        x: (n, d) features.
        n_subsets: number of subsets (k of k-means).
        subset_size: samples per subset; ``n_subsets * subset_size`` must not exceed ``n``.
        seed: k-means seed.

    Returns:
        One sorted index array per subset. Samples that fit no subset are left out.
    """
    from sklearn.cluster import KMeans

    n = x.shape[0]
    if n_subsets < 1 or subset_size < 1 or n_subsets * subset_size > n:
        raise ValueError(f"cannot make {n_subsets} subsets of {subset_size} from {n} samples")
    km = KMeans(n_clusters=n_subsets, init="k-means++", n_init=10, random_state=seed).fit(x)
    dist = km.transform(x)  # (n, k) distances to the centroids
    order = np.argsort(dist, axis=None, kind="stable")
    members: list[list[int]] = [[] for _ in range(n_subsets)]
    taken = np.zeros(n, dtype=bool)
    for flat in order:
        i, c = divmod(int(flat), n_subsets)
        if taken[i] or len(members[c]) >= subset_size:
            continue
        members[c].append(i)
        taken[i] = True
        if all(len(m) >= subset_size for m in members):
            break
    return [np.array(sorted(m), dtype=int) for m in members]


def diversity_clusters(
    x: np.ndarray,
    n_clusters: int = 10,
    method: Literal["spectral", "kmeans", "auto"] = "auto",
    n_neighbors: int = 10,
    seed: int = 0,
    spectral_max: int = 20000,
) -> np.ndarray:
    """Cluster labels for the diversity quotas.

    Args:
        x: (n, d) features.
        n_clusters: number of clusters (the paper: 10).
        method: ``spectral`` (kNN-graph spectral clustering, as published), ``kmeans`` (MiniBatch
            k-means), or ``auto`` (spectral up to ``spectral_max`` samples).
        n_neighbors: kNN graph degree for spectral clustering (sklearn default 10).
        seed: random state.
    """
    n = x.shape[0]
    k = max(1, min(n_clusters, n))
    if k == 1:
        return np.zeros(n, dtype=int)
    if method == "spectral" or (method == "auto" and n <= spectral_max):
        from sklearn.cluster import SpectralClustering

        nn = max(2, min(n_neighbors, n - 1))
        sc = SpectralClustering(n_clusters=k, affinity="nearest_neighbors", n_neighbors=nn, random_state=seed)
        return sc.fit_predict(x).astype(int)
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3).fit_predict(x).astype(int)


def cluster_quotas(sizes: dict[int, int] | list[int], budget: int) -> dict[int, int]:
    """Split ``budget`` over clusters proportionally to their sizes; the quotas sum to the budget.

    Every non-empty cluster gets at least 1 (if the budget allows: otherwise the largest clusters
    get 1 each), no cluster gets more than its size, and the remainder goes by largest fraction.

    Raises:
        ValueError: the budget exceeds the number of samples.
    """
    sizes = dict(enumerate(sizes)) if isinstance(sizes, list) else dict(sizes)
    sizes = {c: s for c, s in sizes.items() if s > 0}
    total = sum(sizes.values())
    if budget > total:
        raise ValueError(f"budget {budget} exceeds the {total} samples")
    if budget <= 0 or not sizes:
        return {c: 0 for c in sizes}
    by_size = sorted(sizes, key=lambda c: (-sizes[c], c))
    if budget < len(sizes):
        return {c: int(i < budget) for i, c in enumerate(by_size)}
    exact = {c: budget * s / total for c, s in sizes.items()}
    quota = {c: min(sizes[c], max(1, int(exact[c]))) for c in sizes}
    while (left := budget - sum(quota.values())) != 0:
        if left > 0:  # give to the clusters with room, largest remainder first
            room = [c for c in sizes if quota[c] < sizes[c]]
            room.sort(key=lambda c: (-(exact[c] - quota[c]), -sizes[c], c))
            for c in room[:left]:
                quota[c] += 1
        else:  # min-1 overshoot: take back from the clusters furthest above their share
            over = [c for c in sizes if quota[c] > 1]
            over.sort(key=lambda c: (-(quota[c] - exact[c]), c))
            for c in over[:-left]:
                quota[c] -= 1
    return quota


def select_by_quota(scores: np.ndarray, clusters: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the top-``quota`` samples by float score inside each cluster (sorted ascending)."""
    ids, counts = np.unique(clusters, return_counts=True)
    quota = cluster_quotas(dict(zip(ids.tolist(), counts.tolist(), strict=True)), budget)
    picked: list[int] = []
    for c, q in quota.items():
        members = np.flatnonzero(clusters == c)
        order = members[np.argsort(-scores[members], kind="stable")]
        picked.extend(order[:q].tolist())
    return np.array(sorted(picked), dtype=int)
