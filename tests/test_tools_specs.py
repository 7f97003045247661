"""The published tool names/descriptions are frozen; docs/tools.md is generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from g4t.tools import MODELS, TOOLS, Toolbox
from g4t.tools.registry import ToolModel, register_model, tool

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
    assert published_classes <= set(MODELS)


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
    spec = MODELS["Inpainting"]
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
    from g4t.tools.registry import MODELS as registry_models

    with pytest.raises(ValueError, match="declares no tools"):

        @register_model("_NoToolClassForTest")
        class _NoTool(ToolModel):
            pass

    with pytest.raises(ValueError, match="may not declare tools"):

        @register_model("_HelperWithToolForTest", helper=True)
        class _HelperWithTool(ToolModel):
            @tool(name="_helper tool for test", description="x", inputs=("image",))
            def inference(self, image):
                return image

    assert "_NoToolClassForTest" not in registry_models and "_HelperWithToolForTest" not in registry_models
