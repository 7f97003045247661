"""Tool registry, --load parsing, argument splitting, safe execution."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from g4t.tools import TOOL_CLASSES, TOOLS, Toolbox, Workspace, parse_load
from g4t.tools.registry import ToolModel, parse_tool_models, register_tool_class, split_args, tool


def test_parse_load_tolerates_spaces_and_newlines():
    assert parse_load(" Image2Canny_cuda:0,\n  ImageCaptioning_cpu ,CropImage") == {
        "Image2Canny": "cuda:0",
        "ImageCaptioning": "cpu",
        "CropImage": "cpu",
    }


def test_parse_load_rejects_unknown_names_with_the_valid_list():
    with pytest.raises(ValueError, match=r"unknown tool class 'Nope'.*valid names: .*Image2Canny"):
        parse_load("Nope_cpu")
    with pytest.raises(ValueError, match="bad device"):
        parse_load("Image2Canny_gpu7")


def test_parse_tool_models():
    assert parse_tool_models("ImageCaptioning=/m/blip, Image2Canny=x") == {
        "ImageCaptioning": "/m/blip",
        "Image2Canny": "x",
    }
    with pytest.raises(ValueError, match="Class=model_id"):
        parse_tool_models("ImageCaptioning")
    with pytest.raises(ValueError, match="unknown tool class"):
        parse_tool_models("Foo=bar")


@pytest.mark.parametrize(
    "text,n,expected",
    [
        ("image/a.png", 1, ["image/a.png"]),
        (' "image/a.png" ', 1, ["image/a.png"]),
        ("image/a.png, make it red, and shiny", 2, ["image/a.png", "make it red, and shiny"]),
        ("image/a.png, the cat, the dog, and bird", 3, ["image/a.png", "the cat, the dog", "and bird"]),
        ("image/a.png, [1, 2, 3, 4]", 2, ["image/a.png", "[1, 2, 3, 4]"]),
        ("image/a.png", 2, ["image/a.png"]),
    ],
)
def test_split_args(text, n, expected):
    assert split_args(text, n) == expected


def test_registry_holds_published_names():
    assert TOOLS["Edge Detection On Image"].model == "Image2Canny"
    assert TOOLS["Get Photo Description"].description.endswith("representing the image_path. ")
    assert TOOL_CLASSES["ImageCaptioning"].default_model == "Salesforce/blip-image-captioning-base"


def test_registration_is_validated():
    with pytest.raises(ValueError, match="inputs declare"):

        class Bad(ToolModel):
            @tool("X tool", "desc", inputs=("image", "text"))
            def inference(self, image) -> Image.Image:
                return image

    with pytest.raises(ValueError, match="registered twice"):

        @register_tool_class("Image2Canny")
        class Dup(ToolModel):
            @tool("Another", "desc", inputs=("image",))
            def inference(self, image) -> Image.Image:
                return image

    with pytest.raises(ValueError, match="non-empty"):
        tool("", "desc", inputs=())


def test_composites_are_built_from_their_parts(tmp_path, square_image):
    @register_tool_class("TestEdgeCrop", requires=("Image2Canny", "CropImage"))
    class EdgeCrop(ToolModel):
        @tool("Test Edge Crop", "edges of a cropped region", inputs=("image", "box"))
        def inference(self, image, box) -> Image.Image:
            cropped = self.deps["CropImage"].inference(image, box)
            return self.deps["Image2Canny"].inference(cropped)

    try:
        with pytest.raises(ValueError, match="is built from"):
            Toolbox("TestEdgeCrop_cpu")
        assert "Test Edge Crop" not in Toolbox("Image2Canny_cpu").tools
        box = Toolbox("Image2Canny_cpu,CropImage_cpu")
        assert list(box.tools)[-1] == "Test Edge Crop"  # composites come after the loaded classes
        ws = Workspace(tmp_path)
        out = box.run("Test Edge Crop", f"{ws.save_image(square_image)}, [0, 0, 100, 100]", ws).text
        with Image.open(ws.root / out) as im:
            assert im.size == (100, 100)
    finally:
        del TOOL_CLASSES["TestEdgeCrop"], TOOLS["Test Edge Crop"]


def test_run_edges_on_real_content(tmp_path, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("Image2Canny_cpu")
    out = box.run("Edge Detection On Image", name, ws).text
    assert out.startswith("image/") and out.endswith(".png") and out != name
    edges = np.asarray(Image.open(ws.root / out))
    assert edges.shape == (192, 256, 3)
    # edges where the square's border is, nothing in the flat areas
    assert edges[46:51, 64:161].max() == 255 and edges[90:110, 60:68].max() == 255
    assert edges[:30].max() == 0 and edges[70:120, 90:140].max() == 0


def test_observation_carries_the_images_and_the_error_flag(tmp_path, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("Image2Canny_cpu")
    ok = box.run("Edge Detection On Image", name, ws)
    assert not ok.error and ok.images == (ws.root / ok.text,) and ok.images[0].is_file()
    assert str(ok) == ok.text
    for bad in (box.run("Edge Detection On Image", "image/nope.png", ws), box.run("Make Coffee", "x", ws)):
        assert bad.error and bad.images == ()


def test_image_name_followed_by_words_means_that_image(tmp_path, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("Image2Canny_cpu")
    out = box.run("Edge Detection On Image", f"{name} detect the edges of this image", ws).text
    assert out.startswith("image/") and out != name and (ws.root / out).is_file()
    assert box.run("Edge Detection On Image", "image/nope.png detect the edges", ws).text.startswith("Error: ")


def test_run_crop(tmp_path, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("CropImage_cpu")
    out = box.run("Crop Image", f"{name}, [64, 48, 160, 144]", ws).text
    with Image.open(ws.root / out) as im:
        assert im.size == (96, 96) and np.asarray(im).max() == 0  # all black: the square
    assert box.run("Crop Image", f"{name}, [10, 10, 10, 50]", ws).text.startswith("Error: ")
    assert "coordinates" in box.run("Crop Image", f"{name}, the dog", ws).text
    assert box.run("Crop Image", f"{name}, top left corner", ws).text.startswith("image/")  # a region in words


@pytest.mark.parametrize(
    "tool_input,needle",
    [
        ("/etc/passwd", "not allowed"),
        ("../../x.png", "'..'"),
        ("http://evil/x.png", "not allowed"),
        ("image/missing.png", "does not exist"),
        ("", "no image path"),
    ],
)
def test_hostile_arguments_become_observations(tmp_path, tool_input, needle):
    box = Toolbox("Image2Canny_cpu")
    out = box.run("Edge Detection On Image", tool_input, Workspace(tmp_path)).text
    assert out.startswith("Error: ") and needle in out


def test_unknown_tool_observation(tmp_path):
    assert Toolbox("Image2Canny_cpu").run("Make Coffee", "x", Workspace(tmp_path)).text == (
        "Make Coffee is not a valid tool, try another one."
    )


def test_model_load_failure_is_an_observation(tmp_path, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("ImageCaptioning_cpu", model_ids={"ImageCaptioning": str(tmp_path / "no-such-model")})
    out = box.run("Get Photo Description", name, ws).text
    assert out.startswith("Error: could not load") and "--tool_models" in out


def test_captioning_with_tiny_blip(tmp_path, tiny_blip, square_image):
    ws = Workspace(tmp_path)
    name = ws.save_image(square_image)
    box = Toolbox("ImageCaptioning_cpu", model_ids={"ImageCaptioning": tiny_blip})
    caption = box.run("Get Photo Description", name, ws).text
    assert isinstance(caption, str) and caption and not caption.startswith("Error")
    assert box.instances["ImageCaptioning"].model.__class__.__name__ == "BlipForConditionalGeneration"
