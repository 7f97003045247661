"""An offline, template-based teacher: captions -> teacher replies in the published reply format.

Stands in for the ChatGPT teacher of ``scripts/get_instruction.py`` when no endpoint is reachable
(the offline end-to-end proof, ``bench/e2e_loop.py``). For every caption it writes one line per
chosen tool, ``N. "request", [tool_name, example.jpg, args]``, exactly the shape the published
teacher prompt asks for, so the project's own parser and record builder
(``scripts/generate_annotations.py``) turn the replies into training and evaluation records.

How a line is made: the request comes from one of a few paraphrase templates of the tool's task,
filled with the caption's subject and a noun of the caption; the arguments follow the tool's
argument list (image path, object, question, style, box...). ``noise`` is the share of lines whose
request is taken from *another* tool's templates while the call stays the same (a mislabelled
sample, the kind of teacher error data selection should avoid). Output: the JSONL records
``{"file_name", "caption", "instructions"}`` that ``get_instruction.py`` writes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TEMPLATES", "teacher_lines", "write_replies"]

# tool -> request templates. Slots: {subject} (caption as a phrase), {obj} (a noun of the caption),
# {new} (a replacement object), {style}, {box}, {question}. The call's text argument is in ARGS.
TEMPLATES: dict[str, list[str]] = {
    "Detect the Give Object": [
        "Find the {obj} in the picture",
        "Where is the {obj} in this image?",
        "Locate the {obj} in the photo",
    ],
    "Segment the Image": [
        "Segment this image",
        "Give me a segmentation map of the picture",
        "Split the photo into semantic segments",
    ],
    "Get Photo Description": ["What is in this picture?", "Describe the image for me", "Tell me what the photo shows"],
    "Generate Image From User Input Text": [
        "Generate an image of {subject}",
        "Draw a picture of {subject}",
        "Create an image showing {subject}",
    ],
    "Edge Detection On Image": [
        "Detect the edges of this image",
        "Show me the canny edge map of the picture",
        "Find the edges in the photo",
    ],
    "Generate Image Condition On Canny Image": [
        "Generate a new image of {obj} from the edges of this picture",
        "Use the canny edges of this photo to draw {obj}",
        "Make a real image of {obj} following the edge map of this image",
    ],
    "Predict Depth On Image": [
        "Estimate the depth of this image",
        "Predict a depth map for the photo",
        "Show me how far away things are in this picture",
    ],
    "Generate Image Condition On Depth": [
        "Generate an image of {obj} based on the depth of this picture",
        "Use the depth map of this photo to create {obj}",
        "Make a new image of {obj} with the same depth as this image",
    ],
    "Answer Question About The Image": [
        "{question}",
        "Can you answer this: {question}",
        "Look at the image. {question}",
    ],
    "Instruct Image Using Text": [
        "Make the image look like a {style}",
        "Turn this photo into a {style}",
        "Change the style of the picture to a {style}",
    ],
    "Sketch Detection On Image": [
        "Draw a sketch of this image",
        "Detect the scribbles of the picture",
        "Get the sketch outline of the photo",
    ],
    "Generate Image Condition On Sketch Image": [
        "Create an image of {obj} from the sketch of this picture",
        "Use the scribble of this photo to generate {obj}",
        "Draw {obj} following the sketch lines of this image",
    ],
    "Generate Image Condition On Segmentations": [
        "Generate a new image of {obj} from the segmentation of this photo",
        "Use the segments of this picture to create {obj}",
        "Make an image of {obj} that keeps the segmentation of this image",
    ],
    "Pose Detection On Image": [
        "Detect the human pose in this image",
        "Show the body pose of the person in the photo",
        "Find the keypoints of the people in the picture",
    ],
    "Generate Image Condition On Pose Image": [
        "Generate an image of {obj} in the same pose as this picture",
        "Use the pose of this photo to create {obj}",
        "Make a new image of {obj} following the human pose in this image",
    ],
    "Hed Detection On Image": [
        "Detect the soft hed boundary of this image",
        "Get the hed boundary map of the photo",
        "Show me the soft boundaries of the picture",
    ],
    "Generate Image Condition On Soft Hed Boundary Image": [
        "Generate an image of {obj} from the hed boundary of this picture",
        "Use the soft boundary map of this photo to create {obj}",
        "Make a new image of {obj} following the hed edges of this image",
    ],
    "Predict Normal Map On Image": [
        "Predict the normal map of this image",
        "Estimate the surface normals of the photo",
        "Show me the normal map of the picture",
    ],
    "Generate Image Condition On Normal Map": [
        "Generate an image of {obj} from the normal map of this picture",
        "Use the surface normals of this photo to create {obj}",
        "Make a new image of {obj} with the normal map of this image",
    ],
    "Line Detection On Image": [
        "Detect the straight lines in this image",
        "Find the lines of the picture",
        "Show me the straight line map of the photo",
    ],
    "Segment the given object": [
        "Segment the {obj} in the image",
        "Cut out the {obj} from the photo",
        "Give me a mask of the {obj} in this picture",
    ],
    "Remove Something From The Photo": [
        "Remove the {obj} from the photo",
        "Erase the {obj} in the picture",
        "Get rid of the {obj} in this image",
    ],
    "Replace Something From The Photo": [
        "Replace the {obj} with a {new}",
        "Swap the {obj} in the photo for a {new}",
        "Change the {obj} in the picture into a {new}",
    ],
    "Crop Image": [
        "Crop the region {box} from the image",
        "Cut out the area {box} of the photo",
        "Keep only the part {box} of the picture",
    ],
    "Text Detection On Image": [
        "Read the text in this image",
        "What does the writing in the picture say?",
        "Detect any text in the photo",
    ],
    "Detection": [
        "Detect all the objects in this image",
        "Find every object in the photo",
        "What objects are in the picture? Detect them all",
    ],
}

# The text arguments of each call (after example.jpg for image tools); same slots as TEMPLATES.
ARGS: dict[str, list[str]] = {
    "Detect the Give Object": ["{obj}"],
    "Generate Image From User Input Text": ["{subject}"],
    "Answer Question About The Image": ["{question}"],
    "Instruct Image Using Text": ["make it look like a {style}"],
    "Segment the given object": ["{obj}"],
    "Remove Something From The Photo": ["{obj}"],
    "Replace Something From The Photo": ["{obj}", "{new}"],
    "Crop Image": ["{box}"],
}
_CONDITIONED = "{obj}"  # text argument of every "Generate Image Condition On ..." tool

_STOP = set(
    "a an the of on in at to with and is are its his her their this that some there two three four "
    "has have next near by up down top side front back while for from it as be being".split()
)
_STYLES = ["painting", "watercolor", "cartoon", "pencil drawing", "robot", "oil painting", "snowy scene"]
_NEW = ["cat", "dog", "horse", "red car", "tree", "bicycle", "flower pot", "teddy bear", "lamp"]
_QUESTIONS = [
    "Is there a {obj} in the image?",
    "What color is the {obj}?",
    "Where is the {obj} in the picture?",
    "How many people are in the picture?",
]


def _nouns(caption: str) -> list[str]:
    words = re.findall(r"[a-zA-Z]+", caption.lower())
    return [w for w in words if w not in _STOP and len(w) > 2] or ["object"]


def _slots(caption: str, rng: random.Random) -> dict[str, str]:
    subject = caption.strip().rstrip(".").strip()
    subject = subject[:1].lower() + subject[1:]
    obj = rng.choice(_nouns(caption))
    x1, y1 = rng.randrange(0, 200), rng.randrange(0, 200)
    box = f"[{x1}, {y1}, {x1 + rng.randrange(50, 300)}, {y1 + rng.randrange(50, 300)}]"
    return {
        "subject": subject,
        "obj": obj,
        "new": rng.choice([n for n in _NEW if n != obj]),
        "style": rng.choice(_STYLES),
        "box": box,
        "question": rng.choice(_QUESTIONS).format(obj=obj),
    }


def teacher_lines(caption: str, tools: Sequence[str], rng: random.Random, noise: float = 0.0) -> str:
    """A teacher reply for one caption: one numbered line per tool in ``tools`` (published format).

    Args:
        caption: the image caption.
        tools: tool names to write an instruction for (each must have templates).
        rng: random source.
        noise: share of lines whose request is drawn from another tool's templates (mislabelled).
    """
    lines = []
    for i, tool in enumerate(tools, 1):
        slots = _slots(caption, rng)
        source = tool
        if noise and rng.random() < noise:
            source = rng.choice([t for t in TEMPLATES if t != tool])
        request = rng.choice(TEMPLATES[source]).format(**slots)
        if tool == "Generate Image From User Input Text":
            args = [a.format(**slots) for a in ARGS[tool]]
        else:
            texts = ARGS.get(tool, [_CONDITIONED] if tool.startswith("Generate Image Condition") else [])
            args = ["example.jpg", *[a.format(**slots) for a in texts]]
        lines.append(f'{i}. "{request}", [{tool}, {", ".join(args)}]')
    return "\n".join(lines)


def write_replies(
    captions: Sequence[dict],
    path: str | Path,
    tools: Sequence[str] | None = None,
    tools_per_caption: int = 0,
    noise: float = 0.0,
    seed: int = 0,
) -> int:
    """Write ``get_instruction.py``-style JSONL replies for a caption list; returns the number of lines.

    Args:
        captions: ``{"file_name", "caption"}`` records (the published caption-list format).
        path: output JSONL.
        tools: tools to cover (default: every tool with templates).
        tools_per_caption: tools drawn per caption (0: all of them, as the published prompt asks).
        noise: share of mislabelled lines (see ``teacher_lines``).
        seed: random seed (same inputs + seed = same bytes).
    """
    rng = random.Random(seed)
    tools = list(tools or TEMPLATES)
    missing = [t for t in tools if t not in TEMPLATES]
    if missing:
        raise ValueError(f"no offline templates for {missing}")
    n = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for item in captions:
            chosen = rng.sample(tools, tools_per_caption) if 0 < tools_per_caption < len(tools) else tools
            reply = teacher_lines(item["caption"], chosen, rng, noise)
            n += len(chosen)
            f.write(
                json.dumps({"file_name": item["file_name"], "caption": item["caption"], "instructions": reply}) + "\n"
            )
    return n
