"""Uploads and path confinement: nothing outside the conversation folder is read or written."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from g4t.tools.workspace import PathError, Workspace, fit_upload_size


@pytest.mark.parametrize(
    "size,expected",
    [
        ((1024, 768), (512, 384)),
        ((100, 100), (512, 512)),
        ((640, 480), (512, 384)),
        ((5000, 10), (512, 64)),
        ((3, 4000), (64, 512)),
    ],
)
def test_fit_upload_size(size, expected):
    assert fit_upload_size(*size) == expected


def test_save_upload_names_and_sizes(tmp_path):
    ws = Workspace(tmp_path / "conv")
    name = ws.save_upload(Image.new("RGBA", (1000, 3), (1, 2, 3, 4)))
    assert name.startswith("image/") and name.endswith(".png") and len(name) == len("image/12345678.png")
    with Image.open(ws.root / name) as im:
        assert im.size == (512, 64) and im.mode == "RGB" and im.format == "PNG"


def test_resolve_accepts_workspace_names(tmp_path):
    ws = Workspace(tmp_path)
    name = ws.save_image(Image.new("RGB", (8, 8)))
    assert ws.resolve(name) == ws.root / name
    assert ws.resolve(f" '{name}' ") == ws.root / name
    assert ws.resolve(name.split("/")[-1]) == ws.root / name  # bare file name found in image/


@pytest.mark.parametrize(
    "hostile",
    [
        "/etc/passwd",
        "../secret.png",
        "image/../../secret.png",
        "image/..\\..\\secret.png",
        "~/secret.png",
        "http://example.com/a.png",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "C:\\Windows\\a.png",
        "\\\\server\\share\\a.png",
        "image/a\x00.png",
        "",
    ],
)
def test_resolve_refuses_hostile_paths(tmp_path, hostile):
    (tmp_path / "secret.png").write_bytes(b"x")
    ws = Workspace(tmp_path / "conv")
    with pytest.raises(PathError):
        ws.resolve(hostile)


def test_resolve_refuses_symlink_out(tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (4, 4)).save(outside)
    ws = Workspace(tmp_path / "conv")
    os.symlink(outside, ws.root / "image" / "link.png")
    with pytest.raises(PathError, match="outside"):
        ws.resolve("image/link.png")
    os.symlink(tmp_path, ws.root / "image" / "dirlink")
    with pytest.raises(PathError):
        ws.resolve("image/dirlink/outside.png")


def test_missing_and_unreadable_files(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(PathError, match="does not exist"):
        ws.resolve("image/nope.png")
    (ws.root / "image" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(PathError, match="not an image in a supported format"):
        ws.load_image("image/bad.png")


def test_new_files_stay_inside(tmp_path):
    ws = Workspace(tmp_path / "conv")
    path = ws.new_image_path(next_to=tmp_path / "elsewhere" / "x.png")
    assert path.parent == ws.root / "image"
    assert ws.find_images("saved image/zzzz.png and /etc/x.png") == []
    name = ws.save_image(Image.new("RGB", (4, 4)))
    assert ws.find_images(f"Result saved as {name}") == [ws.root / name]
