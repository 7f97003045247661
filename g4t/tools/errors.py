"""The errors a tool input can raise, shown to the LLM (and the user) as readable text.

``PathError`` -- a path argument that is missing, malformed or outside the conversation's folder.
``ImageError`` -- a file (or upload) that exists but cannot be used as an image: too many pixels,
empty, truncated, not an image, an unsupported format. It is a ``PathError``, so every caller that
turns path problems into observations or chat messages handles it too.
"""

from __future__ import annotations

__all__ = ["ImageError", "PathError"]


class PathError(ValueError):
    """A path argument that is missing, malformed or outside the conversation's folder."""


class ImageError(PathError):
    """An image that cannot be opened safely; the message names the file and says why."""
