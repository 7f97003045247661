"""A fine-tune as a compact delta on its base: low-rank factors per weight matrix, small tensors whole.

A full fine-tune of SmolLM2-135M is 540 MB in fp32; the repository ships models of at most 50 MB. The
difference ``W_tuned - W_base`` of every weight matrix is cut to its top ``rank`` singular directions
(``B @ A``, truncated SVD), the 1-D tensors (norms) are kept whole, and everything is stored in fp16 in
one safetensors file with a JSON manifest that names the base by its content hash. ``apply_delta``
adds the factors back onto the base and writes an ordinary model folder; ``g4t.llm.sources`` does so
once per delta and caches the result, so the shipped model loads like any folder.

A matrix whose change is already low-rank (a LoRA fine-tune's, say) is stored exactly; a full fine-tune
loses what lies beyond ``rank`` (the manifest records the kept share of each delta's energy).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

__all__ = ["DELTA_FILE", "MANIFEST_FILE", "apply_delta", "compress", "delta_digest"]

DELTA_FILE = "delta.safetensors"
MANIFEST_FILE = "delta.json"
# Copied from the fine-tuned folder next to the delta, so the merged folder keeps its template and recipe.
_KEPT_FILES = ("training_config.json",)


def _state(folder: str | Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return {k: v.detach() for k, v in model.state_dict().items()}


def compress(tuned: str | Path, base: str | Path, out_dir: str | Path, rank: int, base_id: dict) -> dict:
    """Write ``out_dir/delta.safetensors`` + ``delta.json``: ``tuned - base`` with every 2-D delta cut to
    ``rank`` (exact when its rank is lower), 1-D deltas whole, unchanged tensors left out.

    Args:
        tuned: the fine-tuned model folder.
        base: the base model folder it was trained from (same architecture).
        out_dir: where the delta goes (created; files replaced atomically).
        rank: singular directions kept per matrix.
        base_id: what identifies the base (e.g. ``{"gguf": name, "sha256": ...}``), stored in the manifest.

    Returns:
        The manifest.
    """
    import torch
    from safetensors.torch import save_file

    tuned_sd, base_sd = _state(tuned), _state(base)
    if tuned_sd.keys() != base_sd.keys():
        raise ValueError(f"{tuned} and {base} hold different weights: not the same architecture")
    tensors: dict[str, torch.Tensor] = {}
    kept: dict[str, float] = {}
    seen: dict[int, str] = {}
    for name, w in tuned_sd.items():
        if w.data_ptr() in seen:  # tied weights (embedding and head): stored once
            continue
        seen[w.data_ptr()] = name
        d = w - base_sd[name]
        if not torch.any(d):
            continue
        if d.ndim != 2 or min(d.shape) <= rank:
            tensors[f"{name}.delta"] = d.to(torch.float16).contiguous()
            continue
        u, s, vh = torch.linalg.svd(d, full_matrices=False)
        tensors[f"{name}.up"] = (u[:, :rank] * s[:rank]).to(torch.float16).contiguous()
        tensors[f"{name}.down"] = vh[:rank].to(torch.float16).contiguous()
        kept[name] = round(float((s[:rank] ** 2).sum() / (s**2).sum()), 4)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": "g4t low-rank delta v1",
        "base": base_id,
        "rank": rank,
        "tensors": len(tensors),
        "parameters": sum(t.numel() for t in tensors.values()),
        "energy_kept": {
            "min": min(kept.values(), default=1.0),
            "mean": round(sum(kept.values()) / max(len(kept), 1), 4),
        },
    }
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        save_file(tensors, str(Path(tmp) / DELTA_FILE))
        (Path(tmp) / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        for f in _KEPT_FILES:
            if (Path(tuned) / f).is_file():
                shutil.copy(Path(tuned) / f, Path(tmp) / f)
        for f in Path(tmp).iterdir():
            f.replace(out / f.name)
    return manifest


def delta_digest(delta_dir: str | Path) -> str:
    """Content hash of a delta (its tensors and manifest): the cache key of its merged folder."""
    h = hashlib.sha256()
    for f in (DELTA_FILE, MANIFEST_FILE):
        h.update((Path(delta_dir) / f).read_bytes())
    return h.hexdigest()


def apply_delta(base: str | Path, delta_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the merged model (``base`` + the delta of ``delta_dir``) as an ordinary model folder.

    The folder is written atomically (``g4t.llm.sources.save_model_folder``).

    Raises:
        ValueError: the delta is missing or does not fit the base (names or shapes differ).
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from g4t.llm.sources import save_model_folder

    delta_dir, out = Path(delta_dir), Path(out_dir)
    if not (delta_dir / DELTA_FILE).is_file():
        raise ValueError(f"{delta_dir}: no {DELTA_FILE} (not a model delta)")
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    params = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers())
    delta = load_file(str(delta_dir / DELTA_FILE))
    with torch.no_grad():
        for key, t in delta.items():
            name, kind = key.rsplit(".", 1)
            if name not in params:
                raise ValueError(f"{delta_dir}: {name} is not a weight of {base}")
            if kind == "down":
                continue
            d = t.float() if kind == "delta" else t.float() @ delta[f"{name}.down"].float()
            if d.shape != params[name].shape:
                raise ValueError(
                    f"{delta_dir}: {name} has shape {tuple(d.shape)}, the base {tuple(params[name].shape)}"
                )
            params[name].add_(d)
    kept = tuple(delta_dir / f for f in _KEPT_FILES if (delta_dir / f).is_file())
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    return save_model_folder(out, model, tokenizer, f"{base} + the delta in {delta_dir.resolve()}", kept)
