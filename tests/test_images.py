import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from stylecore import images
from stylecore.errors import BadInput


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes())
    assert images.load(p).size == (20, 40)


def test_greyscale_palette_and_16bit_become_rgb(tmp_path):
    grey = Image.fromarray(np.full((20, 30), 128, np.uint8), "L")
    pal = Image.new("RGB", (30, 20), (10, 200, 30)).convert("P")
    g16 = Image.fromarray(np.full((20, 30), 65535 // 2, np.uint16))
    for img in (grey, pal, g16):
        out = images.load(img)
        assert out.rgb.shape == (20, 30, 3) and out.rgb.dtype == np.float32
    assert abs(images.load(g16).rgb.mean() - 0.5) < 0.01
    assert np.allclose(images.load(pal).rgb[0, 0] * 255, pal.convert("RGB").getpixel((0, 0)), atol=0.5)


def test_icc_profile_is_converted_to_srgb():
    lab = ImageCms.createProfile("LAB")  # any non-sRGB profile changes pixels when applied
    srgb = ImageCms.createProfile("sRGB")
    img = Image.new("RGB", (16, 16), (100, 150, 200))
    buf = io.BytesIO()
    img.save(buf, "PNG", icc_profile=ImageCms.ImageCmsProfile(srgb).tobytes())
    same = images.load(Image.open(io.BytesIO(buf.getvalue())))
    assert np.allclose(same.rgb[0, 0] * 255, [100, 150, 200], atol=2)
    del lab


def test_uint16_and_float_arrays(tmp_path):
    a16 = np.full((10, 12, 3), 65535, np.uint16)
    assert images.load(a16).rgb.max() == 1.0
    f = np.full((10, 12, 4), 0.25, np.float32)
    out = images.load(f)
    assert out.alpha is not None and np.allclose(out.alpha, 0.25)


@pytest.mark.parametrize("make,match", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, not an image"), "not an image"),
    (lambda p: p.write_bytes(_png_bytes()[:60]), "damaged|truncated|not an image"),
])
def test_bad_files_give_one_line_naming_the_file(tmp_path, make, match):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(BadInput, match=match) as info:
        images.load(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_tiny_and_missing_inputs(tmp_path):
    with pytest.raises(BadInput, match="at least"):
        images.load(np.zeros((3, 3, 3), np.uint8))
    with pytest.raises(BadInput, match="not found"):
        images.load(tmp_path / "nope.png")


def test_save_is_atomic_and_refuses_to_overwrite_inputs(tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (10, 10)).save(src)
    before = src.read_bytes()
    with pytest.raises(BadInput, match="overwrite an input"):
        images.save_atomic(Image.new("RGB", (10, 10), (255, 0, 0)), src, protect=[src])
    assert src.read_bytes() == before
    out = images.save_atomic(Image.new("RGBA", (10, 10)), tmp_path / "out.jpg")
    assert Image.open(out).mode == "RGB"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()
