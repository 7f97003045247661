"""Canny edge detection (OpenCV): the condition image of the Canny ControlNet tool. No model weights."""

from __future__ import annotations

import numpy as np
from PIL import Image

from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["Image2Canny"]


@register_tool_class("Image2Canny")
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
