import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from stylecore import StyledImage
from stylecore.images import reading
from stylecore.protocol.errors import BadInput


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes())
    assert reading.load(p).size == (20, 40)


def test_greyscale_palette_and_16bit_become_rgb(tmp_path):
    grey = Image.fromarray(np.full((20, 30), 128, np.uint8), "L")
    pal = Image.new("RGB", (30, 20), (10, 200, 30)).convert("P")
    g16 = Image.fromarray(np.full((20, 30), 65535 // 2, np.uint16))
    for img in (grey, pal, g16):
        out = reading.load(img)
        assert out.rgb.shape == (20, 30, 3) and out.rgb.dtype == np.float32
    assert abs(reading.load(g16).rgb.mean() - 0.5) < 0.01
    assert np.allclose(reading.load(pal).rgb[0, 0] * 255, pal.convert("RGB").getpixel((0, 0)), atol=0.5)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def swapped_primaries_profile() -> bytes:
    """An ICC v2 RGB profile whose red and green primaries are sRGB's green and red, with linear curves.

    A pixel (r, g, b) tagged with it is, in sRGB, (g, r, b) linear-light: easy to predict, and far from
    what an ignored profile would give."""
    primaries = {"r": (0.3851, 0.7169, 0.0971), "g": (0.4361, 0.2225, 0.0139), "b": (0.1431, 0.0606, 0.7141)}  # D50
    desc = b"desc\0\0\0\0" + struct.pack(">I", 5) + b"test\0" + b"\0" * 79
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.8249))]
    tags += [(c.encode() + b"XYZ", _xyz(*xyz)) for c, xyz in primaries.items()]
    tags += [(c + b"TRC", b"curv\0\0\0\0" + struct.pack(">I", 0)) for c in (b"r", b"g", b"b")]  # identity curves
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = struct.pack(">I", offset + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
    header += b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    return header + b"\0" * (128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def test_icc_profile_is_converted_to_srgb(tmp_path):
    path = tmp_path / "tagged.png"
    Image.new("RGB", (16, 16), (200, 60, 120)).save(path, icc_profile=swapped_primaries_profile())
    out = reading.load(path).rgb[0, 0]
    expected = _srgb_encode(np.array([60, 200, 120]) / 255.0)  # red and green swapped, then sRGB's curve
    assert np.allclose(out, expected, atol=2 / 255), (out * 255, expected * 255)
    untagged = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), (200, 60, 120)).save(untagged)
    assert np.allclose(reading.load(untagged).rgb[0, 0] * 255, [200, 60, 120], atol=0.01)


def test_uint16_and_float_arrays(tmp_path):
    a16 = np.full((10, 12, 3), 65535, np.uint16)
    assert reading.load(a16).rgb.max() == 1.0
    f = np.full((10, 12, 4), 0.25, np.float32)
    out = reading.load(f)
    assert out.alpha is not None and np.allclose(out.alpha, 0.25)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:60]), "damaged|truncated|not an image"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path, make, match):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(BadInput, match=match) as info:
        reading.load(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_tiny_empty_and_missing_inputs(tmp_path):
    assert reading.load(np.zeros((1, 1, 3), np.uint8)).size == (1, 1)  # the engine handles any size from 1x1
    with pytest.raises(BadInput, match="empty"):
        reading.load(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(BadInput, match="not found"):
        reading.load(tmp_path / "nope.png")


def test_save_is_atomic_and_refuses_to_overwrite_inputs(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    Image.new("RGB", (10, 10)).save(src)
    before = src.read_bytes()
    red = StyledImage(np.dstack([np.ones((10, 10)), np.zeros((10, 10)), np.zeros((10, 10))]).astype(np.float32))
    with pytest.raises(BadInput, match="overwrite an input"):
        red.save(src, protect=[src])
    assert src.read_bytes() == before
    rgba = StyledImage(red.rgb, np.full((10, 10), 0.5, np.float32))
    assert Image.open(rgba.save(tmp_path / "out.jpg")).mode == "RGB"
    assert Image.open(rgba.save(tmp_path / "out.png")).mode == "RGBA"

    def full_disk(fh):
        fh.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", lambda self, fh, **kw: full_disk(fh))
    (tmp_path / "kept.png").write_bytes(before)
    with pytest.raises(BadInput, match="No space left"):
        red.save(tmp_path / "kept.png")
    assert (tmp_path / "kept.png").read_bytes() == before  # the old file is untouched, no half file replaces it
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR that declare width x height RGB at 8 bits, and a token IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_more_pixels_than_the_memory_holds_are_refused_from_the_header(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "available_memory", lambda: 4 * 2**30)
    p = tmp_path / "declares-10000x10000.png"
    p.write_bytes(_png_header(10000, 10000))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded before the size was checked"))
    with pytest.raises(BadInput) as caught:
        reading.load(p, "content image")
    message = str(caught.value)
    assert str(p) in message and "10000x10000 (100 MP), more than this machine can work on" in message
    assert "4.0 GiB" in message and "scale it down first" in message


def test_the_pixel_limit_follows_the_free_memory(monkeypatch):
    monkeypatch.setattr(reading, "available_memory", lambda: 8 * 2**30)
    assert reading.pixel_limit() == 8 * 2**30 // reading.BYTES_PER_PIXEL
    monkeypatch.setattr(reading, "available_memory", lambda: 2**50)
    assert reading.pixel_limit() == reading.MAX_PIXELS


def test_a_huge_file_that_is_no_image_is_refused_without_reading_it(tmp_path, monkeypatch):
    p = tmp_path / "sparse.png"
    with open(p, "wb") as fh:
        fh.truncate(2 * 2**30)  # 2 GB of holes: no disk, but a whole read would take 2 GB of memory
    monkeypatch.setattr(type(p), "read_bytes", lambda self: pytest.fail("read whole"))
    with pytest.raises(BadInput, match="not an image file"):
        reading.load(p)


def test_a_big_npy_is_checked_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "available_memory", lambda: 2**30)
    p = tmp_path / "big.npy"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1, 4), np.float32))
    header["shape"] = (20000, 20000, 4)
    with open(p, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.truncate(fh.tell() + 20000 * 20000 * 16)
    with pytest.raises(BadInput, match="20000x20000 .400 MP., more than this machine"):
        reading.load(p)


@pytest.mark.parametrize("path", ["a\x00b.png", "\ud800.png"])
def test_paths_no_file_system_can_hold_are_bad_input(tmp_path, path):
    with pytest.raises(BadInput, match="the path holds"):
        reading.load(str(tmp_path / path), "style image")
