"""What the data builder knows about each tool: arguments, condition tool and training observation.

Names and descriptions come from the tool registry (``g4t.tools``), the one source shared with the
agent. The tables below are the published facts of ``generate_annoations.py`` (condition pairs and
observation placeholders), extended for tools the published builder did not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CONDITION",
    "PUBLISHED_TRAINING_TOOLS",
    "TEXT_OBSERVATION",
    "ToolInfo",
    "registered_tools",
    "tool_catalog",
]

# The 23 tools of the published TOOLS table, in its order (LineText2Image is absent, as published).
PUBLISHED_TRAINING_TOOLS: tuple[str, ...] = (
    "Detect the Give Object",
    "Segment the Image",
    "Get Photo Description",
    "Generate Image From User Input Text",
    "Edge Detection On Image",
    "Generate Image Condition On Canny Image",
    "Predict Depth On Image",
    "Generate Image Condition On Depth",
    "Answer Question About The Image",
    "Instruct Image Using Text",
    "Sketch Detection On Image",
    "Generate Image Condition On Sketch Image",
    "Generate Image Condition On Segmentations",
    "Pose Detection On Image",
    "Generate Image Condition On Pose Image",
    "Hed Detection On Image",
    "Generate Image Condition On Soft Hed Boundary Image",
    "Predict Normal Map On Image",
    "Generate Image Condition On Normal Map",
    "Line Detection On Image",
    "Segment the given object",
    "Remove Something From The Photo",
    "Replace Something From The Photo",
)

# TOOLS_CONDITION: the tool that must run first (its output image feeds the main tool). Published
# pairs; Line has none in the published table, we add it (its detector exists and is registered).
CONDITION: dict[str, str] = {
    "Generate Image Condition On Canny Image": "Edge Detection On Image",
    "Generate Image Condition On Depth": "Predict Depth On Image",
    "Generate Image Condition On Sketch Image": "Sketch Detection On Image",
    "Generate Image Condition On Segmentations": "Segment the Image",
    "Generate Image Condition On Pose Image": "Pose Detection On Image",
    "Generate Image Condition On Soft Hed Boundary Image": "Hed Detection On Image",
    "Generate Image Condition On Normal Map": "Predict Normal Map On Image",
    "Generate Image Condition On Line Image": "Line Detection On Image",
}

# TOOLS_OUTPUT_FORMAT for tools that return text: the training observation is a placeholder.
# Every other tool returns an image ("Result saved as <img>" or "<img>").
TEXT_OBSERVATION: dict[str, str] = {
    "Detect the Give Object": "[output_from_detection_tool]",
    "Get Photo Description": "[output_from_caption_tool]",
    "Answer Question About The Image": "[output_from_vqa_tool]",
    "Text Detection On Image": "[output_from_text_detection_tool]",
    "Detection": "[output_from_detection_tool]",
}


@dataclass(frozen=True)
class ToolInfo:
    """One tool as the data builder sees it.

    Attributes:
        name: exact registry name.
        description: exact registry description (rendered rstripped in the training layout).
        n_args: number of comma-separated Action Input arguments.
        needs_image: the first argument is an image path.
        condition: tool that must run first (its output image replaces the input image), or None.
        observation: placeholder text for text-output tools, or None for image outputs.
    """

    name: str
    description: str
    n_args: int
    needs_image: bool
    condition: str | None = None
    observation: str | None = None


def registered_tools() -> dict:
    """The tool registry with every family imported (``{name: ToolSpec}``)."""
    import g4t.tools  # noqa: F401  (registration side effect)
    from g4t.tools.registry import TOOLS

    return dict(TOOLS)


def tool_catalog(names: Iterable[str]) -> dict[str, ToolInfo]:
    """``ToolInfo`` for each name (and its condition tool), from the registry.

    Args:
        names: tool names to include.

    Raises:
        ValueError: a name (or its condition tool) is not registered; the message lists valid names.
    """
    registry = registered_tools()
    wanted = list(dict.fromkeys(names))
    for name in list(wanted):
        cond = CONDITION.get(name)
        if cond and cond not in wanted:
            wanted.append(cond)
    missing = [n for n in wanted if n not in registry]
    if missing:
        raise ValueError(f"tools not in the registry: {missing}; registered: {sorted(registry)}")
    out: dict[str, ToolInfo] = {}
    for name in wanted:
        spec = registry[name]
        out[name] = ToolInfo(
            name=name,
            description=spec.description,
            n_args=len(spec.inputs),
            needs_image=bool(spec.inputs) and spec.inputs[0] == "image",
            condition=CONDITION.get(name),
            observation=TEXT_OBSERVATION.get(name),
        )
    return out
