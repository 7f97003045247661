"""Edits of one object named in words: remove, replace, and a fine-grained instruction edit.

``ImageEditing`` (the published class: GroundingDINO boxes -> SAM masks -> dilated mask -> SD
inpainting, for "Remove Something From The Photo" and "Replace Something From The Photo") and
``ObjectEditing`` (an InstructPix2Pix instruction applied to one named object only). Both are
composites: they are built from the loaded ``Text2Box`` and ``Segmenting`` (``g4t.tools.grounding``)
and ``Inpainting`` / ``InstructPix2Pix`` (``g4t.tools.editing``). Every pixel outside the object's
dilated mask is copied from the input unchanged.
"""

from __future__ import annotations

from PIL import Image

from g4t.tools.diffusion import blend, dilate_mask
from g4t.tools.grounding import not_found, object_mask
from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["ImageEditing", "ObjectEditing"]


@register_tool_class("ImageEditing", requires=("Text2Box", "Segmenting", "Inpainting"))
class ImageEditing(ToolModel):
    """Remove or replace an object: GroundingDINO -> SAM -> dilated mask -> SD inpainting (aspect kept).

    Only the dilated mask region changes; the rest of the picture is copied from the input.
    """

    mask_dilation = 20  # published: pixels the object mask grows by before inpainting

    @tool(
        name="Remove Something From The Photo",
        description="useful when you want to remove and object or something from the photo from its description or "
        "location. The input to this tool should be a comma separated string of two, representing the "
        "image_path and the object need to be removed. ",
        inputs=("image", "text"),
    )
    def inference_remove(self, image: Image.Image, text: str) -> Image.Image | str:
        return self.inference_replace_sam(image, text, "background")

    @tool(
        name="Replace Something From The Photo",
        description="useful when you want to replace an object from the object description or location with another "
        "object from its description. The input to this tool should be a comma separated string of three, "
        "representing the image_path, the object to be replaced, the object to be replaced with ",
        inputs=("image", "text", "replacement"),
    )
    def inference_replace_sam(self, image: Image.Image, text: str, replacement: str) -> Image.Image | str:
        found = object_mask(self.deps, image, text)
        if found is None:
            return not_found(text)
        mask = dilate_mask(found[0], self.mask_dilation)
        return self.deps["Inpainting"].inpaint(image, mask, replacement)


@register_tool_class("ObjectEditing", requires=("Text2Box", "Segmenting", "InstructPix2Pix"))
class ObjectEditing(ToolModel):
    """Fine-grained edit of one named object: the instruction is applied by InstructPix2Pix and kept only
    inside the object's dilated SAM mask; every other pixel is the input's."""

    mask_dilation = 8  # pixels the object mask grows by, so the edit covers the object's border

    @tool(
        name="Edit the Given Object",
        description="useful when you want to change only a certain object in the picture according to the text and "
        "keep everything else unchanged. like: make the car red, or turn the cat into a tiger, or make the "
        "shirt of the man blue. The input to this tool should be a comma separated string of three, "
        "representing the image_path, the text description of the object to be edited, the instruction text",
        inputs=("image", "text", "instruction"),
    )
    def inference(self, image: Image.Image, text: str, instruction: str) -> Image.Image | str:
        found = object_mask(self.deps, image, text)
        if found is None:
            return not_found(text)
        mask = dilate_mask(found[0], self.mask_dilation)
        return blend(image, self.deps["InstructPix2Pix"].edit(image, instruction), mask)
