"""The published tool names/descriptions are frozen; docs/tools.md is generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from g4t.tools import TOOL_CLASSES, TOOLS, Toolbox
from g4t.tools.registry import ToolModel, register_tool_class, tool

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "assets" / "tool_specs.golden.json").read_text())["tools"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_published_tool_is_registered_byte_exact(name):
    spec = TOOLS.get(name)
    assert spec is not None, f"published tool {name!r} is not registered"
    assert spec.description == GOLDEN[name]["description"]  # trailing spaces included
    assert spec.model == GOLDEN[name]["model"]


def test_golden_covers_every_published_tool():
    assert len(GOLDEN) == 28  # 24 GPT4Tools tools + MagicBrush (EFE) + the 3 teacher-prompt-only tools
    published_classes = {
        "InstructPix2Pix", "Text2Image", "ImageCaptioning", "Image2Canny", "CannyText2Image", "Image2Line",
        "LineText2Image", "Image2Hed", "HedText2Image", "Image2Scribble", "ScribbleText2Image", "Image2Pose",
        "PoseText2Image", "SegText2Image", "Image2Depth", "DepthText2Image", "Image2Normal", "NormalText2Image",
        "VisualQuestionAnswering", "Segmenting", "Text2Box", "ObjectSegmenting", "Inpainting", "ImageEditing",
        "MagicBrush",
    }  # fmt: skip
    assert published_classes <= set(TOOL_CLASSES)


def test_new_tools_do_not_reuse_published_names():
    new = set(TOOLS) - set(GOLDEN)
    assert new == {"Segmentation On Image", "Edit the Given Object"}
    for name in new:
        assert TOOLS[name].description.startswith("useful when you want to")


def test_docs_tools_md_is_up_to_date():
    from g4t.tools.docs import render_tools_markdown

    text = (ROOT / "docs" / "tools.md").read_text()
    assert text == render_tools_markdown(), "docs/tools.md is stale: run python scripts/gen_tool_docs.py"
    for spec in TOOLS.values():
        assert f"### {spec.name}\n" in text and spec.description in text


def test_inpainting_is_a_helper_class_loaded_with_load():
    spec = TOOL_CLASSES["Inpainting"]
    assert spec.helper and not spec.tools
    box = Toolbox("Text2Box_cpu,Segmenting_cpu,Inpainting_cpu")
    assert {"ImageEditing", "ObjectSegmenting", "Inpainting"} <= set(box.instances)
    assert set(box.tools) == {
        "Detect the Give Object",
        "Segment the Image",
        "Segment the given object",
        "Remove Something From The Photo",
        "Replace Something From The Photo",
    }
    assert "ImageEditing" not in Toolbox("Text2Box_cpu,Segmenting_cpu").instances  # published behaviour


def test_helper_flag_keeps_the_no_tool_check():
    from g4t.tools.registry import TOOL_CLASSES as registry_models

    with pytest.raises(ValueError, match="declares no tools"):

        @register_tool_class("_NoToolClassForTest")
        class _NoTool(ToolModel):
            pass

    with pytest.raises(ValueError, match="may not declare tools"):

        @register_tool_class("_HelperWithToolForTest", helper=True)
        class _HelperWithTool(ToolModel):
            @tool(name="_helper tool for test", description="x", inputs=("image",))
            def inference(self, image) -> Image.Image:
                return image

    assert "_NoToolClassForTest" not in registry_models and "_HelperWithToolForTest" not in registry_models


FACTS = json.loads((ROOT / "tests" / "assets" / "tool_facts.published.json").read_text())
# Registration order: the docs, the offline teacher and the data builder follow it (generated data depends on it).
REGISTRY_ORDER = [
    "Image2Canny", "CropImage", "ImageCaptioning", "Text2Image", "InstructPix2Pix", "MagicBrush", "Inpainting",
    "CannyText2Image", "LineText2Image", "HedText2Image", "ScribbleText2Image", "PoseText2Image", "SegText2Image",
    "DepthText2Image", "NormalText2Image", "Image2Line", "Image2Hed", "Image2Scribble", "Image2Pose", "Image2Depth",
    "Image2Normal", "Image2Seg", "Text2Box", "Segmenting", "ObjectSegmenting", "ImageEditing", "ObjectEditing",
    "TextDetection", "ObjectDetection", "VisualQuestionAnswering",
]  # fmt: skip


def _package_tools():
    """The tools of g4t.tools (other tests may register their own while the session runs)."""
    return {n: t for n, t in TOOLS.items() if TOOL_CLASSES[t.model].cls.__module__.startswith("g4t.tools.")}


def test_registration_order_is_kept():
    assert [
        name for name in TOOL_CLASSES if TOOL_CLASSES[name].cls.__module__.startswith("g4t.tools.")
    ] == REGISTRY_ORDER


def test_published_conditions_and_observations_are_declared_on_the_tools():
    tools = _package_tools()
    conditions = {n: t.condition for n, t in tools.items() if t.condition}
    # the published pairs, plus ours for the Line tool the published table left out
    assert conditions == {**FACTS["condition"], "Generate Image Condition On Line Image": "Line Detection On Image"}
    observations = {n: t.training_observation for n, t in tools.items() if t.training_observation}
    assert observations == {
        **FACTS["training_observation"],
        "Text Detection On Image": "[output_from_text_detection_tool]",
        "Detection": "[output_from_detection_tool]",
    }


def test_returns_image_is_read_from_the_return_annotation():
    tools = _package_tools()
    text_tools = {n for n, t in tools.items() if not t.returns_image}
    assert text_tools == {"Get Photo Description", "Answer Question About The Image", "Text Detection On Image"}
    assert all(t.training_observation for n, t in tools.items() if n in text_tools)  # the data builder needs one
    assert tools["Segment the given object"].returns_image  # Image.Image | str: an image, or text if nothing matches


def test_tool_facts_are_validated_at_registration():
    with pytest.raises(ValueError, match=r"annotate what .* returns: str, Image.Image or Image.Image \| str"):

        @tool("_unannotated tool for test", "x", inputs=("image",))
        def unannotated(image):
            return image

    with pytest.raises(ValueError, match=r"annotate what"):

        @tool("_list tool for test", "x", inputs=("image",))
        def returns_list(image) -> list:
            return [image]

    with pytest.raises(ValueError, match="first input is not one"):

        @tool("_text condition tool for test", "x", inputs=("text",), condition="Edge Detection On Image")
        def text_in(text) -> Image.Image:
            return Image.new("RGB", (1, 1))


def test_conditions_must_name_an_image_to_image_tool():
    from dataclasses import replace

    from g4t.tools.registry import check_conditions

    canny = TOOLS["Generate Image Condition On Canny Image"]
    check_conditions({t.name: t for t in TOOLS.values()})
    with pytest.raises(ValueError, match=r"its condition 'Nope' is not a registered tool"):
        check_conditions({canny.name: replace(canny, condition="Nope")})
    with pytest.raises(ValueError, match="must take one image and return one"):
        check_conditions({**TOOLS, canny.name: replace(canny, condition="Get Photo Description")})


def test_data_catalog_reads_the_facts_from_the_registry():
    from g4t.data.catalog import condition_pairs, tool_catalog

    info = tool_catalog(["Generate Image Condition On Depth", "Answer Question About The Image"])
    assert set(info) == {
        "Generate Image Condition On Depth",
        "Answer Question About The Image",
        "Predict Depth On Image",
    }
    assert info["Generate Image Condition On Depth"].condition == "Predict Depth On Image"
    assert info["Answer Question About The Image"].observation == "[output_from_vqa_tool]"
    assert info["Predict Depth On Image"].observation is None and info["Predict Depth On Image"].needs_image
    assert condition_pairs() == {n: t.condition for n, t in TOOLS.items() if t.condition}
