"""Detectors, VQA, grounding, segmentation, composites, OCR and the weight-free tools on real pictures."""

from __future__ import annotations

import numpy as np
import pytest
from _vision_models import make_toolbox, scene, tiny_dirs
from PIL import Image, ImageDraw, ImageFont

from g4t.tools import Workspace
from g4t.tools.diffusion import dilate_mask
from g4t.tools.grounding import object_mask

VISION = [
    "Image2Canny", "CropImage", "Image2Line", "Image2Hed", "Image2Scribble", "Image2Pose", "Image2Depth",
    "Image2Normal", "Image2Seg", "VisualQuestionAnswering", "Text2Box", "Segmenting", "Inpainting",
    "InstructPix2Pix", "TextDetection", "ObjectDetection",
]  # fmt: skip


@pytest.fixture(scope="session")
def ids(tmp_path_factory):
    return tiny_dirs(tmp_path_factory)


@pytest.fixture(scope="module")
def box(ids):
    return make_toolbox(ids, VISION)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


def _saved(ws, obs: str) -> Image.Image:
    assert obs.endswith(".png") and not obs.startswith("Error"), obs
    with Image.open(ws.resolve(obs)) as im:
        return im.convert("RGB")


def test_composites_are_built_from_their_parts(box):
    assert {"ObjectSegmenting", "ImageEditing", "ObjectEditing"} <= set(box.instances)
    editing = box.instances["ImageEditing"]
    assert editing.deps["Inpainting"] is box.instances["Inpainting"]
    assert box.instances["ObjectEditing"].deps["InstructPix2Pix"] is box.instances["InstructPix2Pix"]


@pytest.mark.parametrize(
    "tool_name",
    [
        "Line Detection On Image",
        "Hed Detection On Image",
        "Sketch Detection On Image",
        "Pose Detection On Image",
        "Predict Depth On Image",
        "Predict Normal Map On Image",
        "Segmentation On Image",
        "Segment the Image",
        "Detection",
    ],
)
def test_image_to_image_tools_keep_the_input_size(box, ws, tool_name):
    path = ws.save_image(scene((96, 64)))
    out = _saved(ws, box.run(tool_name, path, ws).text)
    assert out.size == (96, 64)


def test_depth_and_normal_maps_are_well_formed(box):
    image = scene((96, 64))
    depth = np.asarray(box.call("Predict Depth On Image", image))
    assert depth.shape == (64, 96, 3) and (depth[..., 0] == depth[..., 1]).all() and depth.max() == 255
    normal = np.asarray(box.call("Predict Normal Map On Image", image)).astype(int)
    assert normal.shape == (64, 96, 3) and (normal[..., 2] >= 127).all()  # z points at the viewer


def test_segmentation_map_uses_the_ade20k_palette(box):
    from controlnet_aux.util import ade_palette

    seg = np.asarray(box.call("Segmentation On Image", scene()))
    palette = {tuple(c) for c in ade_palette()}
    assert {tuple(c) for c in seg.reshape(-1, 3)} <= palette


def test_vqa_answers_in_text_and_keeps_commas_in_the_question(box, ws):
    path = ws.save_image(scene())
    obs = box.run("Answer Question About The Image", f"{path}, what is red, and what is dark?", ws).text
    assert isinstance(obs, str) and not obs.startswith("Error") and not obs.endswith(".png")


def test_text2box_draws_boxes_and_survives_commas(box, ws):
    image = scene((96, 64))
    path = ws.save_image(image)
    out = _saved(ws, box.run("Detect the Give Object", f"{path}, a red box, a dark disc", ws).text)
    assert out.size == image.size and not np.array_equal(np.asarray(out), np.asarray(image))
    boxes, scores, labels = box.instances["Text2Box"].detect(image, "a red box")
    assert boxes.shape[1] == 4 and len(scores) == len(labels) == len(boxes) > 0
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 64).all()


def test_sam_masks_for_boxes_have_the_image_size(box):
    image = scene((96, 64))
    box.instances["Segmenting"].ensure_loaded()
    masks = box.instances["Segmenting"].masks_for_boxes(image, np.array([[10, 5, 50, 40], [50, 10, 90, 60]], float))
    assert masks.shape == (2, 64, 96) and masks.dtype == bool


def test_object_segmenting_chains_text2box_and_sam(box, ws):
    image = scene((96, 64))
    path = ws.save_image(image)
    out = _saved(ws, box.run("Segment the given object", f"{path}, the red box", ws).text)
    assert out.size == image.size and not np.array_equal(np.asarray(out), np.asarray(image))


def test_nothing_found_is_a_readable_observation(box, ws, monkeypatch):
    path = ws.save_image(scene())
    monkeypatch.setattr(box.instances["Text2Box"], "box_threshold", 1.1)
    assert box.run("Segment the given object", f"{path}, a unicorn", ws).text == "No a unicorn was found in the image."
    assert box.run("Remove Something From The Photo", f"{path}, a unicorn", ws).text.startswith("No a unicorn")


@pytest.fixture
def one_box(box, monkeypatch):
    """Keep only GroundingDINO's best box (random weights score every query near 0.5) and grow masks
    by 2 px, so the object mask covers part of the tiny picture, not all of it."""
    t2b = box.instances["Text2Box"]
    t2b.ensure_loaded()

    def pick(image, text):
        monkeypatch.setattr(t2b, "box_threshold", 0.0)
        _, scores, _ = t2b.detect(image, text)
        monkeypatch.setattr(t2b, "box_threshold", float(scores.max()) - 1e-6)

    monkeypatch.setattr(box.instances["ImageEditing"], "mask_dilation", 2)
    monkeypatch.setattr(box.instances["ObjectEditing"], "mask_dilation", 2)
    return pick


