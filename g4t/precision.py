"""One device / dtype / quantisation policy for training and inference.

``resolve_device("auto")`` is ``cuda:0`` when a GPU is visible, else ``cpu``; ``quantization_config``
is the one bitsandbytes recipe of ``--load_in_8bit`` / ``--load_in_4bit`` (NF4, double quantisation).
What ``--dtype auto`` means on each device:

``auto`` is bf16 on CUDA GPUs that support it (else fp16), bf16 on CPUs with native bf16 matrix
units (Intel AMX or AVX-512 BF16: about 10x the fp32 matmul throughput there), and fp32 on other
CPUs (``G4T_CPU_BF16=0|1`` overrides the detection: the test suite pins it to 0 so its figures do not
depend on the machine). Every script accepts both spellings, ``bf16|fp16|fp32`` and ``bfloat16|float16|float32``.
Training keeps fp32 master weights and runs bf16 under autocast; inference casts the weights.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Literal

__all__ = [
    "DTYPE_HELP",
    "DTypeName",
    "cpu_has_bf16",
    "dtype_label",
    "quantization_config",
    "resolve_device",
    "resolve_dtype",
]

logger = logging.getLogger(__name__)

DTypeName = Literal["auto", "bf16", "fp16", "fp32", "bfloat16", "float16", "float32"]
DTYPE_HELP = (
    "Weight dtype of the local LLM: auto = bf16 on GPUs that support it (else fp16) and on CPUs with AMX / "
    "AVX-512 BF16, fp32 on other CPUs; bf16|fp16|fp32 or bfloat16|float16|float32."
)
_CANONICAL = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AMX-BF16 or AVX-512 BF16), or ``G4T_CPU_BF16=1``."""
    import os

    import torch

    forced = os.environ.get("G4T_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # private helpers: absent or failing on some builds
            pass
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(name: str, device: str = "cpu"):
    """The torch dtype for ``--dtype name`` on ``device`` (``cpu``, ``cuda``, ``cuda:1``...).

    Raises:
        ValueError: an unknown name.
    """
    import torch

    name = _CANONICAL.get(name, name)
    if name != "auto":
        if name not in ("bfloat16", "float16", "float32"):
            raise ValueError(f"--dtype: unknown {name!r}; use auto, bf16, fp16 or fp32")
        return getattr(torch, name)
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


def dtype_label(dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"`` (for logs and JSON records)."""
    return str(dtype).removeprefix("torch.")


def resolve_device(name: str = "auto") -> str:
    """The torch device for ``name``: ``auto`` is ``cuda:0`` when a GPU is visible, else ``cpu``; others as given."""
    if name != "auto":
        return name
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def quantization_config(load_in_8bit: bool, load_in_4bit: bool, compute_dtype):
    """The bitsandbytes config of ``--load_in_8bit`` (int8) or ``--load_in_4bit`` (NF4, double quantisation,
    ``compute_dtype`` matmuls, QLoRA-style); None when neither is set.

    Raises:
        ValueError: both are set.
    """
    if load_in_8bit and load_in_4bit:
        raise ValueError("choose at most one of load_in_8bit and load_in_4bit")
    if not (load_in_8bit or load_in_4bit):
        return None
    from transformers import BitsAndBytesConfig

    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )
