"""Detection of every object in an image (the teacher prompt's "Detection" tool, which GPT4Tools never implemented).

A closed-set detector from transformers (``AutoModelForObjectDetection``: DETR by default, any
DETR-family id works); the boxes are drawn on a copy of the input. Its name and description are the
teacher prompt's (tool 26), which is what the unseen-tool test set uses.
"""

from __future__ import annotations

from PIL import Image

from g4t.tools.grounding import draw_boxes
from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["ObjectDetection"]


@register_tool_class("ObjectDetection", default_model="facebook/detr-resnet-50", gpu_memory="~0.2 GB")
class ObjectDetection(ToolModel):
    """Closed-set detection of every object (COCO classes with the default DETR), boxes drawn on a copy."""

    threshold = 0.7  # minimum score of a kept detection

    def setup(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        self.processor = AutoImageProcessor.from_pretrained(self.model_id)
        self.model = AutoModelForObjectDetection.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    def detect(self, image: Image.Image) -> tuple[list[list[float]], list[float], list[str]]:
        """Boxes (xyxy pixels), scores and class names of every detection above ``threshold``."""
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        result = self.processor.post_process_object_detection(
            outputs, threshold=self.threshold, target_sizes=[image.size[::-1]]
        )[0]
        names = [self.model.config.id2label.get(int(i), str(int(i))) for i in result["labels"]]
        return result["boxes"].cpu().tolist(), result["scores"].cpu().tolist(), names

    @tool(
        name="Detection",
        description="Useful when you want to detect all objects of the image, but not detect a certain object according "
        "to the text. like: detect all the objects in this image, or detect this image. The input to this "
        "tool should be a string, representing the image_path.",
        inputs=("image",),
        training_observation="[output_from_detection_tool]",  # ours, in the published placeholder style
    )
    def inference(self, image: Image.Image) -> Image.Image:
        import numpy as np

        boxes, scores, names = self.detect(image)
        labels = [f"{n}({s:.2f})" for n, s in zip(names, scores, strict=False)]
        return draw_boxes(image, np.asarray(boxes).reshape(-1, 4), labels)
