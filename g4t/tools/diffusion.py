"""Shared parts of the Stable Diffusion tools: a per-device component cache, seeds, offload, sizes, masks.

Memory. The published demo loaded one full pipeline per tool class: eight ControlNet tools meant
eight copies of the Stable Diffusion UNet, VAE and text encoder. Here every diffusion tool asks the
process-wide ``COMPONENTS`` cache for its parts. A part is identified by *what it holds*, not by
where it came from: the cache loads it once per (source, dtype), fingerprints its tensors, and
hands out the already-resident module when another source yields identical weights (the VAE and
CLIP text encoder of SD 1.5, its inpainting checkpoint and InstructPix2Pix are frozen copies of the
same weights). Modules live on the tool's device, or on the CPU with ``offload=True`` and move to
the device only while a pipeline runs. Each tool builds its own light pipeline object (its own
scheduler) around the shared modules; a per-device lock serialises generation, because the shared
modules may be moved by a call that offloads.

Seeds. ``G4T_SEED`` (environment) or a tool's ``seed`` attribute makes outputs reproducible; when
neither is set each call draws a fresh seed in 0..65535 as published, and logs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from g4t.tools.registry import ToolModel

__all__ = [
    "COMPONENTS",
    "NEGATIVE_PROMPT",
    "PROMPT_SUFFIX",
    "SD_BASE",
    "ComponentCache",
    "DiffusionModel",
    "blend",
    "dilate_mask",
    "fingerprint",
    "generation_size",
]

logger = logging.getLogger(__name__)

# The published runwayml/* repositories were withdrawn from the hub; this is the maintained copy.
SD_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # Text2Image and the base of every ControlNet tool
PROMPT_SUFFIX = ", best quality, extremely detailed"  # published, appended to every SD prompt
NEGATIVE_PROMPT = (  # published negative prompt of Text2Image and the ControlNet tools
    "longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, "
    "cropped, worst quality, low quality"
)


def fingerprint(module: Any) -> str:
    """Content hash of a module's tensors (names, dtypes, shapes and bytes); equal weights give equal hashes."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())  # buffer protocol: no extra copy
    return digest.hexdigest()


class ComponentCache:
    """Process-wide cache of diffusion components, keyed by content and placement.

    ``get(kind, model_id, subfolder, device, dtype)`` returns a module (UNet, VAE, text encoder,
    ControlNet) or a tokenizer. Two requests for the same source return the same object without
    loading again; two sources holding identical weights also return one object. Everything the
    cache holds is counted by ``resident_bytes``.
    """

    def __init__(self) -> None:
        self._by_source: dict[tuple, Any] = {}
        self._by_content: dict[tuple, Any] = {}
        self._lock = threading.RLock()
        self._device_locks: dict[str, threading.RLock] = {}

    def clear(self) -> None:
        with self._lock:
            self._by_source.clear()
            self._by_content.clear()

    def device_lock(self, device: str) -> threading.RLock:
        with self._lock:
            return self._device_locks.setdefault(device, threading.RLock())

    def get(self, kind: str, model_id: str, subfolder: str | None, device: str, dtype: Any) -> Any:
        """Load (or reuse) component ``kind`` of ``model_id``/``subfolder`` on ``device`` in ``dtype``.

        Args:
            kind: ``unet``, ``vae``, ``text_encoder``, ``tokenizer`` or ``controlnet``.
            model_id: Hugging Face id or local directory.
            subfolder: folder inside it (``None`` for a standalone ControlNet repo).
            device: where the module lives between calls (``cpu`` when the tool offloads).
            dtype: torch dtype of the weights.
        """
        source = (kind, str(model_id), subfolder or "", str(device), str(dtype))
        with self._lock:
            if source in self._by_source:
                return self._by_source[source]
            module = _load(kind, model_id, subfolder, dtype)
            if kind == "tokenizer":
                key = (kind, _tokenizer_key(module))
            else:
                key = (kind, type(module).__name__, fingerprint(module), str(device), str(dtype))
            if key in self._by_content:
                module = self._by_content[key]  # identical weights already resident: drop the new copy
                logger.info("sharing %s of %s with an identical resident copy", kind, model_id)
            else:
                if kind != "tokenizer":
                    module.to(device).eval().requires_grad_(False)
                self._by_content[key] = module
            self._by_source[source] = module
            return module

    def modules(self) -> list[Any]:
        """Every distinct resident module (tokenizers excluded)."""
        with self._lock:
            return [m for (kind, *_), m in self._by_content.items() if kind != "tokenizer"]

    def resident_bytes(self) -> int:
        """Bytes of parameters and buffers held by distinct modules (shared tensors counted once)."""
        return module_bytes(self.modules())


