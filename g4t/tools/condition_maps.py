"""Condition maps for the ControlNet tools: lines, HED, scribble, pose, depth, normal, segmentation.

M-LSD, HED (soft edges and scribbles) and OpenPose use controlnet_aux's networks and weight files
(``lllyasviel/Annotators`` layout: a hub id or a local folder holding the same file names); depth
and the normal map use transformers' DPT, and the ADE20K segmentation map transformers' UperNet. The
published demo pinned these to the CPU; here they run on the ``--load`` device. Every output has
the input's size.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from PIL import Image

from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["Image2Depth", "Image2Hed", "Image2Line", "Image2Normal", "Image2Pose", "Image2Scribble", "Image2Seg"]

ANNOTATORS = "lllyasviel/Annotators"  # controlnet_aux's weight repository (ControlNetHED.pth, mlsd_..., body_pose_...)
_HED: dict[tuple[str, str], object] = {}  # Image2Hed and Image2Scribble share one HED network per (id, device)
_HED_LOCK = threading.Lock()


def _annotator_file(model_id: str, filename: str) -> str:
    """Path of ``filename`` in a local folder or a hub repository (as controlnet_aux resolves it)."""
    if os.path.isdir(model_id):
        return os.path.join(model_id, filename)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(model_id, filename)


def _same_size(result, image: Image.Image) -> Image.Image:
    result = result if isinstance(result, Image.Image) else Image.fromarray(np.asarray(result))
    result = result.convert("RGB")
    return result.resize(image.size, Image.Resampling.BILINEAR) if result.size != image.size else result


class _Annotator(ToolModel):
    detect_resolution = 512  # controlnet_aux default: the network sees the image at this size
    image_resolution = 512


@register_tool_class("Image2Line", default_model=ANNOTATORS, gpu_memory="~0.1 GB")
class Image2Line(_Annotator):
    """M-LSD straight-line detector (controlnet_aux ``MLSDdetector``)."""

    def setup(self) -> None:
        from controlnet_aux import MLSDdetector

        self.detector = MLSDdetector.from_pretrained(self.model_id).to(self.device)

    @tool(
        name="Line Detection On Image",
        description="useful when you want to detect the straight line of the image. like: detect the straight lines of "
        "this image, or straight line detection on image, or perform straight line detection on this image, "
        "or detect the straight line image of this image. The input to this tool should be a string, "
        "representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        out = self.detector(image, detect_resolution=self.detect_resolution, image_resolution=self.image_resolution)
        return _same_size(out, image)


class _HedBase(_Annotator):
    scribble = False

    def setup(self) -> None:
        from controlnet_aux import HEDdetector

        with _HED_LOCK:
            key = (self.model_id, self.device)
            if key not in _HED:
                _HED[key] = HEDdetector.from_pretrained(self.model_id).to(self.device)
            self.detector = _HED[key]

    def detect(self, image: Image.Image) -> Image.Image:
        out = self.detector(
            image,
            detect_resolution=self.detect_resolution,
            image_resolution=self.image_resolution,
            scribble=self.scribble,
        )
        return _same_size(out, image)


@register_tool_class("Image2Hed", default_model=ANNOTATORS, gpu_memory="~0.06 GB")
class Image2Hed(_HedBase):
    """Soft HED boundaries (controlnet_aux ``HEDdetector``)."""

    @tool(
        name="Hed Detection On Image",
        description="useful when you want to detect the soft hed boundary of the image. like: detect the soft hed "
        "boundary of this image, or hed boundary detection on image, or perform hed boundary detection on "
        "this image, or detect soft hed boundary image of this image. The input to this tool should be a "
        "string, representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        return self.detect(image)


@register_tool_class("Image2Scribble", default_model=ANNOTATORS, gpu_memory="~0.06 GB (shared with Image2Hed)")
class Image2Scribble(_HedBase):
    """Scribble / sketch: HED in scribble mode, as published."""

    scribble = True

    @tool(
        name="Sketch Detection On Image",
        description="useful when you want to generate a scribble of the image. like: generate a scribble of this image, "
        "or generate a sketch from this image, detect the sketch from this image. The input to this tool "
        "should be a string, representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        return self.detect(image)


@register_tool_class("Image2Pose", default_model=ANNOTATORS, gpu_memory="~0.2 GB")
class Image2Pose(_Annotator):
    """OpenPose body keypoints (controlnet_aux). Only the body network is loaded: the published tool
    never used the hand and face networks that ``OpenposeDetector.from_pretrained`` also loads."""

    filename = "body_pose_model.pth"  # "annotator/ckpts/body_pose_model.pth" in lllyasviel/ControlNet

    def setup(self) -> None:
        from controlnet_aux import OpenposeDetector
        from controlnet_aux.open_pose.body import Body

        filename = "annotator/ckpts/body_pose_model.pth" if self.model_id == "lllyasviel/ControlNet" else self.filename
        body = Body(_annotator_file(self.model_id, filename))
        body.to(self.device)
        self.detector = OpenposeDetector(body)

    @tool(
        name="Pose Detection On Image",
        description="useful when you want to detect the human pose of the image. like: generate human poses of this "
        "image, or generate a pose image from this image. The input to this tool should be a string, "
        "representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        out = self.detector(image, detect_resolution=self.detect_resolution, image_resolution=self.image_resolution)
        return _same_size(out, image)


class _DepthBase(ToolModel):
    def setup(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.processor = AutoImageProcessor.from_pretrained(self.model_id)
        self.model = AutoModelForDepthEstimation.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    def depth(self, image: Image.Image) -> np.ndarray:
        """Relative depth (larger = nearer, as DPT predicts it), float32 HxW at the input's size."""
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device, self.torch_dtype)
        with torch.inference_mode():
            predicted = self.model(**inputs).predicted_depth
        depth = torch.nn.functional.interpolate(
            predicted[:, None].float(), size=image.size[::-1], mode="bicubic", align_corners=False
        )
        return depth[0, 0].cpu().numpy().astype(np.float32)


