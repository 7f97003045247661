"""Grounding and segmentation: GroundingDINO boxes, SAM masks, and the object segmentation built on them.

``Text2Box`` (transformers ``GroundingDinoForObjectDetection``), ``Segmenting`` (transformers
``SamModel``: automatic masks for the whole image, box-prompted masks for the composites) and
``ObjectSegmenting`` (boxes -> masks, ``object_mask``). The edits of one named object that build on
them (remove, replace, edit) live in ``g4t.tools.editing``.

Overlays are drawn with numpy/PIL at the input's size (the published matplotlib figures were never
closed and came out at a different size).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["ObjectSegmenting", "Segmenting", "Text2Box", "draw_boxes", "not_found", "object_mask", "overlay_masks"]


def _colours(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 256, size=(max(n, 1), 3), dtype=np.uint8)


def draw_boxes(image: Image.Image, boxes: np.ndarray, labels: list[str], width: int | None = None) -> Image.Image:
    """A copy of ``image`` with ``boxes`` (xyxy pixels) outlined and labelled."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = width or max(2, round(max(image.size) / 100))  # published: 6 px at 512
    for box, label, colour in zip(boxes, labels, _colours(len(boxes)), strict=False):
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=tuple(int(c) for c in colour), width=width)
        if label:
            draw.text((x1 + width, y1 + width), label, fill=tuple(int(c) for c in colour))
    return out


def overlay_masks(image: Image.Image, masks: list[np.ndarray], alpha: float = 0.5) -> Image.Image:
    """``image`` with each boolean mask tinted in its own colour, largest first (SAM's ``show_anns``)."""
    base = np.asarray(image.convert("RGB")).astype(np.float32)
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()))
    colours = _colours(len(masks))
    for rank, i in enumerate(order):
        m = masks[i].astype(bool)
        base[m] = (1 - alpha) * base[m] + alpha * colours[rank]
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


@register_tool_class("Text2Box", default_model="IDEA-Research/grounding-dino-tiny", gpu_memory="~0.7 GB")
class Text2Box(ToolModel):
    """Open-vocabulary detection with GroundingDINO (transformers implementation, no compiled ops)."""

    box_threshold = 0.3  # published
    text_threshold = 0.25  # published

    def setup(self) -> None:
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        self.processor = AutoProcessor.from_pretrained(self.model_id)
        self.model = GroundingDinoForObjectDetection.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    def detect(self, image: Image.Image, text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Boxes (N x 4, xyxy pixels, clamped to the image), scores and matched phrases for ``text``."""
        import torch

        caption = text.lower().strip()
        caption = caption if caption.endswith(".") else caption + "."  # published caption normalisation
        inputs = self.processor(images=image, text=caption, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        outputs.pred_boxes = outputs.pred_boxes.float()
        outputs.logits = outputs.logits.float()
        result = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            target_sizes=[image.size[::-1]],
        )[0]
        w, h = image.size
        boxes = result["boxes"].cpu().numpy().reshape(-1, 4)
        boxes = np.stack(
            [boxes[:, 0].clip(0, w), boxes[:, 1].clip(0, h), boxes[:, 2].clip(0, w), boxes[:, 3].clip(0, h)], 1
        )
        labels = [str(x) for x in result.get("text_labels", result.get("labels", []))]
        return boxes, result["scores"].cpu().numpy(), labels

    @tool(
        name="Detect the Give Object",
        description="useful when you only want to detect or find out given objects in the pictureThe input to this tool "
        "should be a comma separated string of two, representing the image_path, the text description of the "
        "object to be found",
        inputs=("image", "text"),
        training_observation="[output_from_detection_tool]",  # published TOOLS_OUTPUT_FORMAT
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        boxes, scores, labels = self.detect(image, text)
        return draw_boxes(image, boxes, [f"{p}({s:.2f})" for p, s in zip(labels, scores, strict=False)])


@register_tool_class("Segmenting", default_model="facebook/sam-vit-huge", gpu_memory="~2.6 GB")
class Segmenting(ToolModel):
    """Segment Anything (transformers ``SamModel``): automatic masks, and masks for given boxes."""

    points_per_side = 32  # SamAutomaticMaskGenerator default grid
    points_per_batch = 64
    pred_iou_thresh = 0.88  # SamAutomaticMaskGenerator defaults
    stability_score_thresh = 0.95

    def setup(self) -> None:
        from transformers import SamModel, SamProcessor

        self.processor = SamProcessor.from_pretrained(self.model_id)
        self.model = SamModel.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()
        self._generator = None

    def all_masks(self, image: Image.Image) -> list[np.ndarray]:
        """Automatic masks of the whole image (boolean, input size)."""
        from transformers import pipeline

        if self._generator is None:
            self._generator = pipeline(
                "mask-generation", model=self.model, image_processor=self.processor.image_processor, device=self.device
            )
        out = self._generator(
            image,
            points_per_batch=self.points_per_batch,
            points_per_crop=self.points_per_side,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
        )
        return [np.asarray(m, dtype=bool) for m in out["masks"]]

    def masks_for_boxes(self, image: Image.Image, boxes: np.ndarray) -> np.ndarray:
        """One boolean mask (input size) per xyxy box: N x H x W."""
        import torch

        if len(boxes) == 0:
            return np.zeros((0, image.size[1], image.size[0]), dtype=bool)
        inputs = self.processor(images=image, input_boxes=[boxes.tolist()], return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
        with torch.inference_mode():
            out = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.float().cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu()
        )[0]
        return masks[:, 0].numpy().astype(bool)

    @tool(
        name="Segment the Image",
        description="useful when you want to segment all the part of the image, but not segment a certain object.like: "
        "segment all the object in this image, or generate segmentations on this image, or segment the "
        "image,or perform segmentation on this image, or segment all the object in this image.The input to "
        "this tool should be a string, representing the image_path",
        inputs=("image",),
    )
    def inference_all(self, image: Image.Image) -> Image.Image:
        return overlay_masks(image, self.all_masks(image))


def not_found(text: str) -> str:
    """The answer of an object tool when nothing matches ``text``."""
    return f"No {text} was found in the image."


def object_mask(deps: dict, image: Image.Image, text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Union of the SAM masks of every GroundingDINO box for ``text`` (and the boxes); None if nothing found."""
    boxes, _, _ = deps["Text2Box"].detect(image, text)
    if len(boxes) == 0:
        return None
    masks = deps["Segmenting"].masks_for_boxes(image, boxes)
    return masks.any(axis=0), boxes


@register_tool_class("ObjectSegmenting", requires=("Text2Box", "Segmenting"))
class ObjectSegmenting(ToolModel):
    """GroundingDINO boxes for the text, then one SAM mask per box."""

    @tool(
        name="Segment the given object",
        description="useful when you only want to segment the certain objects in the pictureaccording to the given "
        "textlike: segment the cat,or can you segment an obeject for meThe input to this tool should be a "
        "comma separated string of two, representing the image_path, the text description of the object to "
        "be found",
        inputs=("image", "text"),
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image | str:
        boxes, _, labels = self.deps["Text2Box"].detect(image, text)
        if len(boxes) == 0:
            return not_found(text)
        masks = self.deps["Segmenting"].masks_for_boxes(image, boxes)
        return draw_boxes(overlay_masks(image, list(masks)), boxes, labels)
