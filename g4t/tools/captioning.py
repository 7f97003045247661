"""Image captioning with BLIP (transformers)."""

from __future__ import annotations

from PIL import Image

from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["ImageCaptioning"]


@register_tool_class("ImageCaptioning", default_model="Salesforce/blip-image-captioning-base", gpu_memory="~1.2 GB")
class ImageCaptioning(ToolModel):
    """BLIP captioning; also captions every uploaded image for the chat history."""

    max_new_tokens = 40  # captions are short; BLIP's own default length is 20

    def setup(self) -> None:
        from transformers import AutoProcessor, BlipForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(self.model_id)
        self.model = BlipForConditionalGeneration.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    @tool(
        name="Get Photo Description",
        description="useful when you want to know what is inside the photo. receives image_path as input. "
        "The input to this tool should be a string, representing the image_path. ",
        inputs=("image",),
        training_observation="[output_from_caption_tool]",  # published TOOLS_OUTPUT_FORMAT
    )
    def inference(self, image: Image.Image) -> str:
        import torch

        inputs = self.processor(images=image, return_tensors="pt").to(self.device, self.torch_dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return self.processor.decode(out[0], skip_special_tokens=True).strip()
