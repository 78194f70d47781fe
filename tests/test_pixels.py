"""In-band image payloads (stylecore/pixels.py): exact round trips at every precision, limits, damaged transfers."""

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from stylecore.images.arrays import from_array, from_float32, to_array, to_float32
from stylecore.protocol import pixels
from stylecore.protocol.pixels import PayloadError, Pixels

REPO = Path(__file__).resolve().parents[1]


def sample_array(sample: str, shape=(37, 53, 4), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.normal(0, 0.01, shape), axis=1) % 1.0
    if sample == "u8":
        return (smooth * 255).astype(np.uint8)
    if sample == "u16":
        return (smooth * 65535).astype(np.uint16)
    return smooth.astype({"f16": np.float16, "f32": np.float32}[sample])


@pytest.mark.parametrize("codec", pixels.CODECS)
@pytest.mark.parametrize("sample", list(pixels.SAMPLES))
def test_round_trip_is_exact_for_every_sample_format(sample, codec):
    array = sample_array(sample)
    descriptor, payload = pixels.encode(from_array(array), codec=codec)
    assert descriptor["sample"] == sample and descriptor["bytes"] == len(payload)
    back = to_array(pixels.decode(descriptor, payload))
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.tobytes() == array.tobytes()


def test_float32_values_off_the_8_bit_grid_stay_exact():
    array = np.array([[[0.1234567, 1 / 3, 0.5 + 2**-20, 1e-7]]], dtype=np.float32)
    assert not np.allclose(array * 255, np.round(array * 255))
    descriptor, payload = pixels.encode(from_array(array))
    back = to_array(pixels.decode(descriptor, payload))
    assert back.tobytes() == array.tobytes()


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 2), (2, 7, 3), (40, 1, 4)])
def test_odd_shapes_and_channel_counts(shape):
    array = sample_array("f32", shape)
    back = to_array(pixels.decode(*pixels.encode(from_array(array))))
    assert back.shape == shape and back.tobytes() == array.tobytes()


@pytest.mark.parametrize("shuffle", [True, False])
def test_big_endian_samples_arrive_in_the_receivers_order(shuffle):
    array = sample_array("u16")
    big = Pixels(53, 37, 4, "u16", array.astype(">u2").tobytes(), "big")
    descriptor, payload = pixels.encode(big, shuffle=shuffle)
    assert descriptor["byteorder"] == "big"
    little = pixels.decode(descriptor, payload, byteorder="little")
    assert np.array_equal(to_array(little), array)
    assert to_array(pixels.decode(descriptor, payload, byteorder="big")).dtype.byteorder in (">", "=")


def test_the_default_compresses_a_smooth_float_layer_far_better_than_plain_zlib():
    y, x = np.mgrid[0:128, 0:128] / 128.0
    array = np.stack([x, y, (x + y) / 2, np.ones_like(x)], axis=2).astype(np.float32)
    descriptor, payload = pixels.encode(from_array(array))
    assert (descriptor["codec"], descriptor["shuffle"], descriptor["up"]) == ("zlib", True, True)
    plain = zlib.compress(array.tobytes(), pixels.LEVEL)
    assert len(payload) < 0.5 * len(plain)


def test_truncated_payload_is_one_line_with_both_sizes():
    descriptor, payload = pixels.encode(from_array(sample_array("f32")))
    with pytest.raises(
        PayloadError, match=rf"truncated: the descriptor declares {len(payload)} bytes, {len(payload) - 10} arrived"
    ):
        pixels.decode(descriptor, payload[:-10])


