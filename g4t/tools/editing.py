"""Instruction editing of a whole image with Stable Diffusion (diffusers), and the inpainting helper.

``InstructPix2Pix``, ``MagicBrush`` (EFE's "Edit Image Using Text", the MagicBrush fine-tune of
InstructPix2Pix) and the ``Inpainting`` helper that the edits of one named object use
(``g4t.tools.object_editing``). All of them take their UNet, VAE and text encoder from the per-device
component cache (``g4t.tools.diffusion``), so weights two checkpoints have in common stay resident once.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from g4t.tools.diffusion import DiffusionModel, blend, generation_size
from g4t.tools.registry import register_tool_class, tool

__all__ = ["SD_INPAINTING", "InstructPix2Pix", "Inpainting", "MagicBrush"]

# The published runwayml/* repository was withdrawn from the hub; this is the maintained copy.
SD_INPAINTING = "stable-diffusion-v1-5/stable-diffusion-inpainting"


class _Pix2PixBase(DiffusionModel):
    """InstructPix2Pix-style editing; the output has the input's size."""

    num_inference_steps = 40  # published
    image_guidance_scale = 1.2  # published
    guidance_scale = 7.5  # published: the pipeline default

    def setup(self) -> None:
        from diffusers import StableDiffusionInstructPix2PixPipeline

        self.pipe = self.finish(
            StableDiffusionInstructPix2PixPipeline(
                **self.sd_components(),
                scheduler=self.scheduler("EulerAncestralDiscreteScheduler"),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        )

    def edit(self, image: Image.Image, text: str) -> Image.Image:
        """Apply the instruction ``text`` to ``image``; returns an image of the same size."""
        with self.running(self.pipe) as pipe:
            out = pipe(
                text,
                image=image,
                num_inference_steps=self.num_inference_steps,
                image_guidance_scale=self.image_guidance_scale,
                guidance_scale=self.guidance_scale,
                generator=self.generator(),
            ).images[0]
        return out.resize(image.size, Image.Resampling.LANCZOS) if out.size != image.size else out


@register_tool_class("InstructPix2Pix", default_model="timbrooks/instruct-pix2pix", gpu_memory="~2.5 GB")
class InstructPix2Pix(_Pix2PixBase):
    """InstructPix2Pix (EulerAncestral, 40 steps, image guidance 1.2 as published)."""

    @tool(
        name="Instruct Image Using Text",
        description="useful when you want to the style of the image to be like the text. like: make it look like a "
        "painting. or make it like a robot. The input to this tool should be a comma separated string of two, "
        "representing the image_path and the text. ",
        inputs=("image", "text"),
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.edit(image, text)


@register_tool_class("MagicBrush", default_model="vinesmsuic/magicbrush-jul7", gpu_memory="~2.5 GB")
class MagicBrush(_Pix2PixBase):
    """EFE's instruction editor: InstructPix2Pix fine-tuned on MagicBrush local edits."""

    @tool(
        name="Edit Image Using Text",
        description="useful when you want to change the objects according to the text. like: alter the action of the "
        "objects in this image, or change the facial expression of the people in this image according to the text, "
        "or complete the objects in the image according to the text, or remove the objects in this image according "
        "to the text. The input to this tool should be a comma separated string of two, representing the image_path "
        "and the text. ",
        inputs=("image", "text"),
    )
    def inference(self, image: Image.Image, text: str) -> Image.Image:
        return self.edit(image, text)


@register_tool_class("Inpainting", default_model=SD_INPAINTING, gpu_memory="~2.5 GB", helper=True)
class Inpainting(DiffusionModel):
    """SD inpainting used by ``ImageEditing`` and the fine-grained edits (the published helper class).

    The image is inpainted at ``resolution`` on its longer side with the aspect ratio kept, resized
    back, and only the masked pixels are taken from the result.
    """

    num_inference_steps = 50  # published: the pipeline default
    guidance_scale = 7.5  # published: the pipeline default
    resolution = 512  # longer side of the generation (published: always 512x512)

    def setup(self) -> None:
        from diffusers import StableDiffusionInpaintPipeline

        self.pipe = self.finish(
            StableDiffusionInpaintPipeline(
                **self.sd_components(),
                scheduler=self.scheduler("PNDMScheduler"),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        )

    def inpaint(self, image: Image.Image, mask: np.ndarray, prompt: str) -> Image.Image:
        """Redraw the ``mask`` region (bool HxW) of ``image`` from ``prompt``; pixels outside stay unchanged."""
        width, height = generation_size(*image.size, target=self.resolution)
        mask_image = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
        with self.running(self.pipe) as pipe:
            out = pipe(
                prompt=prompt,
                image=image.resize((width, height), Image.Resampling.LANCZOS),
                mask_image=mask_image,
                height=height,
                width=width,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
                generator=self.generator(),
            ).images[0]
        return blend(image, out, mask)