@register_tool_class("Image2Depth", default_model="Intel/dpt-large", gpu_memory="~0.7 GB")
class Image2Depth(_DepthBase):
    """DPT monocular depth, normalised to 0..255 and stacked to 3 channels."""

    @tool(
        name="Predict Depth On Image",
        description="useful when you want to detect depth of the image. like: generate the depth from this image, or "
        "detect the depth map on this image, or predict the depth for this image. The input to this tool "
        "should be a string, representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        depth = self.depth(image)
        depth = depth - depth.min()
        depth = depth / depth.max() * 255.0 if depth.max() > 0 else depth
        gray = depth.clip(0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1))


@register_tool_class("Image2Normal", default_model="Intel/dpt-hybrid-midas", gpu_memory="~0.5 GB")
class Image2Normal(_DepthBase):
    """Normal map derived from DPT depth (published recipe: Sobel gradients, background threshold, z = 2*pi)."""

    bg_threshold = 0.4  # published: normalised depth below this is background (flat normal)

    @tool(
        name="Predict Normal Map On Image",
        description="useful when you want to detect norm map of the image. like: generate normal map from this image, or "
        "predict normal map of this image. The input to this tool should be a string, representing the "
        "image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        import cv2

        depth = self.depth(image)
        norm = depth - depth.min()
        norm = norm / norm.max() if norm.max() > 0 else norm
        x = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3)
        y = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3)
        x[norm < self.bg_threshold] = 0
        y[norm < self.bg_threshold] = 0
        z = np.ones_like(x) * np.pi * 2.0
        normal = np.stack([x, y, z], axis=2)
        normal /= np.sum(normal**2.0, axis=2, keepdims=True) ** 0.5
        return Image.fromarray((normal * 127.5 + 127.5).clip(0, 255).astype(np.uint8))


@register_tool_class("Image2Seg", default_model="openmmlab/upernet-convnext-small", gpu_memory="~0.3 GB")
class Image2Seg(ToolModel):
    """UperNet ADE20K semantic segmentation drawn in the ADE20K palette the Seg ControlNet was trained on.

    Not in GPT4Tools (its Seg ControlNet was fed SAM overlays); the tool name and description are
    Visual ChatGPT's, which GPT4Tools derives from.
    """

    def setup(self) -> None:
        from transformers import AutoImageProcessor, UperNetForSemanticSegmentation

        self.processor = AutoImageProcessor.from_pretrained(self.model_id)
        self.model = UperNetForSemanticSegmentation.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    @tool(
        name="Segmentation On Image",
        description="useful when you want to detect segmentations of the image. like: segment this image, or "
        "generate segmentations on this image, or perform segmentation on this image. The input to this tool "
        "should be a string, representing the image_path",
        inputs=("image",),
    )
    def inference(self, image: Image.Image) -> Image.Image:
        import torch
        from controlnet_aux.util import ade_palette

        inputs = self.processor(images=image, return_tensors="pt").to(self.device, self.torch_dtype)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        logits = torch.nn.functional.interpolate(logits.float(), size=image.size[::-1], mode="bilinear")
        labels = logits.argmax(dim=1)[0].cpu().numpy()
        palette = np.array(ade_palette(), dtype=np.uint8)
        return Image.fromarray(palette[labels % len(palette)])
