"""Visual tools. Importing this package registers every tool family; model libraries
(transformers, diffusers, ...) are only imported when a tool loads its weights."""

from g4t.tools import (  # noqa: F401  (registration side effect)
    basic,
    captioning,
    controlnet,
    detectors,
    editing,
    grounding,
    ocr,
    vqa,
)
from g4t.tools.registry import MODELS, TOOLS, Toolbox, parse_load
from g4t.tools.workspace import PathError, Workspace

__all__ = ["MODELS", "TOOLS", "PathError", "Toolbox", "Workspace", "parse_load"]
