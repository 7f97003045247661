"""Text-to-image and instruction editing with Stable Diffusion (diffusers), on shared components.

``Text2Image`` (SD 1.5), ``InstructPix2Pix``, ``MagicBrush`` (EFE's "Edit Image Using Text", the
MagicBrush fine-tune of InstructPix2Pix) and the ``Inpainting`` helper that ``ImageEditing`` and the
fine-grained edit tools use. All of them take their UNet, VAE and text encoder from the per-device
component cache (``g4t.tools.diffusion``), so weights two checkpoints have in common stay resident once.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from g4t.tools.diffusion import NEGATIVE_PROMPT, PROMPT_SUFFIX, DiffusionModel, blend, generation_size
from g4t.tools.registry import register_model, tool

__all__ = ["SD_BASE", "InstructPix2Pix", "Inpainting", "MagicBrush", "Text2Image"]

# The published runwayml/* repositories were withdrawn from the hub; these are the maintained copies.
SD_BASE = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD_INPAINTING = "stable-diffusion-v1-5/stable-diffusion-inpainting"


@register_model("Text2Image", default_model=SD_BASE, gpu_memory="~2.5 GB (shared SD 1.5 base)")
class Text2Image(DiffusionModel):
    """Stable Diffusion 1.5 text-to-image with the published prompt suffix and negative prompt."""

    num_inference_steps = 50  # published: the pipeline default
    guidance_scale = 7.5  # published: the pipeline default
    height: int | None = None  # None: the checkpoint's native size (512 for SD 1.5)
    width: int | None = None

    def setup(self) -> None:
        from diffusers import StableDiffusionPipeline

        self.pipe = self.finish(
            StableDiffusionPipeline(
                **self.sd_components(),
                scheduler=self.scheduler("PNDMScheduler"),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        )

    @tool(
        name="Generate Image From User Input Text",
        description="useful when you want to generate an image from a user input text and save it to a file. like: "
        "generate an image of an object or something, or generate an image that includes some objects. The input to "
        "this tool should be a string, representing the text used to generate image. ",
        inputs=("text",),
    )
    def inference(self, text: str) -> Image.Image:
        with self.running(self.pipe) as pipe:
            return pipe(
                text + PROMPT_SUFFIX,
                negative_prompt=NEGATIVE_PROMPT,
                height=self.height,
                width=self.width,
                num_inference_steps=self.num_inference_steps,
                guidance_scale=self.guidance_scale,
                generator=self.generator(),
            ).images[0]


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


@register_model("InstructPix2Pix", default_model="timbrooks/instruct-pix2pix", gpu_memory="~2.5 GB")
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


@register_model("MagicBrush", default_model="vinesmsuic/magicbrush-jul7", gpu_memory="~2.5 GB")
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


@register_model("Inpainting", default_model=SD_INPAINTING, gpu_memory="~2.5 GB", helper=True)
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
