"""Stable Diffusion tools on tiny random models of the real classes, through the production loaders."""

from __future__ import annotations

import numpy as np
import pytest
from _vision_models import CONTROLNET_CLASSES, GENERATION_CLASSES, make_toolbox, scene, tiny_dirs
from PIL import Image

from g4t.tools import Workspace
from g4t.tools.diffusion import ComponentCache, dilate_mask, generation_size, module_bytes


@pytest.fixture(scope="session")
def ids(tmp_path_factory):
    return tiny_dirs(tmp_path_factory)


@pytest.fixture(scope="module")
def cache():
    return ComponentCache()


@pytest.fixture(scope="module")
def box(ids, cache):
    return make_toolbox(ids, GENERATION_CLASSES, cache=cache)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


def _saved(ws, obs: str) -> Image.Image:
    assert obs.endswith(".png") and not obs.startswith("Error"), obs
    with Image.open(ws.resolve(obs)) as im:
        return im.convert("RGB")


def test_text2image_writes_an_image_and_is_reproducible_with_a_seed(box, ws, monkeypatch):
    first = _saved(ws, box.run("Generate Image From User Input Text", "a red car, on a road", ws).text)
    assert first.size == (64, 64)
    again = _saved(ws, box.run("Generate Image From User Input Text", "a red car, on a road", ws).text)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    inst = box.instances["Text2Image"]
    monkeypatch.setattr(inst, "seed", None)
    monkeypatch.setenv("G4T_SEED", "7")
    a = np.asarray(inst.inference("a dog"))
    b = np.asarray(inst.inference("a dog"))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("tool_name", ["Instruct Image Using Text", "Edit Image Using Text"])
def test_instruction_editing_keeps_the_input_size(box, ws, tool_name):
    path = ws.save_image(scene((96, 64)))
    out = _saved(ws, box.run(tool_name, f"{path}, make it look like a painting, with bold strokes", ws).text)
    assert out.size == (96, 64)


@pytest.mark.parametrize("cls", list(CONTROLNET_CLASSES.values()))
def test_controlnet_tools_generate_at_the_input_size(box, ws, cls):
    tool_name = box.instances[cls].spec.tools[0].name
    path = ws.save_image(scene((96, 64)))
    out = _saved(ws, box.run(tool_name, f"{path}, a house, in winter", ws).text)
    assert out.size == (96, 64)


def test_all_controlnet_tools_share_one_sd_base(box):
    pipes = []
    for cls in ["Text2Image", *CONTROLNET_CLASSES.values()]:
        inst = box.instances[cls]
        inst.ensure_loaded()
        pipes.append(inst.pipe)
    for part in ("unet", "vae", "text_encoder", "tokenizer"):
        assert len({id(getattr(p, part)) for p in pipes}) == 1, part
    assert len({id(p.controlnet) for p in pipes[1:]}) == 8  # each tool adds only its own ControlNet
    assert len({id(p.scheduler) for p in pipes}) == len(pipes)  # schedulers hold per-call state


def test_checkpoints_share_identical_vae_and_text_encoder(box, cache):
    for cls in GENERATION_CLASSES:
        box.instances[cls].ensure_loaded()
    pipes = [box.instances[c].pipe for c in ("Text2Image", "Inpainting", "InstructPix2Pix", "MagicBrush")]
    assert len({id(p.vae) for p in pipes}) == 1 and len({id(p.text_encoder) for p in pipes}) == 1
    assert len({id(p.unet) for p in pipes}) == 4  # different UNets stay separate
    shared = cache.resident_bytes()
    separate = sum(
        module_bytes([m for m in box.instances[c].pipe.components.values() if hasattr(m, "parameters")])
        for c in GENERATION_CLASSES
    )
    assert shared < 0.4 * separate, (shared, separate)


def test_inpainting_keeps_aspect_ratio_and_pixels_outside_the_mask(box):
    inst = box.instances["Inpainting"]
    inst.ensure_loaded()
    image = scene((128, 64))
    mask = np.zeros((64, 128), bool)
    mask[10:40, 20:60] = True
    out = inst.inpaint(image, mask, "a cat")
    assert out.size == image.size
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])
    assert generation_size(128, 64, target=512) == (512, 256)  # not squashed to 512x512


def test_inpainting_on_the_sd_base_shares_its_unet(ids):
    """Memory-saving option: ``--tool_models Inpainting=<SD 1.5>`` runs legacy (4-channel) inpainting on the base UNet."""
    cache = ComponentCache()
    box = make_toolbox({**ids, "Inpainting": ids["Text2Image"]}, ["Text2Image", "Inpainting"], cache=cache)
    for c in ("Text2Image", "Inpainting"):
        box.instances[c].ensure_loaded()
    assert box.instances["Inpainting"].pipe.unet is box.instances["Text2Image"].pipe.unet
    assert box.instances["Inpainting"].pipe.unet.config.in_channels == 4
    image = scene((96, 64))
    mask = np.zeros((64, 96), bool)
    mask[8:40, 16:60] = True
    out = box.instances["Inpainting"].inpaint(image, mask, "a cat")
    assert out.size == image.size
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])
    assert not np.array_equal(np.asarray(out)[mask], np.asarray(image)[mask])


def test_dilate_mask_grows_by_radius():
    mask = np.zeros((20, 20), bool)
    mask[10, 10] = True
    grown = dilate_mask(mask, 3)
    assert grown.sum() == 49 and grown[7, 7] and not grown[6, 10]


def test_offload_keeps_weights_on_the_home_device(box, ws):
    inst = box.instances["CannyText2Image"]
    inst.offload = True
    try:
        assert inst.home_device == "cpu"
        path = ws.save_image(scene((64, 64)))
        out = _saved(ws, box.run("Generate Image Condition On Canny Image", f"{path}, a cat", ws).text)
        assert out.size == (64, 64)
        assert next(inst.pipe.unet.parameters()).device.type == "cpu"
    finally:
        inst.offload = False


def test_malformed_generation_arguments_are_observations(box, ws):
    path = ws.save_image(scene())
    assert box.run("Instruct Image Using Text", path, ws).text.startswith("Error")  # no instruction
    assert box.run("Instruct Image Using Text", f"{path},   ", ws).text.startswith("Error")  # empty instruction
    assert box.run("Generate Image Condition On Depth", "/etc/passwd, a cat", ws).text.startswith("Error")
    assert box.run("Generate Image Condition On Depth", "../../x.png, a cat", ws).text.startswith("Error")
    assert box.run("Generate Image Condition On Depth", "image/missing.png, a cat", ws).text.startswith("Error")
