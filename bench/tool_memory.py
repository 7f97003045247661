"""Resident weights of the generation tools: one shared component cache vs one pipeline per tool.

Loads the 12 Stable Diffusion tools (Text2Image, InstructPix2Pix, MagicBrush, the Inpainting helper
and the 8 ControlNet tools) through the production classes twice in one process, on tiny
random-weight checkpoints of the real classes (``testkit.tiny_vision``) laid out like the real ones
(same UNet/VAE/text-encoder split; the VAE and text encoder identical across the four SD
checkpoints, as in the real SD 1.5 / inpainting / InstructPix2Pix / MagicBrush weights):

* separate: every tool gets its own empty ``ComponentCache`` -- the published one-pipeline-per-tool layout;
* shared: all tools use one cache -- what ``--load`` does on one device.

It reports resident parameter+buffer bytes of both, their ratio (and the ratio when the Inpainting
helper runs legacy 4-channel inpainting on the SD 1.5 base instead of its own inpainting UNet, the
memory-saving option ``--tool_models "Inpainting=runwayml/stable-diffusion-v1-5"``), checks that a seeded generation
gives the same pixels both ways, and prints the same ratio computed for the real checkpoints from
their parameter counts (tiny models do not have the real size proportions).

    OMP_NUM_THREADS=1 .venv/bin/python bench/tool_memory.py
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from testkit.tiny_vision import CONTROLNET_CLASSES as CONTROLNETS

# Parameter counts of the real checkpoints (diffusers / transformers classes, SD 1.5 family).
REAL = {
    "unet": 859_520_964,  # SD 1.5 UNet2DConditionModel (4 input channels; 9 for inpainting, 8 for pix2pix: +~15k)
    "vae": 83_653_863,  # AutoencoderKL kl-f8
    "text_encoder": 123_060_480,  # CLIP ViT-L/14 text model
    "controlnet": 361_278_086,  # ControlNetModel for SD 1.5 (each of the 8)
}


def real_size_figures() -> list[tuple[str, float, float]]:
    """(layout, separate GB, shared GB) in fp16 for the 12 generation tools at real size."""
    gb = 2 / 1e9  # fp16 bytes per parameter, in GB
    sd = REAL["unet"] + REAL["vae"] + REAL["text_encoder"]
    n_sd, n_cn = 4, len(CONTROLNETS)  # Text2Image, pix2pix, MagicBrush, inpainting; 8 ControlNet tools
    separate = (n_sd + n_cn) * sd + n_cn * REAL["controlnet"]
    base_only = n_sd * sd + n_cn * REAL["controlnet"]  # ControlNet tools + Text2Image share one SD base
    cross = sd + (n_sd - 1) * REAL["unet"] + n_cn * REAL["controlnet"]  # + identical VAE/text encoder shared
    legacy = sd + (n_sd - 2) * REAL["unet"] + n_cn * REAL["controlnet"]  # Inpainting on the SD 1.5 UNet too
    return [
        ("share the SD 1.5 base only", separate * gb, base_only * gb),
        ("+ identical VAE/text encoder across checkpoints", separate * gb, cross * gb),
        ("+ Inpainting on the SD 1.5 base (--tool_models)", separate * gb, legacy * gb),
        ("SD 1.5 base tools only (Text2Image + 8 ControlNet)", (1 + n_cn) * sd * gb + n_cn * REAL["controlnet"] * gb,
         (sd + n_cn * REAL["controlnet"]) * gb),
    ]  # fmt: skip


def load_all(ids: dict[str, str], base: str, shared: bool):
    import torch

    from g4t.tools import Toolbox
    from g4t.tools.diffusion import ComponentCache

    torch.set_num_threads(1)
    box = Toolbox({c: "cpu" for c in ids}, ids)
    common = ComponentCache()
    caches = []
    for inst in box.instances.values():
        inst.cache = common if shared else ComponentCache()
        caches.append(inst.cache)
        inst.num_inference_steps, inst.seed, inst.resolution = 2, 0, 64
        if hasattr(inst, "base_model"):
            inst.base_model = base
        inst.ensure_loaded()
    unique = {id(c): c for c in caches}.values()
    return box, sum(c.resident_bytes() for c in unique)


def main() -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    from testkit import tiny_vision

    with tempfile.TemporaryDirectory() as tmp:
        sd = tiny_vision.build_sd_family(tmp)
        ids = {"Text2Image": sd["base"], "InstructPix2Pix": sd["pix2pix"], "MagicBrush": sd["magicbrush"]}
        ids["Inpainting"] = sd["inpaint"]
        ids.update({cls: sd[f"controlnet-{k}"] for k, cls in CONTROLNETS.items()})
        base = str(sd["base"])
        ids = {k: str(v) for k, v in ids.items()}
        sep_box, separate = load_all(ids, base, shared=False)
        shr_box, shared = load_all(ids, base, shared=True)
        _, legacy = load_all({**ids, "Inpainting": base}, base, shared=True)

        control = Image.new("RGB", (64, 64), "black")
        ImageDraw.Draw(control).rectangle([16, 16, 48, 48], outline="white", width=2)
        same = all(
            np.array_equal(
                np.asarray(sep_box.instances[c].generate(control, "a house")),
                np.asarray(shr_box.instances[c].generate(control, "a house")),
            )
            for c in ("CannyText2Image", "DepthText2Image")
        )
        same &= np.array_equal(
            np.asarray(sep_box.instances["InstructPix2Pix"].edit(control, "make it red")),
            np.asarray(shr_box.instances["InstructPix2Pix"].edit(control, "make it red")),
        )

    print(f"tools loaded: {len(ids)} ({', '.join(ids)})")
    print(f"tiny models  separate pipelines: {separate:>12,d} bytes")
    print(f"tiny models  shared components:  {shared:>12,d} bytes")
    print(f"tiny models  ratio shared/separate: {shared / separate:.1%}")
    print(
        f"tiny models  + Inpainting on the SD base (--tool_models Inpainting=<SD 1.5>): {legacy:,d} bytes, "
        f"{legacy / separate:.1%}"
    )
    print(f"seeded outputs identical in both layouts: {same}")
    print("real checkpoints (fp16, from parameter counts):")
    for layout, sep_gb, shr_gb in real_size_figures():
        print(f"  {layout:<52s} {sep_gb:6.1f} GB -> {shr_gb:5.1f} GB  ratio {shr_gb / sep_gb:.1%}")


if __name__ == "__main__":
    main()
