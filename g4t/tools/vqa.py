"""Visual question answering with BLIP (transformers)."""

from __future__ import annotations

from PIL import Image

from g4t.tools.registry import ToolModel, register_tool_class, tool

__all__ = ["VisualQuestionAnswering"]


@register_tool_class("VisualQuestionAnswering", default_model="Salesforce/blip-vqa-base", gpu_memory="~1.5 GB")
class VisualQuestionAnswering(ToolModel):
    """BLIP VQA: the question is everything after the first comma (commas included)."""

    max_new_tokens = 20  # answers are a few words

    def setup(self) -> None:
        from transformers import AutoProcessor, BlipForQuestionAnswering

        self.processor = AutoProcessor.from_pretrained(self.model_id)
        self.model = BlipForQuestionAnswering.from_pretrained(self.model_id, dtype=self.torch_dtype)
        self.model.to(self.device).eval()

    @tool(
        name="Answer Question About The Image",
        description="useful when you need an answer for a question based on an image. like: what is the background color "
        "of the last image, how many cats in this figure, what is in this figure. The input to this tool "
        "should be a comma separated string of two, representing the image_path and the question",
        inputs=("image", "question"),
        training_observation="[output_from_vqa_tool]",  # published TOOLS_OUTPUT_FORMAT
    )
    def inference(self, image: Image.Image, question: str) -> str:
        import torch

        inputs = self.processor(images=image, text=question, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.torch_dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return self.processor.decode(out[0], skip_special_tokens=True).strip()
