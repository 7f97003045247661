"""The InstructionGPT-4 data selector: self-attention over per-sample vectors, trained on subset labels.

Architecture as published (``selector/model/models.py``, ``concat=0``): for each of ``num_layers``
layers, multi-head self-attention with a residual connection, then a linear map (only when there is
more than one layer, no activation); a linear head gives one score per sample. A subset's
prediction is the mean of its samples' scores, trained with MSE against the subset's label.

Fixed here:

* The batch-layout quirk. The published ``nn.MultiheadAttention`` used ``batch_first=False`` on a
  ``(subsets, samples, d)`` tensor, so attention mixed the *subsets* position by position. Here each
  batch row is one subset (``batch_first=True``), padding is masked, and samples of different
  subsets never attend to each other (tested by perturbing one subset).
* An input projection to ``d_model`` so any number of indicators/features fits ``nhead``.
* Inputs are standardised with pool statistics and labels with the training labels' statistics.
* A held-out split of subsets, early stopping on it, and the *best* weights kept (the published
  bookkeeping kept the final ones), with far more than 20 optimiser steps.
* Pool scoring uses the training layout: the pool is cut into random groups of the subset size
  (several rounds, averaged) instead of attending over the whole pool at once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SelectorConfig", "SelectorNet", "TrainedSelector", "correlations", "pad_subsets", "train_selector"]


@dataclass
class SelectorConfig:
    """Selector hyperparameters.

    Attributes:
        d_model: attention width (published: 16, the input size).
        nhead: attention heads (published train.sh: 4).
        num_layers: attention layers (published: 2; 3 hurt in the paper's ablation).
        residual: add the attention output to its input (published: on).
        lr: Adam learning rate (published: 0.01).
        epochs: maximum full-batch epochs (published: 20, far too few).
        patience: early-stopping patience in epochs on the held-out subsets.
        val_fraction: share of labelled subsets held out (at least one when there are >= 3).
        score_rounds: random regroupings averaged when scoring the pool.
        seed: seed for the split, init and scoring groups.
    """

    d_model: int = 16
    nhead: int = 4
    num_layers: int = 2
    residual: bool = True
    lr: float = 1e-2
    epochs: int = 400
    patience: int = 60
    val_fraction: float = 0.2
    score_rounds: int = 4
    seed: int = 42


def _nn():
    import torch
    from torch import nn

    return torch, nn


class SelectorNet:  # built lazily so importing the package does not import torch
    """Factory for the torch module (see ``build``)."""

    @staticmethod
    def build(d_in: int, cfg: SelectorConfig):
        """The attention selector as a ``torch.nn.Module``: ``forward(x (B,S,d_in), valid (B,S)) -> (B,S)``."""
        torch, nn = _nn()

        class _Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.proj = nn.Linear(d_in, cfg.d_model)
                self.attn = nn.ModuleList(
                    nn.MultiheadAttention(cfg.d_model, cfg.nhead, batch_first=True) for _ in range(cfg.num_layers)
                )
                self.mix = nn.ModuleList(
                    nn.Linear(cfg.d_model, cfg.d_model) for _ in range(cfg.num_layers if cfg.num_layers > 1 else 0)
                )
                self.head = nn.Linear(cfg.d_model, 1)

            def forward(self, x, valid):
                h = self.proj(x)
                pad = ~valid
                for i, attn in enumerate(self.attn):
                    a, _ = attn(h, h, h, key_padding_mask=pad, need_weights=False)
                    h = h + a if cfg.residual else a
                    if self.mix:
                        h = self.mix[i](h)
                return self.head(h).squeeze(-1)

            def subset_means(self, x, valid):
                s = self.forward(x, valid) * valid
                return s.sum(1) / valid.sum(1).clamp(min=1)

        return _Net()


def pad_subsets(x: np.ndarray, subsets: Sequence[np.ndarray]):
    """``(B, S_max, d)`` float tensor and ``(B, S_max)`` bool validity mask, one row per subset."""
    torch, _ = _nn()
    s_max = max(len(s) for s in subsets)
    out = torch.zeros(len(subsets), s_max, x.shape[1])
    valid = torch.zeros(len(subsets), s_max, dtype=torch.bool)
    for b, idx in enumerate(subsets):
        out[b, : len(idx)] = torch.as_tensor(x[np.asarray(idx)], dtype=torch.float32)
        valid[b, : len(idx)] = True
    return out, valid


def correlations(pred: Sequence[float], target: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation (NaN when undefined: fewer than 3 points or a constant)."""
    from scipy.stats import pearsonr, spearmanr

    a, b = np.asarray(pred, dtype=float), np.asarray(target, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"pearson": math.nan, "spearman": math.nan}
    return {"pearson": float(pearsonr(a, b)[0]), "spearman": float(spearmanr(a, b)[0])}


@dataclass
class TrainedSelector:
    """A trained selector with its normalisation and training record.

    Attributes:
        net: the torch module.
        mean, std: input standardisation (pool statistics).
        label_mean, label_std: label standardisation (training labels).
        train_ids, val_ids: subset indices used for training and early stopping.
        history: per-epoch ``(train_mse, val_mse)`` in standardised label units.
        best_epoch: epoch whose weights were kept.
    """

    net: object
    cfg: SelectorConfig
    mean: np.ndarray
    std: np.ndarray
    label_mean: float
    label_std: float
    train_ids: list[int] = field(default_factory=list)
    val_ids: list[int] = field(default_factory=list)
    history: list[tuple[float, float]] = field(default_factory=list)
    best_epoch: int = 0

    def _norm(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num((x - self.mean) / self.std)

    def predict_subsets(self, x: np.ndarray, subsets: Sequence[np.ndarray]) -> np.ndarray:
        """Predicted label of each subset (mean of its samples' scores), in label units."""
        torch, _ = _nn()
        xb, valid = pad_subsets(self._norm(x), subsets)
        self.net.eval()
        with torch.no_grad():
            pred = self.net.subset_means(xb, valid).numpy()
        return pred * self.label_std + self.label_mean

    def score_samples(self, x: np.ndarray, group_size: int, rounds: int | None = None) -> np.ndarray:
        """Per-sample scores over a pool, each sample seen in random groups of ``group_size`` (averaged)."""
        torch, _ = _nn()
        rounds = rounds or self.cfg.score_rounds
        rng = np.random.default_rng(self.cfg.seed)
        n = x.shape[0]
        xn = self._norm(x)
        total = np.zeros(n)
        self.net.eval()
        for _ in range(rounds):
            perm = rng.permutation(n)
            groups = [perm[i : i + group_size] for i in range(0, n, group_size)]
            for start in range(0, len(groups), 256):
                chunk = groups[start : start + 256]
                xb, valid = pad_subsets(xn, chunk)
                with torch.no_grad():
                    s = self.net(xb, valid).numpy()
                for b, idx in enumerate(chunk):
                    total[idx] += s[b, : len(idx)]
        return total / rounds * self.label_std + self.label_mean


def train_selector(
    x: np.ndarray,
    subsets: Sequence[np.ndarray],
    labels: Sequence[float],
    cfg: SelectorConfig | None = None,
    train_ids: Sequence[int] | None = None,
    val_ids: Sequence[int] | None = None,
) -> TrainedSelector:
    """Train the selector on labelled subsets with a held-out split for early stopping.

    Args:
        x: (n, d) per-sample vectors of the whole pool ([indicators || features]); NaN allowed.
        subsets: index arrays into ``x``, one per labelled subset.
        labels: one label per subset (e.g. SR of a model fine-tuned on it).
        cfg: hyperparameters.
        train_ids, val_ids: explicit split of the subsets (default: random ``val_fraction``).
    """
    torch, nn = _nn()
    cfg = cfg or SelectorConfig()
    labels = np.asarray(labels, dtype=float)
    k = len(subsets)
    rng = np.random.default_rng(cfg.seed)
    if train_ids is None:
        perm = rng.permutation(k).tolist()
        n_val = max(1, round(cfg.val_fraction * k)) if k >= 3 else 0
        val_ids, train_ids = sorted(perm[:n_val]), sorted(perm[n_val:])
    train_ids, val_ids = list(train_ids), list(val_ids or [])
    mean = np.nanmean(x, axis=0)
    std = np.nanstd(x, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    mean = np.nan_to_num(mean)
    y_train = labels[train_ids]
    label_mean = float(y_train.mean())
    label_std = float(y_train.std()) if y_train.std() > 1e-8 else 1.0
    torch.manual_seed(cfg.seed)
    net = SelectorNet.build(x.shape[1], cfg)
    sel = TrainedSelector(net, cfg, mean, std, label_mean, label_std, train_ids, val_ids)
    xn = sel._norm(x)
    xt, vt = pad_subsets(xn, [subsets[i] for i in train_ids])
    yt = torch.as_tensor((labels[train_ids] - label_mean) / label_std, dtype=torch.float32)
    if val_ids:
        xv, vv = pad_subsets(xn, [subsets[i] for i in val_ids])
        yv = torch.as_tensor((labels[val_ids] - label_mean) / label_std, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    best, best_state, since = math.inf, copy.deepcopy(net.state_dict()), 0
    for epoch in range(cfg.epochs):
        net.train()
        opt.zero_grad()
        loss = nn.functional.mse_loss(net.subset_means(xt, vt), yt)
        loss.backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            val = nn.functional.mse_loss(net.subset_means(xv, vv), yv).item() if val_ids else loss.item()
        sel.history.append((loss.item(), val))
        if val < best - 1e-9:
            best, best_state, since, sel.best_epoch = val, copy.deepcopy(net.state_dict()), 0, epoch
        else:
            since += 1
            if val_ids and since >= cfg.patience:
                break
    net.load_state_dict(best_state)
    return sel
