"""Opening images from untrusted sources (uploads, files in a conversation's folder) safely and correctly.

``open_image`` is the one door every image goes through before a tool or the workspace sees it:

* **A pixel limit, checked before decoding.** Pillow reads only the header when it opens a file, so
  the size is known before a single pixel is decoded; an image with more than ``max_pixels`` pixels
  (width x height, first frame) is refused with an ``ImageError`` that names the file and the
  limit. The limit is, in order: the ``max_pixels`` argument, ``set_max_pixels`` (the demo's
  ``--max_image_pixels``), the ``G4T_MAX_IMAGE_PIXELS`` environment variable, and
  ``DEFAULT_MAX_PIXELS`` (25 Mpx: a 25 Mpx RGBA image decodes into 100 MB). Pillow's own bomb guard
  (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 Mpx; refused outright above twice that) still applies
  above our limit, and is reported with the same message.
* **Safe formats only**: PNG, JPEG (and its multi-picture MPO), GIF, BMP, TIFF, WebP, ICO, PPM and TGA. Everything else
  -- SVG (a vector drawing, not pixels), PDF, EPS (which would start Ghostscript), empty, truncated
  and non-image files -- is refused with a readable ``ImageError``.
* **Correct conversion to 8-bit RGB.**

  - 16-bit images (``I;16``, ``I;16B``, ``I;16L``) are scaled by their *nominal* range: 0..65535 maps
    to 0..255, so a mid-grey stays mid-grey and a dark photo stays dark (Pillow's own ``convert``
    clips at 255 and turns almost every 16-bit picture white).
  - 32-bit integer (``I``) and float (``F``) images have no single nominal range, so the smallest
    standard range that holds every finite value is used: 0..1 (float only), 0..255, 0..65535
    (the two are scaled to 0..255); data outside all of them (negative values, HDR floats) is
    stretched from its actual minimum to its actual maximum. NaN and infinities become 0.
  - Transparency (alpha bands, palette and grey/RGB ``transparency`` entries, premultiplied modes)
    is composited onto white, so a fully transparent picture is white, not the colour its
    invisible pixels happen to hold.
  - CMYK (Adobe-inverted JPEGs included), palette, 1-bit, YCbCr, LAB and HSV images go through
    Pillow's conversions; animated GIF/PNG/WebP give their first frame.
  - The EXIF orientation is applied (``ImageOps.exif_transpose``): a phone photo stands upright.

* **Little memory.** With ``fit`` (used for uploads), a JPEG is decoded directly at a reduced scale
  (``Image.draft``: 1/2, 1/4 or 1/8, never below the size asked for) and the result is resized
  with a reducing gap; the large intermediate is dropped before returning.

Error messages name the file as the caller says (``name``: relative to the conversation folder, or
"the upload"), never by its absolute server path.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from g4t.tools.errors import ImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "MAX_PIXELS_ENV",
    "ImageError",
    "ImageSource",
    "open_image",
    "pixel_limit",
    "set_max_pixels",
    "to_rgb",
]

DEFAULT_MAX_PIXELS = 25_000_000
"""Pixels (width x height) above which an image is refused unless configured otherwise."""
MAX_PIXELS_ENV = "G4T_MAX_IMAGE_PIXELS"
"""Environment variable that sets the pixel limit (a positive whole number; ``25_000_000`` works)."""
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "ICO", "PPM", "TGA")
"""Pillow formats ``open_image`` accepts (raster formats decoded inside Pillow; JPEG includes MPO)."""

ImageSource = str | os.PathLike | bytes | bytearray | Image.Image
"""A file path, the bytes of a file, or an image already in memory."""

_configured: int | None = None  # set_max_pixels
_SNIFF_BYTES = 1024  # how much of a file is looked at to recognise SVG / XML
_BOMB_SIZE = re.compile(r"Image size \((\d+) pixels\)")
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_MODES_WITH_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}


def set_max_pixels(limit: int | None) -> None:
    """Set the process-wide pixel limit (``None``: back to ``G4T_MAX_IMAGE_PIXELS`` or the default).

    Raises:
        ValueError: ``limit`` is not a positive number.
    """
    global _configured
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_image_pixels must be a positive whole number of pixels, got {limit!r}")
    _configured = limit


def pixel_limit() -> int:
    """The pixel limit in force: ``set_max_pixels``, else ``G4T_MAX_IMAGE_PIXELS``, else the default.

    Raises:
        ValueError: the environment variable holds something other than a positive whole number.
    """
    if _configured is not None:
        return _configured
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive whole number of pixels, got {text[:40]!r}")
    return value


def _too_large(name: str, pixels: str, limit: int) -> ImageError:
    return ImageError(
        f"{name} is too large ({pixels} pixels; the limit is {limit:,}). Use a smaller image "
        f"(or raise the limit with --max_image_pixels or {MAX_PIXELS_ENV})."
    )


def _check_pixels(name: str, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise _too_large(name, f"{width}x{height} = {width * height:,}", limit)


def _head(source: str | os.PathLike | bytes | bytearray, name: str) -> bytes:
    """The first bytes of a file or buffer (``ImageError`` if it cannot be read or is empty)."""
    if isinstance(source, bytes | bytearray):
        head = bytes(source[:_SNIFF_BYTES])
    else:
        try:
            with open(source, "rb") as f:
                head = f.read(_SNIFF_BYTES)
        except OSError as e:
            raise ImageError(f"{name} cannot be read ({e.strerror or e.__class__.__name__})") from None
    if not head:
        raise ImageError(f"{name} is empty (0 bytes)")
    return head


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<svg") or (text.startswith((b"<?xml", b"<!doctype")) and b"<svg" in text)


def _scaled_to_8bit(im: Image.Image) -> Image.Image:
    """An ``L`` image from a 16/32-bit integer or float image (ranges: see the module docstring)."""
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        scaled = a.astype(np.float32) / 257.0
    else:
        a = a.astype(np.float64)
        finite = np.isfinite(a)
        a = np.where(finite, a, 0.0)
        lo, hi = (float(a[finite].min()), float(a[finite].max())) if finite.any() else (0.0, 0.0)
        if im.mode == "F" and lo >= 0 and hi <= 1:
            scaled = a * 255.0
        elif lo >= 0 and hi <= 255:
            scaled = a
        elif lo >= 0 and hi <= 65535:
            scaled = a / 257.0
        else:
            scaled = (a - lo) * (255.0 / (hi - lo))  # lo < 0 or hi > 65535: hi > lo
    out = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    transparency = im.info.get("transparency")
    if isinstance(transparency, int | float):  # a 16-bit grey PNG's tRNS value: those pixels are clear
        out.putalpha(Image.fromarray(np.where(np.asarray(im) == transparency, 0, 255).astype(np.uint8), "L"))
    return out


def to_rgb(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB: deep images scaled, transparency composited onto white (see module docstring)."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _scaled_to_8bit(im)
    if im.mode in _MODES_WITH_ALPHA or "transparency" in im.info:
        rgba = (im.convert("LA") if im.mode == "La" else im).convert("RGBA")  # Pillow has no La -> RGBA
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a broken EXIF block must not make the picture unreadable
        return 1


def _upright(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im) or im
    except Exception:  # a broken EXIF block: keep the stored orientation
        return im


def _finish(im: Image.Image, fit: Callable[[int, int], tuple[int, int]] | None, stored: tuple[int, int]) -> Image.Image:
    """Upright RGB, resized to ``fit(upright stored size)`` when given."""
    rgb = to_rgb(_upright(im))
    if fit is None:
        return rgb
    width, height = stored
    target = fit(height, width) if _orientation(im) in _ROTATED else fit(width, height)
    if rgb.size == target:
        return rgb
    return rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def open_image(
    source: ImageSource,
    *,
    max_pixels: int | None = None,
    name: str | None = None,
    fit: Callable[[int, int], tuple[int, int]] | None = None,
) -> Image.Image:
    """Open an image from an untrusted source as 8-bit RGB, refusing oversized ones before decoding.

    Args:
        source: a file path, the bytes of a file, or a ``PIL.Image`` (already decoded: it is still
            checked against the limit and converted).
        max_pixels: pixel limit for this call (default: ``pixel_limit()``).
        name: how messages name the image, e.g. ``image/1a2b3c4d.png`` (default: the file's base
            name, or "the image" for bytes and images); never give an absolute server path.
        fit: maps the upright size ``(width, height)`` to the size the caller needs; when given, the
            image is decoded at a reduced scale where the format allows it (JPEG) and returned at
            exactly that size (LANCZOS).

    Returns:
        A new RGB image (no file stays open).

    Raises:
        ImageError: too many pixels, empty, truncated or damaged, not an image, SVG, or a format
            outside ``FORMATS``. The message names the image and says what to do.
        ValueError: ``G4T_MAX_IMAGE_PIXELS`` is malformed.
    """
    limit = max_pixels if max_pixels is not None else pixel_limit()
    if isinstance(source, Image.Image):
        shown = f"'{name}'" if name else "the image"
        _check_pixels(shown, source.size, limit)
        return _finish(source, fit, source.size)
    if isinstance(source, bytes | bytearray):
        shown = f"'{name}'" if name else "the image"
        fp = io.BytesIO(source)
    else:
        shown = f"'{name or Path(source).name}'"
        fp = source
    head = _head(source, shown)
    if _looks_like_svg(head):
        raise ImageError(f"{shown} is an SVG drawing, not a picture; convert it to PNG or JPEG first")
    try:
        with Image.open(fp, formats=FORMATS) as im:
            stored = im.size
            _check_pixels(shown, stored, limit)
            if fit is not None and im.format in ("JPEG", "MPO"):
                width, height = stored
                want = fit(height, width)[::-1] if _orientation(im) in _ROTATED else fit(width, height)
                im.draft(None, want)  # decode at 1/2, 1/4 or 1/8 scale, never below ``want``
            im.seek(0)  # animated images: the first frame
            im.load()
            return _finish(im, fit, stored)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own guard, above our limit
        found = _BOMB_SIZE.search(str(e))
        raise _too_large(shown, f"{int(found[1]):,}" if found else "too many", limit) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{shown} is not an image in a supported format ({', '.join(f for f in FORMATS if f != 'DIB')})"
        ) from None
    except MemoryError:
        raise ImageError(f"{shown} is too large to decode in the memory available") from None
    except Exception as e:  # truncated data, broken chunks, decoder errors: the file's fault
        reason = str(e).splitlines()[0][:120] if str(e) else e.__class__.__name__
        raise ImageError(f"{shown} could not be decoded: the file is damaged or truncated ({reason})") from None