def _outside_unchanged(box, image, out, text, radius):
    for name in ("Text2Box", "Segmenting"):
        box.instances[name].ensure_loaded()
    mask, _ = object_mask(box.instances["ObjectEditing"].deps, image, text)
    mask = dilate_mask(mask, radius)
    assert 0 < mask.mean() < 1, "the test needs a mask that covers part of the picture"
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])


def test_remove_and_replace_change_only_the_dilated_mask(box, ws, one_box):
    image = scene((128, 64))
    path = ws.save_image(image)
    one_box(image, "the red box")
    removed = _saved(ws, box.run("Remove Something From The Photo", f"{path}, the red box", ws).text)
    assert removed.size == image.size
    _outside_unchanged(box, image, removed, "the red box", box.instances["ImageEditing"].mask_dilation)
    replaced = _saved(
        ws, box.run("Replace Something From The Photo", f"{path}, the red box, a green, tall tree", ws).text
    )
    _outside_unchanged(box, image, replaced, "the red box, a green", box.instances["ImageEditing"].mask_dilation)


def test_fine_grained_edit_leaves_pixels_outside_the_object_unchanged(box, ws, one_box):
    image = scene((96, 64))
    path = ws.save_image(image)
    one_box(image, "the red box")
    out = _saved(ws, box.run("Edit the Given Object", f"{path}, the red box, make it blue", ws).text)
    assert out.size == image.size
    _outside_unchanged(box, image, out, "the red box", box.instances["ObjectEditing"].mask_dilation)
    assert not np.array_equal(np.asarray(out), np.asarray(image))  # the object itself was edited


def test_canny_edges_follow_the_picture_edges(box, square_image):
    edges = np.asarray(box.call("Edge Detection On Image", square_image))[..., 0] > 0
    assert edges.shape == (192, 256)
    border = np.zeros_like(edges)
    border[46:147, 62:163] = True
    border[51:142, 67:158] = False  # a ring around the square's outline
    assert edges[border].sum() > 300 and not edges[~border].any()


def test_crop_uses_pixel_coordinates(box, ws, square_image):
    path = ws.save_image(square_image)
    out = _saved(ws, box.run("Crop Image", f"{path}, [64, 48, 160, 144]", ws).text)
    assert out.size == (96, 96) and np.asarray(out).max() == 0
    assert box.run("Crop Image", f"{path}, [1, 2, three]", ws).text.startswith("Error")


@pytest.mark.parametrize(
    "words, want",
    [
        ("left half", (0, 0, 128, 192)),
        ("the top right corner", (128, 0, 256, 96)),
        ("upper-left", (0, 0, 128, 96)),
        ("bottom part", (0, 96, 256, 192)),
        ("middle", (64, 48, 192, 144)),
        ("centre", (64, 48, 192, 144)),
    ],
)
def test_crop_takes_a_region_in_words(box, ws, square_image, words, want):
    path = ws.save_image(square_image)
    out = _saved(ws, box.run("Crop Image", f"{path}, {words}", ws).text)
    assert out.size == (want[2] - want[0], want[3] - want[1])
    assert np.array_equal(np.asarray(out), np.asarray(square_image.crop(want)))


@pytest.mark.parametrize("placeholder", ["[x1, y1, x2, y2]", "x_1,y_1,x_2,y_2", "left and right half", "the dog"])
def test_crop_refuses_a_placeholder_or_no_region_and_says_what_it_takes(box, ws, square_image, placeholder):
    path = ws.save_image(square_image)
    text = box.run("Crop Image", f"{path}, {placeholder}", ws).text
    assert text.startswith("Error") and "256x192" in text and "left half" in text


def test_ocr_reads_a_rendered_sentence(box, ws):
    image = Image.new("RGB", (640, 120), "white")
    ImageDraw.Draw(image).text((20, 30), "Hello Visual Chat 2024", fill="black", font=ImageFont.load_default(size=40))
    path = ws.save_image(image)
    assert box.run("Text Detection On Image", path, ws).text == "Hello Visual Chat 2024"
    blank = ws.save_image(Image.new("RGB", (64, 64), "white"))
    assert box.run("Text Detection On Image", blank, ws).text == "No text was found in the image."


@pytest.mark.parametrize(
    "tool_name, tool_input",
    [
        ("Detect the Give Object", "/etc/passwd, a dog"),
        ("Detect the Give Object", "../../../etc/hosts, a dog"),
        ("Detect the Give Object", "http://example.com/a.png, a dog"),
        ("Detect the Give Object", "image/nothere.png, a dog"),
        ("Segment the Image", ""),
        ("Segment the Image", "~/x.png"),
        ("Answer Question About The Image", "{path}"),
        ("Answer Question About The Image", "{path},  "),
        ("Replace Something From The Photo", "{path}, the red box"),
        ("Edit the Given Object", "{path}, the red box"),
        ("Detection", "{text}"),
        ("Predict Depth On Image", "image/\x00evil.png"),
    ],
)
def test_hostile_and_malformed_arguments_give_error_observations(box, ws, tool_name, tool_input):
    path = ws.save_image(scene())
    text = ws.root / "image" / "note.png"
    text.write_text("not an image")
    obs = box.run(tool_name, tool_input.format(path=path, text="image/note.png"), ws).text
    assert obs.startswith("Error"), obs
