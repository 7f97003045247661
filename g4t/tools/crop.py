"""Cropping by box coordinates (one of the three tools of the published teacher prompt). No model weights."""

from __future__ import annotations

import re

from PIL import Image

from g4t.tools.registry import ToolError, ToolModel, register_tool_class, tool

__all__ = ["CropImage", "parse_box"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_box(text: str, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Parse ``[x1, y1, x2, y2]`` (pixels; values in 0..1 are read as fractions of the size) and clamp
    it to the image. Raises ``ToolError`` on anything that is not a non-empty box."""
    numbers = [float(n) for n in _NUMBER.findall(text)]
    if len(numbers) != 4:
        raise ToolError(f"expected coordinates [x1, y1, x2, y2], got {text!r}")
    w, h = size
    if min(numbers) >= 0 and max(numbers) <= 1 and any(v != int(v) for v in numbers):  # fractions
        numbers = [numbers[0] * w, numbers[1] * h, numbers[2] * w, numbers[3] * h]
    x1, y1, x2, y2 = (round(v) for v in numbers)
    x1, x2 = sorted((max(0, min(w, x1)), max(0, min(w, x2))))
    y1, y2 = sorted((max(0, min(h, y1)), max(0, min(h, y2))))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ToolError(f"the box {text!r} is empty inside a {w}x{h} image")
    return x1, y1, x2, y2


@register_tool_class("CropImage")
class CropImage(ToolModel):
    """Crop by ``[x1, y1, x2, y2]``."""

    @tool(
        name="Crop Image",
        description="Useful when you want to crop a region or a part from the image. The input to this tool should "
        "be a comma-separated string of two, representing the image_path and the coordinates with the format of "
        "[x1, y1, x2, y2] that represents the top left and bottom right of the cropped region.",
        inputs=("image", "box"),
    )
    def inference(self, image: Image.Image, box: str) -> Image.Image:
        return image.crop(parse_box(box, image.size))
