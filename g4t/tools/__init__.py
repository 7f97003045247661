"""Visual tools. Importing this package registers every tool family; model libraries
(transformers, diffusers, ...) are only imported when a tool loads its weights.

One module per family, named for what it holds. The import order below is the registration order
(``TOOL_CLASSES`` / ``TOOLS``), which the docs, the offline teacher and the data builder follow: keep it
(``tests/test_tools_specs.py`` checks it, since generated data depends on it).
"""

from g4t.tools import (  # noqa: I001, F401  (registration side effect, in this order)
    edges,
    crop,
    captioning,
    generation,
    editing,
    controlnet,
    condition_maps,
    grounding,
    object_editing,
    ocr,
    detection,
    vqa,
)
from g4t.tools.registry import TOOL_CLASSES, TOOLS, Toolbox, check_conditions, parse_load
from g4t.tools.workspace import ImageError, PathError, Workspace

check_conditions()  # every declared condition names a registered image -> image tool

__all__ = ["TOOL_CLASSES", "TOOLS", "ImageError", "PathError", "Toolbox", "Workspace", "parse_load"]