def test_a_stream_cut_short_inside_is_refused():
    descriptor, payload = pixels.encode(from_array(sample_array("u8")))
    descriptor = dict(descriptor, bytes=len(payload) // 2)
    with pytest.raises(PayloadError, match="cut short"):
        pixels.decode(descriptor, payload[: len(payload) // 2])


def test_corrupt_payload_is_refused():
    descriptor, payload = pixels.encode(from_array(sample_array("u8")))
    with pytest.raises(PayloadError, match="not valid zlib data"):
        pixels.decode(descriptor, b"\x00" * len(payload))


def test_a_small_payload_cannot_inflate_past_its_image():
    bomb = zlib.compress(bytes(50_000_000), 9)
    descriptor = {"width": 2, "height": 2, "channels": 4, "sample": "u8", "codec": "zlib", "bytes": len(bomb)}
    with pytest.raises(PayloadError, match="decodes to 17 bytes, but 2x2x4 u8 needs 16"):
        pixels.decode(descriptor, bomb)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"width": 10**7}, r"image size 10000000x4 is absurd; each side must be 1\.\.524288"),
        ({"height": 0}, "is absurd"),
        ({"channels": 5}, "5 channels per pixel"),
        ({"sample": "f64"}, "unknown sample format 'f64'"),
        ({"codec": "brotli"}, "unknown pixel codec 'brotli'"),
        ({"width": True}, "width must be a non-negative integer"),
        ({"bytes": -1}, "bytes must be a non-negative integer"),
        (
            {"width": 20_000, "height": 20_000},
            r"20000x20000x4 f32 is 6400 MB, over the 2000 MB limit; scale the layer down",
        ),
        ({"width": 40_000, "height": 40_000, "channels": 1, "sample": "u8"}, r"40000x40000 is 1600 MP, over the 400 MP limit"),
        ({"sample": []}, r"unknown sample format \[\]"),
        ({"codec": {}}, r"unknown pixel codec \{\}"),
    ],
)
def test_absurd_descriptors_are_refused_before_any_payload_is_read(change, message):
    descriptor = {"width": 4, "height": 4, "channels": 4, "sample": "f32", "codec": "zlib", "bytes": 10, **change}
    with pytest.raises(PayloadError, match=message):
        pixels.check_descriptor(descriptor)


def test_the_limit_is_the_callers():
    descriptor, payload = pixels.encode(from_array(sample_array("f32", (100, 100, 4))))
    with pytest.raises(PayloadError, match=r"100x100x4 f32 is 160000 bytes, over the 100000 bytes limit"):
        pixels.decode(descriptor, payload, limit=100_000)


def test_a_payload_larger_than_the_limit_is_refused():
    descriptor = {"width": 4, "height": 4, "channels": 4, "sample": "u8", "codec": "zlib", "bytes": 10**12}
    with pytest.raises(PayloadError, match="declares 1000000 MB, over the 2000 MB limit"):
        pixels.check_descriptor(descriptor)
    with pytest.raises(PayloadError, match="declares 1000+ MB"):  # too large for a float: still one line
        pixels.check_descriptor({**descriptor, "bytes": 10**400})


def test_encode_refuses_a_buffer_of_the_wrong_size():
    with pytest.raises(PayloadError, match="2x2x3 u8 needs 12 bytes, got 11"):
        pixels.encode(Pixels(2, 2, 3, "u8", bytes(11)))


def test_float_conversions_for_the_worker():
    rgb = np.array([[[0.0, 0.5, 1.0], [1.2, -0.1, 0.25]]], dtype=np.float32)
    assert to_array(from_float32(rgb, "u8")).tolist() == [[[0, 128, 255], [255, 0, 64]]]
    assert to_array(from_float32(rgb, "u16"))[0, 0].tolist() == [0, 32768, 65535]
    assert np.array_equal(to_float32(from_float32(rgb, "f32")), rgb)
    assert np.allclose(to_float32(from_float32(np.clip(rgb, 0, 1), "u16")), np.clip(rgb, 0, 1), atol=1 / 65535)
    with pytest.raises(PayloadError, match="arrays of float64 cannot be sent"):
        from_array(rgb.astype(np.float64))


def test_pixels_imports_without_numpy():
    """GIMP's Python has no numpy: the module loads from its file with the standard library alone."""
    code = (
        "import importlib.util, sys\n"
        "for name in ('pixels',):\n"
        f"    spec = importlib.util.spec_from_file_location(name, {str(REPO / 'stylecore' / 'protocol')!r} + '/' + name + '.py')\n"
        "    sys.modules[name] = module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True)
