"""Tiny vision models for the tool tests, built once per test session (shared by several test modules).

Not a conftest: each test module wraps ``tiny_dirs`` in its own session fixture. The first caller
builds everything under pytest's session base temp folder; later callers reuse it.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from testkit.tiny_vision import CONTROLNET_CLASSES

_BUILT: dict[str, dict[str, str]] = {}

GENERATION_CLASSES = ["Text2Image", "InstructPix2Pix", "MagicBrush", "Inpainting", *CONTROLNET_CLASSES.values()]

# Settings that make tiny random models fast and make them "find" something.
FAST = dict(
    num_inference_steps=2,
    resolution=64,
    height=64,
    width=64,
    seed=0,
    box_threshold=0.0,
    text_threshold=0.0,
    threshold=0.0,
    pred_iou_thresh=0.0,
    stability_score_thresh=0.0,
    points_per_side=4,
    detect_resolution=64,
    image_resolution=64,
)


def tiny_dirs(tmp_path_factory) -> dict[str, str]:
    """``{--load class name: tiny model directory}`` for every vision class with weights, plus ``sd_base``."""
    if "ids" in _BUILT:
        return _BUILT["ids"]
    from testkit import tiny_vision as tv

    root = Path(tmp_path_factory.getbasetemp()) / "tiny_vision"
    sd = tv.build_sd_family(root / "sd")
    ids = {
        "Text2Image": sd["base"],
        "Inpainting": sd["inpaint"],
        "InstructPix2Pix": sd["pix2pix"],
        "MagicBrush": sd["magicbrush"],
        **{cls: sd[f"controlnet-{kind}"] for kind, cls in CONTROLNET_CLASSES.items()},
        "VisualQuestionAnswering": tv.build_blip_vqa(root / "blip_vqa"),
        "Text2Box": tv.build_grounding_dino(root / "grounding_dino"),
        "Segmenting": tv.build_sam(root / "sam"),
        "Image2Depth": tv.build_dpt(root / "dpt"),
        "Image2Seg": tv.build_upernet(root / "upernet"),
        "ObjectDetection": tv.build_detr(root / "detr"),
        "Image2Line": tv.build_mlsd(root / "mlsd"),
        "Image2Hed": tv.build_hed(root / "hed"),
        "Image2Pose": tv.build_openpose(root / "openpose"),
    }
    ids["Image2Normal"] = ids["Image2Depth"]
    ids["Image2Scribble"] = ids["Image2Hed"]
    ids["sd_base"] = sd["base"]
    _BUILT["ids"] = {k: str(v) for k, v in ids.items()}
    return _BUILT["ids"]


def make_toolbox(ids: dict[str, str], classes: list[str], cache=None):
    """A Toolbox of ``classes`` on the CPU with the tiny models and the fast settings applied."""
    from g4t.tools import Toolbox

    box = Toolbox({c: "cpu" for c in classes}, {c: ids[c] for c in classes if c in ids})
    for inst in box.instances.values():
        for attr, value in FAST.items():
            if hasattr(inst, attr):
                setattr(inst, attr, value)
        if hasattr(inst, "base_model"):
            inst.base_model = ids["sd_base"]
        if cache is not None and hasattr(inst, "cache"):
            inst.cache = cache
    return box


def scene(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A small real picture: sky, ground, a red box and a dark disc (clear edges and regions)."""
    w, h = size
    im = Image.new("RGB", size, (135, 190, 235))
    d = ImageDraw.Draw(im)
    d.rectangle([0, h * 2 // 3, w, h], fill=(90, 140, 60))
    d.rectangle([w // 5, h // 6, w // 2, h * 3 // 4], fill=(200, 30, 30))
    d.ellipse([w * 3 // 5, h // 4, w * 9 // 10, h * 2 // 3], fill=(30, 30, 40))
    return im
