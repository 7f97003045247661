"""Tools that need no model weights: Canny edges (OpenCV) and cropping."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from g4t.tools.registry import ToolError, ToolModel, register_model, tool

__all__ = ["CropImage", "Image2Canny", "parse_box"]


@register_model("Image2Canny")
class Image2Canny(ToolModel):
    """OpenCV Canny edge map (published thresholds 100/200), 3-channel, same size as the input."""

    low_threshold = 100  # published value
    high_threshold = 200  # published value

    @tool(
        name="Edge Detection On Image",
        description="useful when you want to detect the edge of the image. like: detect the edges of this image, "
        "or canny detection on image, or perform edge detection on this image, or detect the canny image of this "
        "image. The input to this tool should be a string, representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        import cv2

        edges = cv2.Canny(np.asarray(image), self.low_threshold, self.high_threshold)
        return Image.fromarray(np.stack([edges] * 3, axis=-1))


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


@register_model("CropImage")
class CropImage(ToolModel):
    """Crop by ``[x1, y1, x2, y2]`` (one of the three tools of the published teacher prompt)."""

    @tool(
        name="Crop Image",
        description="Useful when you want to crop a region or a part from the image. The input to this tool should "
        "be a comma-separated string of two, representing the image_path and the coordinates with the format of "
        "[x1, y1, x2, y2] that represents the top left and bottom right of the cropped region.",
        inputs=("image", "box"),
    )
    def inference(self, image: Image.Image, box: str) -> Image.Image:
        return image.crop(parse_box(box, image.size))
