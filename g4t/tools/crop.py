"""Cropping by box coordinates or by a region in words (one of the three tools of the published teacher
prompt). No model weights.

People say where to crop in words ("the left half", "top right corner", "the middle") far more often
than in pixels, and a model cannot know an image's pixel size unless the upload tells it. So the box
may be given as ``[x1, y1, x2, y2]`` (pixels, or fractions of the size when every value is in 0..1)
or as a region phrase from ``REGIONS`` (synonyms such as "upper left", "centre", "left side" too).
A template placeholder copied from the tool description (``[x1, y1, x2, y2]``) is refused with a
clear error instead of being read as the digits it contains.
"""

from __future__ import annotations

import re

from PIL import Image

from g4t.tools.registry import ToolError, ToolModel, register_tool_class, tool

__all__ = ["REGIONS", "CropImage", "parse_box", "parse_region"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_PLACEHOLDER = re.compile(r"\b[xy]_?[12]\b", re.I)  # x1, y1, x2, y2 (x_1 ...) copied from the description

# Region phrase -> (x1, y1, x2, y2) as fractions of the width and height. The canonical phrases are what
# the training data's crop requests say; ``parse_region`` also reads the synonyms below.
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left half": (0, 0, 0.5, 1),
    "right half": (0.5, 0, 1, 1),
    "top half": (0, 0, 1, 0.5),
    "bottom half": (0, 0.5, 1, 1),
    "top left corner": (0, 0, 0.5, 0.5),
    "top right corner": (0.5, 0, 1, 0.5),
    "bottom left corner": (0, 0.5, 0.5, 1),
    "bottom right corner": (0.5, 0.5, 1, 1),
    "center": (0.25, 0.25, 0.75, 0.75),
}
_SYNONYMS = [
    (r"\b(?:upper|top)\b", "top"),
    (r"\b(?:lower|bottom)\b", "bottom"),
    (r"\b(?:centre|middle|central|centered|centred)\b", "center"),
    (r"\b(?:side|part|portion|area|region|section|quarter|corner|half)s?\b", ""),
    (r"-", " "),
]


def parse_region(text: str) -> tuple[float, float, float, float] | None:
    """A region phrase ("left half", "upper right corner", "the middle") as fractions
    ``(x1, y1, x2, y2)`` of the image size, or None when ``text`` names no region."""
    words = text.lower()
    for pattern, repl in _SYNONYMS:
        words = re.sub(pattern, repl, words)
    found = set(re.findall(r"\b(?:left|right|top|bottom|center)\b", words))
    horizontal = found & {"left", "right"}
    vertical = found & {"top", "bottom"}
    if len(horizontal) > 1 or len(vertical) > 1:
        return None
    x1, x2 = {"left": (0, 0.5), "right": (0.5, 1)}.get(next(iter(horizontal), ""), (0, 1))
    y1, y2 = {"top": (0, 0.5), "bottom": (0.5, 1)}.get(next(iter(vertical), ""), (0, 1))
    if horizontal or vertical:
        return x1, y1, x2, y2
    return REGIONS["center"] if "center" in found else None


def parse_box(text: str, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Parse ``[x1, y1, x2, y2]`` (pixels; values in 0..1 are read as fractions of the size) or a region in
    words (``parse_region``) and clamp it to the image. Raises ``ToolError`` on anything that is not a
    non-empty box, a placeholder such as ``[x1, y1, x2, y2]`` included."""
    w, h = size
    numbers = [float(n) for n in _NUMBER.findall(text)]
    if _PLACEHOLDER.search(text):
        raise ToolError(
            f"{text!r} is a placeholder, not a box: give pixel coordinates such as [0, 0, {w // 2}, {h}] "
            f"(the image is {w}x{h}) or a region in words such as 'left half' or 'top right corner'"
        )
    if len(numbers) != 4:
        region = parse_region(text)
        if region is None:
            raise ToolError(
                f"expected coordinates [x1, y1, x2, y2] or a region such as 'left half', 'top right corner' or "
                f"'center', got {text!r} (the image is {w}x{h})"
            )
        numbers = [region[0] * w, region[1] * h, region[2] * w, region[3] * h]
    elif min(numbers) >= 0 and max(numbers) <= 1 and any(v != int(v) for v in numbers):  # fractions
        numbers = [numbers[0] * w, numbers[1] * h, numbers[2] * w, numbers[3] * h]
    x1, y1, x2, y2 = (round(v) for v in numbers)
    x1, x2 = sorted((max(0, min(w, x1)), max(0, min(w, x2))))
    y1, y2 = sorted((max(0, min(h, y1)), max(0, min(h, y2))))
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ToolError(f"the box {text!r} is empty inside a {w}x{h} image")
    return x1, y1, x2, y2


@register_tool_class("CropImage")
class CropImage(ToolModel):
    """Crop by ``[x1, y1, x2, y2]`` or by a region in words."""

    @tool(
        name="Crop Image",
        description="Useful when you want to crop a region or a part from the image. The input to this tool should "
        "be a comma-separated string of two, representing the image_path and the coordinates with the format of "
        "[x1, y1, x2, y2] that represents the top left and bottom right of the cropped region.",
        inputs=("image", "box"),
    )
    def inference(self, image: Image.Image, box: str) -> Image.Image:
        return image.crop(parse_box(box, image.size))
