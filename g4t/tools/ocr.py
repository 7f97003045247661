"""Reading text in an image (OCR), a tool of the published teacher prompt that GPT4Tools never implemented.

``Text Detection On Image`` reads text with Tesseract (Debian ``tesseract-ocr`` + ``pytesseract``;
no model download). Its name and description are the teacher prompt's (tool 25), which is what the
unseen-tool test set uses.
"""

from __future__ import annotations

import re

from PIL import Image

from g4t.tools.registry import ToolError, ToolModel, register_tool_class, tool

__all__ = ["TextDetection"]


@register_tool_class("TextDetection")
class TextDetection(ToolModel):
    """Tesseract OCR; returns the text read, in reading order, one line per text line."""

    lang = "eng"  # tesseract language pack(s), e.g. "eng+deu"

    @tool(
        name="Text Detection On Image",
        description="Useful when you want to detect the text in the image. The input to this tool should be a string, "
        "representing the image_path.",
        inputs=("image",),
        training_observation="[output_from_text_detection_tool]",  # ours, in the published placeholder style
    )
    def inference(self, image: Image.Image) -> str:
        try:
            import pytesseract

            text = pytesseract.image_to_string(image, lang=self.lang)
        except ImportError:
            raise ToolError("OCR needs the pytesseract package (pip install pytesseract)") from None
        except Exception as e:  # TesseractNotFoundError, TesseractError
            raise ToolError(
                f"OCR failed ({e.__class__.__name__}); install it with: apt-get install tesseract-ocr"
            ) from e
        lines = [re.sub(r"\s+", " ", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        return "\n".join(lines) if lines else "No text was found in the image."
