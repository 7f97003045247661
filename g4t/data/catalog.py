"""What the data builder knows about each tool: arguments, condition tool and training observation.

Every fact comes from the tool registry (``g4t.tools``), where each tool declares it once: its name,
description and inputs, whether it returns an image, its condition tool (published TOOLS_CONDITION)
and its training observation placeholder (published TOOLS_OUTPUT_FORMAT); see ``ToolSpec``. Only the
published builder's tool list (which tools, in which order) is kept here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PUBLISHED_TRAINING_TOOLS",
    "ToolInfo",
    "condition_pairs",
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


@dataclass(frozen=True)
class ToolInfo:
    """One tool as the data builder sees it.

    Attributes:
        name: exact registry name.
        description: exact registry description (rendered rstripped in the training layout).
        n_args: number of comma-separated Action Input arguments.
        needs_image: the first argument is an image path.
        condition: tool that must run first (its output image replaces the input image), or None.
        observation: placeholder observation of the training data, or None: a saved image name.
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


def condition_pairs() -> dict[str, str]:
    """``{tool: condition tool}`` for every registered tool that declares one (registry order)."""
    return {name: spec.condition for name, spec in registered_tools().items() if spec.condition}


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
        cond = registry[name].condition if name in registry else None
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
            needs_image=spec.takes_image,
            condition=spec.condition,
            observation=spec.training_observation,
        )
    return out
