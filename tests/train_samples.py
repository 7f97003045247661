"""Hand-made GPT4Tools-format training records for the trainer tests (no network, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

from g4t.prompts import human_response, image_history, render_training_prompt, tool_response

TOOLS = [
    ("Get Photo Description", "useful when you want to know what is inside the photo. The input is image_path."),
    ("Edge Detection On Image", "useful when you want to detect the edge of the image. The input is image_path."),
]


def records(n: int = 24) -> list[dict[str, str]]:
    """``n`` records of varied length: tool calls and final answers, with and without an image."""
    out = []
    for i in range(n):
        history = image_history(f"image/img{i:04d}.png", "a dog on a red sofa " * (1 + i % 3)) if i % 2 else ""
        instruction = render_training_prompt(TOOLS[: 1 + i % 2], history, "what is in the image " * (1 + i % 4))
        if i % 3:
            output = tool_response(TOOLS[i % 2][0], f"image/img{i:04d}.png")
        else:
            output = human_response("Result saved as image/out.png " * (1 + i % 5))
        out.append({"instruction": instruction, "input": "", "output": output})
    return out


def write(path: Path, n: int = 24) -> Path:
    path.write_text(json.dumps(records(n)), encoding="utf-8")
    return path
