"""ControlNet generation: the eight "Generate Image Condition On ..." tools (diffusers).

Every class adds only its own ``ControlNetModel`` to ONE shared Stable Diffusion base per device
(UNet, VAE, text encoder, tokenizer from the component cache), with the published settings: prompt
``<text>, best quality, extremely detailed``, the published negative prompt, UniPC, 20 steps,
eta 0, guidance 9. The control image is generated at its own aspect ratio and the result has the
input's size. The base checkpoint is ``base_model`` (or ``G4T_SD_BASE``); ``--tool_models``
overrides the ControlNet.
"""

from __future__ import annotations

import os

from PIL import Image

from g4t.tools.diffusion import NEGATIVE_PROMPT, PROMPT_SUFFIX, SD_BASE, DiffusionModel, generation_size
from g4t.tools.registry import register_tool_class, tool

__all__ = [
    "CannyText2Image",
    "DepthText2Image",
    "HedText2Image",
    "LineText2Image",
    "NormalText2Image",
    "PoseText2Image",
    "ScribbleText2Image",
    "SegText2Image",
]

_MEMORY = "~0.7 GB + shared SD 1.5 base (~2.5 GB once per device)"


class _ControlNetText2Image(DiffusionModel):
    """Shared SD base + this tool's ControlNet."""

    base_model: str = SD_BASE  # the Stable Diffusion checkpoint every ControlNet tool shares
    num_inference_steps = 20  # published
    guidance_scale = 9.0  # published
    eta = 0.0  # published
    resolution = 512  # longer side of the generation; the control image keeps its aspect ratio

    def setup(self) -> None:
        from diffusers import StableDiffusionControlNetPipeline

        base = os.environ.get("G4T_SD_BASE") or self.base_model
        self.pipe = self.finish(
            StableDiffusionControlNetPipeline(
                **self.sd_components(base),
                controlnet=self.component("controlnet"),
                scheduler=self.scheduler("UniPCMultistepScheduler", base),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        )

    def generate(self, control: Image.Image, text: str) -> Image.Image:
        """Generate from the condition image ``control`` and the user ``text``; same size as ``control``."""
        width, height = generation_size(*control.size, target=min(self.resolution, max(control.size)))
        with self.running(self.pipe) as pipe:
            out = pipe(
                text + PROMPT_SUFFIX,
                image=control.resize((width, height), Image.Resampling.LANCZOS),
                height=height,
                width=width,
                negative_prompt=NEGATIVE_PROMPT,
                num_inference_steps=self.num_inference_steps,
                eta=self.eta,
                guidance_scale=self.guidance_scale,
                generator=self.generator(),
            ).images[0]
        return out.resize(control.size, Image.Resampling.LANCZOS) if out.size != control.size else out


@register_tool_class(
    "CannyText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-canny", gpu_memory=_MEMORY
)
class CannyText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a Canny edge map."""

    @tool(
        name="Generate Image Condition On Canny Image",
        description="useful when you want to generate a new real image from both the user description and a canny image. "
        "like: generate a real image of a object or something from this canny image, or generate a new real "
        "image of a object or something from this edge image. The input to this tool should be a comma "
        "separated string of two, representing the image_path and the user description. ",
        inputs=("image", "text"),
        condition="Edge Detection On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class("LineText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-mlsd", gpu_memory=_MEMORY)
class LineText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a M-LSD straight-line map."""

    @tool(
        name="Generate Image Condition On Line Image",
        description="useful when you want to generate a new real image from both the user description and a straight "
        "line image. like: generate a real image of a object or something from this straight line image, or "
        "generate a new real image of a object or something from this straight lines. The input to this tool "
        "should be a comma separated string of two, representing the image_path and the user description. ",
        inputs=("image", "text"),
        condition="Line Detection On Image",  # ours: the published table has no Line pair
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class("HedText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-hed", gpu_memory=_MEMORY)
class HedText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a soft HED boundary map."""

    @tool(
        name="Generate Image Condition On Soft Hed Boundary Image",
        description="useful when you want to generate a new real image from both the user description and a soft hed "
        "boundary image. like: generate a real image of a object or something from this soft hed boundary "
        "image, or generate a new real image of a object or something from this hed boundary. The input to "
        "this tool should be a comma separated string of two, representing the image_path and the user "
        "description",
        inputs=("image", "text"),
        condition="Hed Detection On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class(
    "ScribbleText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-scribble", gpu_memory=_MEMORY
)
class ScribbleText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a scribble / sketch."""

    @tool(
        name="Generate Image Condition On Sketch Image",
        description="useful when you want to generate a new real image from both the user description and a scribble "
        "image or a sketch image. The input to this tool should be a comma separated string of two, "
        "representing the image_path and the user description",
        inputs=("image", "text"),
        condition="Sketch Detection On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class(
    "PoseText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-openpose", gpu_memory=_MEMORY
)
class PoseText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a OpenPose skeleton image."""

    @tool(
        name="Generate Image Condition On Pose Image",
        description="useful when you want to generate a new real image from both the user description and a human pose "
        "image. like: generate a real image of a human from this human pose image, or generate a new real "
        "image of a human from this pose. The input to this tool should be a comma separated string of two, "
        "representing the image_path and the user description",
        inputs=("image", "text"),
        condition="Pose Detection On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class("SegText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-seg", gpu_memory=_MEMORY)
class SegText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a ADE20K-palette segmentation map."""

    @tool(
        name="Generate Image Condition On Segmentations",
        description="useful when you want to generate a new real image from both the user description and segmentations. "
        "like: generate a real image of a object or something from this segmentation image, or generate a "
        "new real image of a object or something from these segmentations. The input to this tool should be "
        "a comma separated string of two, representing the image_path and the user description",
        inputs=("image", "text"),
        condition="Segment the Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class(
    "DepthText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-depth", gpu_memory=_MEMORY
)
class DepthText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a depth map."""

    @tool(
        name="Generate Image Condition On Depth",
        description="useful when you want to generate a new real image from both the user description and depth image. "
        "like: generate a real image of a object or something from this depth image, or generate a new real "
        "image of a object or something from the depth map. The input to this tool should be a comma "
        "separated string of two, representing the image_path and the user description",
        inputs=("image", "text"),
        condition="Predict Depth On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)


@register_tool_class(
    "NormalText2Image", default_model="fusing/stable-diffusion-v1-5-controlnet-normal", gpu_memory=_MEMORY
)
class NormalText2Image(_ControlNetText2Image):
    """SD 1.5 + ControlNet conditioned on a normal map."""

    @tool(
        name="Generate Image Condition On Normal Map",
        description="useful when you want to generate a new real image from both the user description and normal map. "
        "like: generate a real image of a object or something from this normal map, or generate a new real "
        "image of a object or something from the normal map. The input to this tool should be a comma "
        "separated string of two, representing the image_path and the user description",
        inputs=("image", "text"),
        condition="Predict Normal Map On Image",  # published TOOLS_CONDITION
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.generate(image, text)
