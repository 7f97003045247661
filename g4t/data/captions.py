"""Caption file loaders: the published caption list, COCO captions JSON and JSONL.

Every record gets a stable id: the file's own ``id`` when present, otherwise a hash of the file name
and caption, so a rerun on the same file (or a resumed run) maps each caption to the same record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from g4t.data.io import DataError, read_json, read_jsonl

__all__ = ["Caption", "load_captions"]


@dataclass(frozen=True)
class Caption:
    """One image caption to prompt the teacher with.

    Attributes:
        id: stable record id (string).
        file_name: image file name (e.g. ``000000438993.jpg``).
        caption: the caption text (COCO: the image's captions joined with spaces).
    """

    id: str
    file_name: str
    caption: str


def _stable_id(file_name: str, caption: str) -> str:
    return hashlib.sha1(f"{file_name}\n{caption}".encode()).hexdigest()[:16]


def _from_list(path: Path, items: list, where: str) -> list[Caption]:
    out = []
    for i, item in enumerate(items):
        loc = f"{path}:{i + 1}" if where == "line" else f"{path}: record {i}"
        if not isinstance(item, dict):
            raise DataError(f"{loc}: expected an object with 'file_name' and 'caption', got {type(item).__name__}")
        for key in ("file_name", "caption"):
            if key not in item:
                raise DataError(f"{loc}: missing field {key!r}")
            if not isinstance(item[key], str):
                raise DataError(f"{loc}: field {key!r} must be a string, got {type(item[key]).__name__}")
        rid = str(item["id"]) if item.get("id") is not None else _stable_id(item["file_name"], item["caption"])
        out.append(Caption(rid, item["file_name"], item["caption"]))
    return out


def _from_coco(path: Path, data: dict) -> list[Caption]:
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: COCO captions file needs a list field {key!r}")
    names = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise DataError(f"{path}: images[{i}] needs fields 'id' and 'file_name'")
        names[img["id"]] = img["file_name"]
    captions: dict = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise DataError(f"{path}: annotations[{i}] needs fields 'image_id' and 'caption'")
        if ann["image_id"] not in names:
            raise DataError(f"{path}: annotations[{i}]: image_id {ann['image_id']!r} is not in 'images'")
        captions.setdefault(ann["image_id"], []).append(" ".join(str(ann["caption"]).split()))
    # All captions of an image, joined (as in the released data), in the images' order.
    return [Caption(str(iid), names[iid], " ".join(captions[iid])) for iid in names if iid in captions]


def load_captions(path: str | Path) -> list[Caption]:
    """Load captions from the published list (``[{"file_name", "caption"}]``), COCO captions JSON
    (``{"images": [...], "annotations": [{"image_id", "caption"}]}``) or a ``.jsonl`` of objects.

    Raises:
        DataError: unreadable file, malformed JSON, missing fields or duplicate ids (named precisely).
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        items = _from_list(path, read_jsonl(path), "line")
    else:
        data = read_json(path)
        if isinstance(data, list):
            items = _from_list(path, data, "record")
        elif isinstance(data, dict) and "annotations" in data:
            items = _from_coco(path, data)
        else:
            raise DataError(
                f"{path}: expected a list of {{'file_name', 'caption'}} or a COCO captions object with "
                f"'images' and 'annotations', got {type(data).__name__}"
            )
    seen: dict[str, int] = {}
    out = []
    for c in items:
        # Identical (file_name, caption) pairs repeated in one file get distinct, still stable ids.
        n = seen.get(c.id, 0)
        seen[c.id] = n + 1
        out.append(c if n == 0 else Caption(f"{c.id}-{n + 1}", c.file_name, c.caption))
    return out
