"""Model-based indicators: a reward model and a CLIP image-text score (transformers, lazy).

Both load by Hugging Face id or local directory through ``from_pretrained``, on first use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from g4t.precision import resolve_device
from g4t.selection.samples import parse_sample

__all__ = ["DEFAULT_CLIP_MODEL", "DEFAULT_REWARD_MODEL", "ClipScorer", "RewardScorer"]

DEFAULT_REWARD_MODEL = "OpenAssistant/reward-model-deberta-v3-large-v2"
DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"


@dataclass
class RewardScorer:
    """10 x the reward logit of (user request, output) -- the paper's reward slot.

    The question is the user's request *without* the shared tool prompt (it would fill DeBERTa's
    512-token window and is the same for every sample); the pair is truncated explicitly.

    Attributes:
        model: sequence-classification reward model id or directory (one output logit).
        max_length: token budget of the (request, output) pair.
        scale: multiplier of the logit (10 puts it on the other indicators' 0-100 range).
        device: ``auto``, ``cpu``, ``cuda``...
    """

    model: str = DEFAULT_REWARD_MODEL
    max_length: int = 512
    scale: float = 10.0
    device: str = "auto"
    name: str = "reward"

    def __post_init__(self) -> None:
        self._model = self._tokenizer = None

    def config(self) -> dict:
        return {"model": self.model, "max_length": self.max_length, "scale": self.scale}

    def finalize(self, values: np.ndarray) -> np.ndarray:
        return values

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._device = resolve_device(self.device)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        self._model = AutoModelForSequenceClassification.from_pretrained(self.model).to(self._device).eval()

    def score(self, records: list[dict]) -> list[float]:
        import torch

        if self._model is None:
            self._load()
        parsed = [parse_sample(r) for r in records]
        batch = self._tokenizer(
            [p.request for p in parsed],
            [p.output for p in parsed],
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        ).to(self._device)
        with torch.no_grad():
            logits = self._model(**batch).logits.float()
        return (self.scale * logits[:, 0]).tolist()


@dataclass
class ClipScorer:
    """100 x cosine(CLIP image embedding, CLIP text embedding) where the image file exists.

    GPT4Tools records name their image by path; the score is computed only when that file exists
    under ``image_root`` (or as given). The text is the image's caption from the conversation
    (``text="caption"``: does the description the sample was generated from match the picture?),
    or the output / the user request. Missing image or text: NaN (never a fabricated score).

    Attributes:
        model: ``CLIPModel`` id or directory (with its processor).
        image_root: folder the records' image paths are relative to.
        text: which text to compare with the image.
        device: ``auto``, ``cpu``, ``cuda``...
    """

    model: str = DEFAULT_CLIP_MODEL
    image_root: str = "."
    text: str = "caption"
    device: str = "auto"
    name: str = "clip"

    def __post_init__(self) -> None:
        if self.text not in {"caption", "output", "request"}:
            raise ValueError(f"ClipScorer.text must be caption, output or request, got {self.text!r}")
        self._model = self._processor = None

    def config(self) -> dict:
        return {"model": self.model, "image_root": str(Path(self.image_root).resolve()), "text": self.text}

    def finalize(self, values: np.ndarray) -> np.ndarray:
        return values

    def _image_path(self, record: dict) -> Path | None:
        p = parse_sample(record)
        for name in (record.get("image_path"), p.image, record.get("filename")):
            if name:
                path = Path(self.image_root) / name
                if path.is_file():
                    return path
        return None

    def score(self, records: list[dict]) -> list[float]:
        import torch
        from PIL import Image

        out = [math.nan] * len(records)
        jobs = []
        for i, r in enumerate(records):
            path = self._image_path(r)
            p = parse_sample(r)
            text = {"caption": p.caption or r.get("caption", ""), "output": p.output, "request": p.request}[self.text]
            if path is not None and text.strip():
                jobs.append((i, path, text))
        if not jobs:
            return out
        if self._model is None:
            from transformers import CLIPModel, CLIPProcessor

            self._device = resolve_device(self.device)
            self._processor = CLIPProcessor.from_pretrained(self.model)
            self._model = CLIPModel.from_pretrained(self.model).to(self._device).eval()
        images = [Image.open(path).convert("RGB") for _, path, _ in jobs]
        inputs = self._processor(
            text=[t for _, _, t in jobs], images=images, return_tensors="pt", padding=True, truncation=True
        ).to(self._device)
        with torch.no_grad():
            img = self._model.get_image_features(pixel_values=inputs["pixel_values"])
            txt = self._model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        img = torch.nn.functional.normalize(_tensor(img).float(), dim=-1)
        txt = torch.nn.functional.normalize(_tensor(txt).float(), dim=-1)
        for (i, _, _), s in zip(jobs, (100.0 * (img * txt).sum(-1)).tolist(), strict=True):
            out[i] = s
        return out


def _tensor(x):
    """``get_*_features`` returns a tensor, or a model output with ``pooler_output`` in newer transformers."""
    return x if hasattr(x, "float") and not hasattr(x, "pooler_output") else x.pooler_output
