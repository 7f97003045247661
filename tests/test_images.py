"""Opening untrusted images: the pixel limit before decoding, correct conversion of every kind, clear errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from g4t.tools.errors import ImageError, PathError
from g4t.tools.images import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, open_image, pixel_limit, set_max_pixels, to_rgb
from g4t.tools.workspace import Workspace


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` (8-bit RGB) but holds no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """Make any pixel decoding fail loudly, so a refusal must come from the header alone."""

    def load(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# ---- the pixel limit -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own note; we refuse it
@pytest.mark.parametrize("size", [(12000, 12000), (60000, 60000)])
def test_oversized_png_is_refused_from_its_header(tmp_path, no_decoding, size):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_header_only(*size))
    with pytest.raises(ImageError, match=r"'huge\.png' is too large .*the limit is 25,000,000.*--max_image_pixels"):
        open_image(path)


def test_real_oversized_image_is_refused_before_decoding(tmp_path, no_decoding):
    path = tmp_path / "big.png"
    Image.new("L", (6000, 5000)).save(path)  # 30 Mpx of real, decodable data
    with pytest.raises(ImageError, match=r"6000x5000 = 30,000,000"):
        open_image(path)
    assert path.stat().st_size < 1_000_000  # the test image itself is cheap


def test_pillow_bomb_guard_is_reported_in_the_same_words(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(60000, 60000))  # over Pillow's hard limit too
    with pytest.raises(ImageError, match=r"too large \(3,600,000,000 pixels; the limit is 4,000,000,000"):
        open_image(path, max_pixels=4_000_000_000)


def test_limit_from_argument_setting_and_environment(tmp_path, monkeypatch):
    data = _encoded(Image.new("RGB", (100, 100)), "PNG")
    assert open_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="the limit is 9,999"):
        open_image(data, max_pixels=9_999)
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert pixel_limit() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv(MAX_PIXELS_ENV, "5_000")
    assert pixel_limit() == 5000
    with pytest.raises(ImageError, match="the limit is 5,000"):
        open_image(data)
    try:
        set_max_pixels(20_000)  # the demo's --max_image_pixels wins over the environment
        assert open_image(data).size == (100, 100)
    finally:
        set_max_pixels(None)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=r"G4T_MAX_IMAGE_PIXELS must be a positive whole number.*'lots'"):
        pixel_limit()
    with pytest.raises(ValueError, match="positive"):
        set_max_pixels(0)


def test_already_decoded_images_are_checked_too():
    with pytest.raises(ImageError, match="the image is too large"):
        open_image(Image.new("RGB", (200, 200)), max_pixels=100)


# ---- conversion of every kind ----------------------------------------------------------------


def test_16bit_gradient_keeps_its_brightness():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    for fmt in ("PNG", "TIFF"):
        data = _encoded(Image.fromarray(ramp), fmt)
        with Image.open(io.BytesIO(data)) as raw:
            assert raw.mode.startswith("I;16")
            assert np.asarray(raw.convert("RGB")).mean() > 250  # what Pillow alone does: almost white
        rgb = np.asarray(open_image(data)).astype(float)
        assert abs(rgb.mean() - 127.5) < 0.6, fmt
        assert rgb[:, 0].max() == 0 and rgb[:, -1].min() == 255
        assert (rgb[..., 0] == rgb[..., 2]).all()


def test_big_endian_16bit_is_scaled_like_little_endian():
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (4, 1))
    big = Image.frombytes("I;16B", (64, 4), ramp.astype(">u2").tobytes())
    assert np.array_equal(np.asarray(to_rgb(big)), np.asarray(to_rgb(Image.fromarray(ramp))))


@pytest.mark.parametrize(
    "values,expected_mean",
    [
        (np.linspace(0.0, 1.0, 256), 127.5),  # nominal 0..1
        (np.linspace(0.0, 255.0, 256), 127.5),  # float data already in 0..255
        (np.linspace(-1.0, 1.0, 256), 127.5),  # outside every nominal range: actual range
        (np.linspace(0.0, 0.5, 256), 63.75),  # a dark 0..1 image stays dark
    ],
)
def test_float_tiff_is_scaled_not_black(values, expected_mean):
    data = _encoded(Image.fromarray(np.tile(values.astype(np.float32), (16, 1))), "TIFF")
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode == "F"
    rgb = np.asarray(open_image(data)).astype(float)
    assert abs(rgb.mean() - expected_mean) < 0.6


def test_float_nan_and_infinity_do_not_break_scaling():
    a = np.tile(np.linspace(0, 1, 16, dtype=np.float32), (4, 1))
    a[0, 0], a[0, 1] = np.nan, np.inf
    rgb = np.asarray(to_rgb(Image.fromarray(a)))
    assert rgb[0, 0, 0] == 0 and rgb[0, 1, 0] == 0 and rgb[1, -1, 0] == 255


def test_32bit_integer_in_16bit_range():
    a = np.tile(np.linspace(0, 65535, 256).astype(np.int32), (8, 1))
    assert abs(np.asarray(to_rgb(Image.fromarray(a))).mean() - 127.5) < 0.6


def test_fully_transparent_image_is_white_not_red():
    data = _encoded(Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG")
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.convert("RGB").getpixel((0, 0)) == (255, 0, 0)  # what Pillow alone does
    assert set(open_image(data).getdata()) == {(255, 255, 255)}


def test_half_transparent_pixels_blend_with_white():
    im = Image.new("RGBA", (4, 1), (0, 0, 0, 255))
    im.putpixel((1, 0), (0, 0, 0, 128))
    im.putpixel((2, 0), (255, 0, 0, 0))
    assert list(open_image(_encoded(im, "PNG")).getdata())[:3] == [(0, 0, 0), (127, 127, 127), (255, 255, 255)]
    la = Image.new("LA", (2, 1), (0, 0))
    assert list(open_image(_encoded(la, "PNG")).getdata()) == [(255, 255, 255)] * 2


def test_palette_with_transparency():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((0, 0), 1)
    data = _encoded(im, "PNG", transparency=0)  # palette entry 0 (red) is transparent
    rgb = open_image(data)
    assert rgb.getpixel((0, 0)) == (0, 0, 255) and rgb.getpixel((3, 3)) == (255, 255, 255)


def test_grey_and_rgb_transparency_entries():
    grey = _encoded(Image.new("L", (2, 2), 7), "PNG", transparency=7)
    assert open_image(grey).getpixel((0, 0)) == (255, 255, 255)
    rgb = _encoded(Image.new("RGB", (2, 2), (1, 2, 3)), "PNG", transparency=(1, 2, 3))
    assert open_image(rgb).getpixel((0, 0)) == (255, 255, 255)


def test_premultiplied_modes_are_supported():
    assert to_rgb(Image.new("La", (2, 2), (0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("RGBa", (2, 2), (0, 0, 0, 255))).getpixel((0, 0)) == (0, 0, 0)


def test_cmyk_jpeg():
    data = _encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)  # pure red ink mix
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.mode == "CMYK"
    r, g, b = open_image(data).getpixel((8, 8))
    assert r > 240 and g < 15 and b < 15


def test_one_bit_and_other_modes():
    assert open_image(_encoded(Image.new("1", (8, 8), 1), "PNG")).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("HSV", (2, 2), (0, 0, 200))).getpixel((0, 0)) == (200, 200, 200)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_image_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((0, 0, 255), (255, 0, 0), (0, 255, 0))]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = _encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **kw)
    with Image.open(io.BytesIO(data)) as raw:
        assert getattr(raw, "n_frames", 1) == 3
    assert open_image(data).getpixel((4, 4)) == (0, 0, 255)


def test_exif_rotated_jpeg_stands_upright():
    im = Image.new("RGB", (40, 20), (255, 255, 255))
    im.paste((0, 0, 0), (0, 0, 10, 20))  # black band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rgb = open_image(_encoded(im, "JPEG", exif=exif, quality=95))
    assert rgb.size == (20, 40)
    assert sum(rgb.getpixel((10, 2))) < 60 and sum(rgb.getpixel((10, 38))) > 700  # band now at the top


# ---- unreadable sources ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", r"'x\.png' is empty \(0 bytes\)"),
        (b"just some text, no picture", r"'x\.png' is not an image in a supported format \(PNG, JPEG, GIF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG drawing"),
        (b"<svg width='10' height='10'></svg>", "SVG drawing"),
        (b"%PDF-1.4\n...", "not an image in a supported format"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image in a supported format"),
    ],
)
def test_unreadable_files_have_readable_errors(tmp_path, content, message):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        open_image(path)
    assert str(tmp_path) not in str(info.value)
    assert isinstance(info.value, PathError)  # every caller that handles path errors handles these


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encoded(Image.fromarray(noise), fmt)
    with pytest.raises(ImageError, match="damaged or truncated"):
        open_image(data[: len(data) // 2], name="image/cut.png")


def test_missing_file_is_an_image_error_without_the_server_path(tmp_path):
    with pytest.raises(ImageError, match=r"'gone\.png' cannot be read") as info:
        open_image(tmp_path / "gone.png")
    assert str(tmp_path) not in str(info.value)


# ---- uploads and tool inputs through the workspace --------------------------------------------


def test_upload_from_path_bytes_and_image(tmp_path):
    ws = Workspace(tmp_path / "conv")
    src = tmp_path / "photo.jpg"
    Image.new("RGB", (1024, 768), (10, 200, 30)).save(src, quality=95)
    for source in (src, str(src), src.read_bytes(), Image.open(src)):
        name = ws.save_upload(source)
        with Image.open(ws.root / name) as im:
            assert (im.size, im.mode, im.format) == ((512, 384), "RGB", "PNG")
            r, g, b = im.getpixel((100, 100))
            assert abs(r - 10) < 6 and abs(g - 200) < 6 and abs(b - 30) < 6


def test_large_jpeg_upload_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    src = tmp_path / "big.jpg"
    Image.new("RGB", (4096, 3072), (200, 100, 50)).save(src, quality=90)
    seen = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        seen.append(self.size)  # the size the decoder was configured to produce
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    ws = Workspace(tmp_path / "conv")
    name = ws.save_upload(src)
    assert seen and set(seen) == {(512, 384)}  # 1/8 scale: 0.2 Mpx decoded instead of 12.6 Mpx
    with Image.open(ws.root / name) as im:
        assert im.size == (512, 384)


def test_rotated_jpeg_upload_is_fitted_upright(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / "phone.jpg"
    Image.new("RGB", (2048, 1536), (50, 50, 50)).save(src, exif=exif)
    ws = Workspace(tmp_path / "conv")
    with Image.open(ws.root / ws.save_upload(src)) as im:
        assert im.size == (384, 512)


def test_failed_upload_leaves_nothing_behind(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "conv", max_pixels=1000)
    folder = ws.root / "image"
    with pytest.raises(ImageError, match="too large"):
        ws.save_upload(_encoded(Image.new("RGB", (100, 100)), "PNG"))
    with pytest.raises(ImageError, match="is empty"):
        ws.save_upload(b"")

    def full_disk(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(ImageError, match=r"the upload could not be saved \(No space left on device\)"):
        ws.save_upload(Image.new("RGB", (10, 10)))
    assert list(folder.iterdir()) == []


def test_tool_input_errors_name_the_workspace_file(tmp_path):
    ws = Workspace(tmp_path / "conv", max_pixels=50)
    Image.new("RGB", (10, 10)).save(ws.root / "image" / "a.png")
    with pytest.raises(ImageError, match=r"^'image/a\.png' is too large \(10x10 = 100 pixels; the limit is 50\)"):
        ws.load_image("image/a.png")
    (ws.root / "image" / "b.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"^'image/b\.png' is empty"):
        ws.load_image("image/b.png")
