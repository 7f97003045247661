"""A conversation's image folder: names new files and confines every path a tool touches to it.

The LLM only ever sees paths relative to the workspace root (``image/1a2b3c4d.png``), as the
published demo did. Anything that would leave the root -- absolute paths, ``..``, ``~``, URLs,
symlinks pointing outside -- is refused with ``PathError``, which the agent turns into an
observation the model can read. So is every file-system error on a name (too long, symlink loop,
characters the file system cannot encode): ``resolve`` and ``find_images`` never raise anything else,
and error texts name the file relative to the root, never by its absolute server path
(``relativize`` / ``redact``).

Images are read through ``g4t.tools.images.open_image`` (pixel limit checked before decoding,
correct conversion of deep, transparent, CMYK, animated and rotated images); a file that exists but
cannot be used raises ``ImageError``, a ``PathError``. Files are written atomically: a failed
save leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path, PurePosixPath, PureWindowsPath

from PIL import Image

from g4t.tools.errors import ImageError, PathError
from g4t.tools.images import ImageSource, open_image

__all__ = ["MAX_IMAGE_NAMES", "ImageError", "PathError", "Workspace", "fit_upload_size", "redact_paths"]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, file:, data:, C: (drive letters) ...
# A ``.png`` name in free text: a run of name characters up to its last ``.png``. Searched in the
# reversed text, where the pattern starts with a literal and never backtracks: linear and fast
# (``[\w./-]+\.png`` retried from every letter of a long word: 4 s on 32 K letters).
_PNG_NAME_REVERSED = re.compile(r"gnp\.[\w./-]++")
# An absolute POSIX path of two or more parts, in an error text (linear: parts are separated by "/").
_ABS_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")
MAX_IMAGE_NAMES = 64
"""Distinct ``.png`` names ``find_images`` looks up per text (a reply full of names stays cheap)."""
_MAX_NAME_CHARS = 1024  # longer image names are refused before the file system sees them
_MAX_PART_BYTES = 255  # NAME_MAX of common file systems; longer parts would fail with ENAMETOOLONG


def _show(text: str, limit: int = 80) -> str:
    """``text`` shortened for an error message (a hostile name may be megabytes long)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _reason(e: BaseException) -> str:
    """A file-system error in words, without the path it carries."""
    if isinstance(e, UnicodeError):
        return "characters the file system cannot store"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, RuntimeError) and "loop" in str(e).lower():
        return "symlink loop"
    return e.__class__.__name__


