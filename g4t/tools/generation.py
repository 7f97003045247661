"""Text-to-image with Stable Diffusion 1.5 (diffusers), on the shared component cache (``g4t.tools.diffusion``)."""

from __future__ import annotations

from PIL import Image

from g4t.tools.diffusion import NEGATIVE_PROMPT, PROMPT_SUFFIX, SD_BASE, DiffusionModel
from g4t.tools.registry import register_tool_class, tool

__all__ = ["Text2Image"]


@register_tool_class("Text2Image", default_model=SD_BASE, gpu_memory="~2.5 GB (shared SD 1.5 base)")
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
