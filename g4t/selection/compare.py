"""How well do the selector and the plain indicators predict the genuine subset labels?

Three predictors of a subset's label, each compared with Pearson and Spearman correlations:
the trained selector (mean of its per-sample scores), every plain indicator (subset mean), and a
ridge regression on the subset means of all inputs (the InstructMining-style baseline the method
notes suggest). ``held_out`` scores the selector's own held-out subsets; ``cross_validate`` gives
out-of-fold predictions for every subset, which is steadier with few labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from g4t.selection.selector import SelectorConfig, TrainedSelector, correlations, train_selector

__all__ = ["cross_validate", "held_out", "subset_means"]


def subset_means(values: np.ndarray, subsets: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of ``values`` (1-d, or 2-d over rows) inside each subset, ignoring NaN."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.stack([np.nanmean(values[np.asarray(s)], axis=0) for s in subsets])


def _ridge(x_sub: np.ndarray, y: np.ndarray, train: Sequence[int], test: Sequence[int]) -> np.ndarray:
    from sklearn.linear_model import Ridge

    x_sub = np.nan_to_num(x_sub)
    mu, sd = x_sub[train].mean(0), x_sub[train].std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)
    model = Ridge(alpha=1.0).fit((x_sub[train] - mu) / sd, y[train])
    return model.predict((x_sub[test] - mu) / sd)


def held_out(
    selector: TrainedSelector,
    x: np.ndarray,
    subsets: Sequence[np.ndarray],
    labels: Sequence[float],
    indicators: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """Correlations with the labels on the selector's held-out subsets (all subsets if it had none)."""
    y = np.asarray(labels, dtype=float)
    ids = selector.val_ids or list(range(len(subsets)))
    pred = selector.predict_subsets(x, [subsets[i] for i in ids])
    out = {"selector": correlations(pred, y[ids])}
    if selector.val_ids and len(selector.train_ids) >= 2:
        out["ridge"] = correlations(_ridge(subset_means(x, subsets), y, selector.train_ids, ids), y[ids])
    for name, values in indicators.items():
        out[name] = correlations(subset_means(values, subsets)[ids], y[ids])
    return out


def cross_validate(
    x: np.ndarray,
    subsets: Sequence[np.ndarray],
    labels: Sequence[float],
    indicators: dict[str, np.ndarray],
    cfg: SelectorConfig | None = None,
    n_folds: int = 5,
) -> dict[str, dict[str, float]]:
    """Out-of-fold correlations over all labelled subsets (k-fold by subset).

    Each fold trains a fresh selector (with its own inner held-out split for early stopping) and a
    ridge baseline on the other folds, then predicts the fold. Plain indicators need no training:
    their subset means are correlated directly.
    """
    cfg = cfg or SelectorConfig()
    y = np.asarray(labels, dtype=float)
    k = len(subsets)
    n_folds = max(2, min(n_folds, k))
    order = np.random.default_rng(cfg.seed).permutation(k)
    folds = [sorted(order[f::n_folds].tolist()) for f in range(n_folds)]
    sel_pred, ridge_pred = np.full(k, np.nan), np.full(k, np.nan)
    means = subset_means(x, subsets)
    for test in folds:
        train = [i for i in range(k) if i not in set(test)]
        if len(train) < 2:
            continue
        sel = train_selector(x, [subsets[i] for i in train], y[train], cfg)
        sel_pred[test] = sel.predict_subsets(x, [subsets[i] for i in test])
        ridge_pred[test] = _ridge(means, y, train, test)
    out = {"selector": correlations(sel_pred, y), "ridge": correlations(ridge_pred, y)}
    for name, values in indicators.items():
        out[name] = correlations(subset_means(values, subsets), y)
    return out