def redact_paths(text: str) -> str:
    """``text`` with every absolute path of two or more parts replaced by ``.../<last part>``."""
    return _ABS_PATH.sub(lambda m: ".../" + m[1], text)


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
        max_pixels: pixel limit of every image opened here (default: ``g4t.tools.images.pixel_limit()``,
            read at each call: ``--max_image_pixels``, ``G4T_MAX_IMAGE_PIXELS`` or 25 Mpx).
    """

    def __init__(self, root: str | Path, image_dir: str = "image", max_pixels: int | None = None) -> None:
        self.root = Path(root).resolve()
        self.image_dir = image_dir
        self.max_pixels = max_pixels
        (self.root / image_dir).mkdir(parents=True, exist_ok=True)

    def relativize(self, text: str) -> str:
        """``text`` with this workspace's absolute root replaced by names relative to it."""
        root = str(self.root)
        return text.replace(root + os.sep, "").replace(root, ".") if root in text else text

    def redact(self, text: str) -> str:
        """An error text fit for the model and the user: workspace files named relative to the root,
        any other absolute path reduced to its last part."""
        return redact_paths(self.relativize(text))

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
        """Save ``image`` as a new PNG and return its relative name.

        The file is written under a temporary name and renamed into place, so a failed save (a full
        disk, an image PNG cannot hold) leaves no file behind.

        Raises:
            OSError, ValueError: the save failed (nothing was written).
        """
        path = self.new_image_path(next_to)
        tmp = path.with_name(f".{path.stem}.tmp")
        try:
            image.save(tmp, format="PNG")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self.relative(path)

    def save_upload(self, image: ImageSource, limit: int = 512) -> str:
        """Save an upload as a new RGB PNG resized to fit ``limit`` (sides multiples of 64); its relative name.

        Args:
            image: the upload: a file path (e.g. Gradio's temporary file), its bytes, or a PIL image.
            limit: longest side after resizing (published: 512).

        Raises:
            ImageError: the upload is too large (pixel limit, checked before decoding), empty,
                damaged, not an image or in an unsupported format, or it could not be saved. The
                message names a file upload by its base name (never by a server path) and says what to do.
        """
        rgb = open_image(
            image, max_pixels=self.max_pixels, fit=lambda width, height: fit_upload_size(width, height, limit=limit)
        )
        try:
            return self.save_image(rgb)
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else e.__class__.__name__
            raise ImageError(f"the upload could not be saved ({reason})") from None

    def resolve(self, name: str) -> Path:
        """Resolve an image name from the LLM to an existing file inside the root.

        Raises:
            PathError: empty, absolute, URL-like, ``..``/``~`` paths, paths escaping through symlinks,
                files that do not exist, and names the file system refuses (too long, symlink loops,
                unencodable characters). Nothing else: the message never holds an absolute path.
        """
        text = str(name).strip().strip("\"'` ")
        if not text:
            raise PathError("no image path given")
        shown = _show(text)
        if "\0" in text or _URL.match(text) or text.startswith(("~", "/", "\\")):
            raise PathError(
                f"'{shown}' is not allowed: use an image name from this conversation, like image/1a2b3c4d.png"
            )
        if len(text) > _MAX_NAME_CHARS:
            raise PathError(f"'{shown}' is too long for an image name")
        parts = PureWindowsPath(text).parts if "\\" in text else PurePosixPath(text).parts
        if ".." in parts:
            raise PathError(f"'{shown}' is not allowed: '..' may not appear in an image path")
        if any(len(part.encode("utf-8", "surrogatepass")) > _MAX_PART_BYTES for part in parts):
            raise PathError(f"'{shown}' is too long for an image name")
        candidates = [self.root / Path(*parts)]
        if len(parts) == 1:  # a bare file name: look in the image folder too
            candidates.append(self.root / self.image_dir / parts[0])
        for candidate in candidates:
            try:
                resolved = candidate.resolve()
                if not resolved.is_relative_to(self.root):
                    raise PathError(f"'{shown}' points outside this conversation's folder")
                if resolved.is_file():
                    return resolved
            except (OSError, RuntimeError, ValueError) as e:  # ValueError: PathError, unencodable names
                if isinstance(e, PathError):
                    raise
                raise PathError(f"'{shown}' cannot be used as an image name ({_reason(e)})") from None
        raise PathError(f"image '{shown}' does not exist in this conversation")

    def load_image(self, name: str) -> tuple[Image.Image, Path]:
        """Open ``name`` (after ``resolve``) as an RGB image (see ``g4t.tools.images.open_image``).

        Raises:
            PathError: the name is refused or names no file (see ``resolve``).
            ImageError: the file is not a usable image (too many pixels, damaged, not an image ...).
        """
        path = self.resolve(name)
        return open_image(path, max_pixels=self.max_pixels, name=self.relative(path)), path

    def find_images(self, text: str) -> list[Path]:
        """Existing workspace images named in ``text`` (an observation or an answer), in order.

        Never raises. Linear in ``len(text)``; only names whose last part is the name of a ``.png``
        file in the workspace reach the file system, at most ``MAX_IMAGE_NAMES`` of them.
        """
        if ".png" not in text:
            return []
        existing = {f for _, _, files in os.walk(self.root) for f in files if f.endswith(".png")}
        if not existing:
            return []
        names = dict.fromkeys(name[::-1] for name in reversed(_PNG_NAME_REVERSED.findall(text[::-1])))
        found: list[Path] = []
        tried = 0
        for name in names:
            if name.rpartition("/")[2] not in existing:
                continue
            tried += 1
            if tried > MAX_IMAGE_NAMES:
                break
            try:
                path = self.resolve(name)
            except PathError:
                continue
            if path not in found:
                found.append(path)
        return found