def module_bytes(modules: list[Any]) -> int:
    """Parameter and buffer bytes of ``modules``, each storage counted once."""
    seen, total = set(), 0
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:
                continue
            seen.add(ptr)
            total += t.numel() * t.element_size()
    return total


def _tokenizer_key(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.blake2b(repr((type(tokenizer).__name__, vocab)).encode(), digest_size=16).hexdigest()


def _load(kind: str, model_id: str, subfolder: str | None, dtype: Any) -> Any:
    kwargs = {"subfolder": subfolder} if subfolder else {}
    if kind == "tokenizer":
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(model_id, **kwargs)
    if kind == "text_encoder":
        from transformers import CLIPTextModel

        return CLIPTextModel.from_pretrained(model_id, dtype=dtype, **kwargs)
    import diffusers

    cls = {
        "unet": diffusers.UNet2DConditionModel,
        "vae": diffusers.AutoencoderKL,
        "controlnet": diffusers.ControlNetModel,
    }
    return cls[kind].from_pretrained(model_id, torch_dtype=dtype, **kwargs)


COMPONENTS = ComponentCache()


def generation_size(width: int, height: int, target: int = 512, multiple: int = 8) -> tuple[int, int]:
    """Generation size for an input of ``width x height``: longer side ``target``, aspect ratio kept,
    sides rounded to ``multiple`` (the published inpainting squashed every image to 512x512)."""
    scale = target / max(width, height)
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in (width, height))


def dilate_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels with a square kernel (OpenCV; the published code
    looped over every mask pixel in Python)."""
    import cv2

    if radius <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def blend(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """``edited`` inside ``mask``, ``original`` everywhere else (pixel-exact outside the mask)."""
    edited = edited.convert("RGB").resize(original.size, Image.Resampling.LANCZOS)
    out = np.where(mask[..., None], np.asarray(edited), np.asarray(original.convert("RGB")))
    return Image.fromarray(out.astype(np.uint8))


class DiffusionModel(ToolModel):
    """Base of the Stable Diffusion tools: shared components, seeds, optional CPU offload.

    Class attributes (set them on an instance to change one tool):
        seed: fixed seed for every call (``None``: ``G4T_SEED`` or a fresh random seed per call).
        offload: keep the weights on the CPU and move them to the device only while generating.
        num_inference_steps, guidance_scale: sampler settings (published values per tool).
    """

    seed: int | None = None
    offload: bool = False
    num_inference_steps: int = 20
    guidance_scale: float = 9.0
    cache: ComponentCache = COMPONENTS

    @property
    def home_device(self) -> str:
        """Where the weights rest between calls."""
        return "cpu" if self.offload or os.environ.get("G4T_OFFLOAD") == "1" else self.device

    def component(self, kind: str, model_id: str | None = None, subfolder: str | None = None) -> Any:
        if subfolder is None and kind != "controlnet":
            subfolder = kind
        return self.cache.get(kind, model_id or self.model_id, subfolder, self.home_device, self.torch_dtype)

    def sd_components(self, model_id: str | None = None) -> dict[str, Any]:
        """UNet, VAE, text encoder and tokenizer of a Stable Diffusion checkpoint, from the cache."""
        return {k: self.component(k, model_id) for k in ("vae", "text_encoder", "tokenizer", "unet")}

    def scheduler(self, cls_name: str, model_id: str | None = None) -> Any:
        """A fresh scheduler (schedulers keep per-call state, so every tool owns one)."""
        import diffusers

        cls = getattr(diffusers, cls_name)
        return cls.from_pretrained(model_id or self.model_id, subfolder="scheduler")

    def next_seed(self) -> int:
        if self.seed is not None:
            return int(self.seed)
        env = os.environ.get("G4T_SEED")
        if env not in (None, ""):
            return int(env)
        return random.randint(0, 65535)

    def generator(self) -> Any:
        import torch

        seed = self.next_seed()
        logger.info("%s: seed %d", self.spec.name, seed)
        return torch.Generator(device="cpu").manual_seed(seed)

    @contextlib.contextmanager
    def running(self, pipe: Any) -> Iterator[Any]:
        """Hold the device lock and, when offloading, move the pipeline's modules to the device."""
        with self.cache.device_lock(self.device):
            modules = [m for m in pipe.components.values() if hasattr(m, "parameters")]
            if self.home_device != self.device:
                for m in modules:
                    m.to(self.device)
            try:
                yield pipe
            finally:
                if self.home_device != self.device:
                    for m in modules:
                        m.to(self.home_device)
                    _empty_cache(self.device)

    def finish(self, pipe: Any) -> Any:
        pipe.set_progress_bar_config(disable=True)
        return pipe


def _empty_cache(device: str) -> None:
    if "cuda" in device:
        import torch

        torch.cuda.empty_cache()
