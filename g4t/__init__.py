"""GPT4Tools: an LLM that controls visual foundation models, and the pipeline that teaches it.

Sub-modules are imported on demand; importing ``g4t`` does no work (no model loads, no folders).
"""

__version__ = "0.1.0"
