"""Scripted model replies for tests and benches (``ScriptedBackend(edge_replies)``)."""

from __future__ import annotations

import re

EDGE = "Edge Detection On Image"


def edge_replies(prompt: str) -> str:
    """Call the edge tool on the last image the prompt names, then answer with its output: a model that
    always wants edges. Only the current request counts (text after its last "detect the edges"), so
    earlier turns' observations in a long chat are not taken for this turn's."""
    cut = prompt.rfind("detect the edges")
    done = re.findall(r"Observation: (image/\w+\.png)", prompt[cut:] if cut >= 0 else prompt)
    if done:
        return f"Thought: Do I need to use a tool? No\nAI: Here are the edges: {done[-1]}"
    images = re.findall(r"image/\w+\.png", prompt)
    if not images:
        return "Thought: Do I need to use a tool? No\nAI: Please upload an image first."
    return f"Thought: Do I need to use a tool? Yes\nAction: {EDGE}\nAction Input: {images[-1]}\nObservation:"
