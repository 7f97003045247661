"""A conversation's image folder: names new files and confines every path a tool touches to it.

The LLM only ever sees paths relative to the workspace root (``image/1a2b3c4d.png``), as the
published demo did. Anything that would leave the root -- absolute paths, ``..``, ``~``, URLs,
symlinks pointing outside -- is refused with ``PathError``, which the agent turns into an
observation the model can read.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image

__all__ = ["PathError", "Workspace", "fit_upload_size"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, file:, data:, C: (drive letters) ...


class PathError(ValueError):
    """A path argument that is missing, malformed or outside the conversation's folder."""


def fit_upload_size(width: int, height: int, limit: int = 512, multiple: int = 64) -> tuple[int, int]:
    """Fit ``(width, height)`` inside ``limit x limit`` keeping the aspect ratio, sides rounded to
    the nearest multiple of ``multiple`` and never below one multiple (the published code could
    round a side to 0 and crash)."""
    ratio = min(limit / width, limit / height)
    return tuple(max(multiple, round(side * ratio / multiple) * multiple) for side in (width, height))


class Workspace:
    """One conversation's files.

    Args:
        root: the conversation's folder (created if missing). Everything is read and written inside it.
        image_dir: sub-folder, relative to ``root``, for uploads and outputs (the published ``image``).
    """

    def __init__(self, root: str | Path, image_dir: str = "image") -> None:
        self.root = Path(root).resolve()
        self.image_dir = image_dir
        (self.root / image_dir).mkdir(parents=True, exist_ok=True)

    def relative(self, path: Path) -> str:
        """The name the LLM sees for ``path`` (POSIX style, relative to the root)."""
        return path.resolve().relative_to(self.root).as_posix()

    def new_image_path(self, next_to: Path | None = None) -> Path:
        """A fresh ``<uuid8>.png`` path in the folder of ``next_to`` (if inside) or the image folder."""
        folder = next_to.parent if next_to is not None else self.root / self.image_dir
        folder = folder.resolve()
        if not folder.is_relative_to(self.root):
            folder = self.root / self.image_dir
        while True:
            path = folder / f"{uuid.uuid4().hex[:8]}.png"
            if not path.exists():
                return path

    def save_image(self, image: Image.Image, next_to: Path | None = None) -> str:
        """Save ``image`` as a new PNG and return its relative name."""
        path = self.new_image_path(next_to)
        image.save(path, format="PNG")
        return self.relative(path)

    def save_upload(self, image: Image.Image, limit: int = 512) -> str:
        """Resize an upload to fit ``limit`` (sides multiples of 64), convert to RGB, save as PNG."""
        size = fit_upload_size(*image.size, limit=limit)
        return self.save_image(image.convert("RGB").resize(size, Image.Resampling.LANCZOS))

    def resolve(self, name: str) -> Path:
        """Resolve an image name from the LLM to an existing file inside the root.

        Raises:
            PathError: empty, absolute, URL-like, ``..``/``~`` paths, paths escaping through symlinks,
                or files that do not exist.
        """
        text = str(name).strip().strip("\"'` ")
        if not text:
            raise PathError("no image path given")
        if "\0" in text or _URL.match(text) or text.startswith(("~", "/", "\\")):
            raise PathError(
                f"'{text}' is not allowed: use an image name from this conversation, like image/1a2b3c4d.png"
            )
        parts = PureWindowsPath(text).parts if "\\" in text else PurePosixPath(text).parts
        if ".." in parts:
            raise PathError(f"'{text}' is not allowed: '..' may not appear in an image path")
        candidates = [self.root / Path(*parts)]
        if len(parts) == 1:  # a bare file name: look in the image folder too
            candidates.append(self.root / self.image_dir / parts[0])
        for candidate in candidates:
            resolved = candidate.resolve()
            if not resolved.is_relative_to(self.root):
                raise PathError(f"'{text}' points outside this conversation's folder")
            if resolved.is_file():
                return resolved
        raise PathError(f"image '{text}' does not exist in this conversation")

    def load_image(self, name: str) -> tuple[Image.Image, Path]:
        """Open ``name`` (after ``resolve``) as an RGB image."""
        path = self.resolve(name)
        try:
            with Image.open(path) as im:
                return im.convert("RGB"), path
        except (OSError, Image.DecompressionBombError) as e:
            raise PathError(f"'{name}' is not a readable image ({e.__class__.__name__})") from None

    def find_images(self, text: str) -> list[Path]:
        """Existing workspace images named in ``text`` (an observation or an answer), in order."""
        found = []
        for match in re.findall(r"[\w./-]+\.png", text):
            try:
                path = self.resolve(match)
            except PathError:
                continue
            if path not in found:
                found.append(path)
        return found
