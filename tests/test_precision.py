"""Full precision: 16-bit and float inputs are read, stylised and written without 8-bit rounding."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_png

from stylecore import StyledImage
from stylecore.engine import stylizer
from stylecore.frontends import cli
from stylecore.images import bitdepth, reading

from .conftest import gradient_image


def _off_the_8bit_grid(values: np.ndarray) -> float:
    """Fraction of values in [0, 1] that no 8-bit level represents."""
    return float(np.mean(np.abs(values * 255 - np.round(values * 255)) > 0.01))


def _gradient16(width: int = 64, height: int = 48) -> np.ndarray:
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    return np.dstack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x * y)])


def _read_png16(path) -> np.ndarray:
    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    return decode_png(data, mode=ImageReadMode.UNCHANGED).permute(1, 2, 0).numpy()


def test_a_16bit_png_is_written_and_read_back_exactly(tmp_path):
    values = _gradient16()
    path = StyledImage(values, source_bits=16).save(tmp_path / "g.png")
    raw = _read_png16(path)  # an independent decoder (libpng via torchvision)
    assert raw.dtype == np.uint16 and np.array_equal(raw, bitdepth.quantize(values, 16))
    loaded = reading.load(path)
    assert loaded.bits == 16 and np.array_equal(loaded.rgb, raw.astype(np.float32) / 65535)
    assert _off_the_8bit_grid(loaded.rgb) > 0.5


def test_a_16bit_tiff_holds_every_bit(tmp_path):
    values = _gradient16(20, 10)
    alpha = np.linspace(0, 1, 200, dtype=np.float32).reshape(10, 20)
    path = StyledImage(values, alpha, source_bits=16).save(tmp_path / "g.tif")
    with Image.open(path) as tiff:  # Pillow parses it (and shows it at 8 bits)
        assert tiff.size == (20, 10) and tiff.mode == "RGBA"
        start, length = tiff.tag_v2[273][0], tiff.tag_v2[279][0]
    data = np.frombuffer(path.read_bytes()[start : start + length], "<u2").reshape(10, 20, 4)
    assert np.array_equal(data[..., :3], bitdepth.quantize(values, 16)) and np.array_equal(
        data[..., 3], bitdepth.quantize(alpha, 16)
    )


@pytest.fixture
def random_cli(monkeypatch, quick):
    # the CLI offers the contract's presets only: the test's quick one is put in beneath it
    monkeypatch.setattr(cli, "stylize", lambda *a, **k: stylizer.stylize(*a, **{**k, "random_weights": True, "preset": quick}))
    return ["-q"]


def test_16bit_content_gives_a_16bit_result_by_default(random_cli, tmp_path):
    content = tmp_path / "c.png"
    StyledImage(_gradient16(), source_bits=16).save(content)
    Image.fromarray((gradient_image(30, 30, seed=1) * 255).astype(np.uint8)).save(tmp_path / "s.png")
    assert cli.main([str(content), str(tmp_path / "s.png"), "-o", str(tmp_path / "o.png"), *random_cli]) == 0
    out = _read_png16(tmp_path / "o.png")
    assert out.dtype == np.uint16 and out.shape == (48, 64, 3)
    assert _off_the_8bit_grid(out / 65535.0) > 0.5
    assert cli.main([str(content), str(tmp_path / "s.png"), "-o", str(tmp_path / "o8.png"), "--bit-depth", "8", *random_cli]) == 0
    with Image.open(tmp_path / "o8.png") as eight:
        assert eight.mode == "RGB"
    assert cli.main([str(content), str(tmp_path / "s.png"), "-o", str(tmp_path / "o.jpg"), "--bit-depth", "16", *random_cli]) == 2


def test_the_result_is_float32_off_the_8bit_grid(quick):
    out = stylizer.stylize(_gradient16(), gradient_image(30, 30, seed=1), preset=quick, random_weights=True, device="cpu")
    assert out.rgb.dtype == np.float32 and out.source_bits == 32
    assert _off_the_8bit_grid(out.rgb) > 0.5
    buf = io.BytesIO()
    np.save(buf, out.rgba())
    assert np.load(io.BytesIO(buf.getvalue())).dtype == np.float32
