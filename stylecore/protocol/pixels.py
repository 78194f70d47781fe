"""Image payloads carried in the worker protocol: a JSON descriptor plus raw, compressed sample bytes.

Standard library only, so GIMP's Python (no numpy) can encode a layer and decode a result.
A descriptor is a JSON object::

    {"width": 6000, "height": 4000, "channels": 4, "sample": "f32", "byteorder": "little",
     "codec": "zlib", "shuffle": true, "up": true, "bytes": 123456}

``sample`` is what GEGL gives for the image's precision (u8, u16, f16 = half, f32), so 16-bit and float
layers travel without 8-bit rounding. ``shuffle`` means the samples' bytes were split into byte planes
(every sample's first byte, then every second byte, ...) before compression: the high bytes of
neighbouring pixels repeat, which zlib finds and which it cannot see when they are interleaved.
``up`` means each byte then had the byte one row above subtracted (PNG's Up filter), which turns smooth
areas into runs of small numbers. ``bytes`` is the payload's length; the raw bytes follow the message's header line.
"""

from __future__ import annotations

import lzma
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SAMPLES: dict[str, int] = {"u8": 1, "u16": 2, "f16": 2, "f32": 4}  # sample format -> bytes per sample
CODECS = ("zlib", "lzma", "none")
BYTEORDERS = ("little", "big")

# The transfer default, chosen by benchmarks/transfer_bench.py (results-2026-12-01-transfer.txt).
CODEC = "zlib"
LEVEL = 1
SHUFFLE = True
UP = True

MAX_SIDE = 524288  # GIMP's largest image side
MAX_PIXELS = 400_000_000  # 20000 x 20000: beyond this a layer is surely a mistake (a file on disk too: images.reading)
MAX_BYTES = 2_000_000_000  # decoded size limit (125 megapixels of RGBA float)


class PayloadError(ValueError):
    """A descriptor or payload that cannot be an image; the message is one line with the fix."""


@dataclass(frozen=True)
class Pixels:
    """Samples of an image, row by row, channels interleaved, in ``byteorder``."""

    width: int
    height: int
    channels: int
    sample: str
    data: bytes
    byteorder: str = sys.byteorder

    @property
    def nbytes(self) -> int:
        return self.width * self.height * self.channels * SAMPLES[self.sample]


def encode(
    pixels: Pixels, *, codec: str = CODEC, level: int = LEVEL, shuffle: bool = SHUFFLE, up: bool = UP
) -> tuple[dict[str, Any], bytes]:
    """The descriptor and the payload for ``pixels``."""
    _check_layout(pixels.width, pixels.height, pixels.channels, pixels.sample, MAX_BYTES)
    if codec not in CODECS:
        raise PayloadError(f"unknown pixel codec {codec!r}; use one of {', '.join(CODECS)}")
    if pixels.byteorder not in BYTEORDERS:
        raise PayloadError(f"unknown byte order {pixels.byteorder!r}; use 'little' or 'big'")
    if len(pixels.data) != pixels.nbytes:
        raise PayloadError(
            f"{pixels.width}x{pixels.height}x{pixels.channels} {pixels.sample} needs {pixels.nbytes} bytes, "
            f"got {len(pixels.data)}; pass the whole buffer"
        )
    size = SAMPLES[pixels.sample]
    shuffle = shuffle and size > 1 and codec != "none"
    up = up and codec != "none"
    raw = _shuffle(pixels.data, size) if shuffle else bytes(pixels.data)
    if up:
        raw = _up(raw, _row_bytes(pixels.width, pixels.channels, size, shuffle))
    payload = _compress(raw, codec, level)
    descriptor = {
        "width": pixels.width,
        "height": pixels.height,
        "channels": pixels.channels,
        "sample": pixels.sample,
        "byteorder": pixels.byteorder,
        "codec": codec,
        "shuffle": shuffle,
        "up": up,
        "bytes": len(payload),
    }
    return descriptor, payload


def check_descriptor(descriptor: Any, *, limit: int = MAX_BYTES) -> int:
    """Validate a descriptor before its payload is read; returns the payload's declared length."""
    if not isinstance(descriptor, dict):
        raise PayloadError("pixel descriptor is not a JSON object; send width, height, channels, sample, codec, bytes")
    missing = [key for key in ("width", "height", "channels", "sample", "codec", "bytes") if key not in descriptor]
    if missing:
        raise PayloadError(f"pixel descriptor lacks {', '.join(missing)}; send width, height, channels, sample, codec, bytes")
    width, height, channels = descriptor["width"], descriptor["height"], descriptor["channels"]
    for name, value in (("width", width), ("height", height), ("channels", channels), ("bytes", descriptor["bytes"])):
        if type(value) is not int or value < 0:
            raise PayloadError(f"pixel descriptor {name} must be a non-negative integer, not {value!r}")
    sample = descriptor["sample"]
    _check_layout(width, height, channels, sample, limit)
    if not _one_of(descriptor["codec"], CODECS):
        raise PayloadError(f"unknown pixel codec {descriptor['codec']!r}; use one of {', '.join(CODECS)}")
    if not _one_of(descriptor.get("byteorder", "little"), BYTEORDERS):
        raise PayloadError(f"unknown byte order {descriptor['byteorder']!r}; use 'little' or 'big'")
    declared: int = descriptor["bytes"]
    raw = width * height * channels * SAMPLES[sample]
    if descriptor["codec"] == "none" and declared != raw:
        raise PayloadError(
            f"uncompressed {width}x{height}x{channels} {sample} is {raw} bytes, but the descriptor declares {declared}"
        )
    if declared > limit:
        raise PayloadError(f"pixel payload declares {_mb(declared)}, over the {_mb(limit)} limit; send a smaller image")
    return declared


def decode(descriptor: dict[str, Any], payload: bytes, *, byteorder: str = sys.byteorder, limit: int = MAX_BYTES) -> Pixels:
    """The image a descriptor and its payload carry, its samples in ``byteorder``."""
    declared = check_descriptor(descriptor, limit=limit)
    if len(payload) != declared:
        raise PayloadError(f"pixel payload truncated: the descriptor declares {declared} bytes, {len(payload)} arrived")
    width, height, channels, sample = descriptor["width"], descriptor["height"], descriptor["channels"], descriptor["sample"]
    size = SAMPLES[sample]
    expected = width * height * channels * size
    raw = _decompress(payload, descriptor["codec"], expected)
    if len(raw) != expected:
        raise PayloadError(
            f"pixel payload decodes to {len(raw)} bytes, but {width}x{height}x{channels} {sample} needs {expected}; "
            "the sender's encoder is broken"
        )
    shuffled = bool(descriptor.get("shuffle"))
    if descriptor.get("up"):
        raw = _up(raw, _row_bytes(width, channels, size, shuffled), undo=True)
    if shuffled:
        raw = _unshuffle(raw, size)
    source = descriptor.get("byteorder", "little")
    if source != byteorder and size > 1:
        raw = _swap(raw, size)
    return Pixels(width, height, channels, sample, raw, byteorder)


def _one_of(value: object, choices: Iterable[str]) -> bool:
    """JSON's value is one of the strings: a list or an object is no sample format (nor unhashable)."""
    return isinstance(value, str) and value in choices


def _check_layout(width: int, height: int, channels: int, sample: str, limit: int) -> None:
    if not _one_of(sample, SAMPLES):
        raise PayloadError(f"unknown sample format {sample!r}; use one of {', '.join(SAMPLES)}")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise PayloadError(f"image size {width}x{height} is absurd; each side must be 1..{MAX_SIDE}")
    if width * height > MAX_PIXELS:
        raise PayloadError(
            f"image size {width}x{height} is {_mp(width * height)}, over the {_mp(MAX_PIXELS)} limit; scale the layer down"
        )
    if not 1 <= channels <= 4:
        raise PayloadError(f"{channels} channels per pixel; send 1 to 4 (grey, grey+alpha, RGB, RGBA)")
    raw = width * height * channels * SAMPLES[sample]
    if raw > limit:
        raise PayloadError(
            f"{width}x{height}x{channels} {sample} is {_mb(raw)}, over the {_mb(limit)} limit; scale the layer down"
        )


def _compress(raw: bytes, codec: str, level: int) -> bytes:
    if codec == "zlib":
        return zlib.compress(raw, level)
    if codec == "lzma":
        return lzma.compress(raw, preset=level)
    return raw


def _decompress(payload: bytes, codec: str, expected: int) -> bytes:
    """At most ``expected + 1`` bytes, so a small payload cannot expand into a huge one."""
    try:
        if codec == "none":
            return payload
        stream = zlib.decompressobj() if codec == "zlib" else lzma.LZMADecompressor()
        out = stream.decompress(payload, expected + 1)
        if not stream.eof and len(out) <= expected:
            raise PayloadError(f"pixel payload ends inside its {codec} stream; the transfer was cut short")
        return out
    except (zlib.error, lzma.LZMAError) as e:
        raise PayloadError(f"pixel payload is not valid {codec} data ({e}); the transfer was corrupted") from None


def _row_bytes(width: int, channels: int, size: int, shuffled: bool) -> int:
    """One image row of the buffer the filter sees: a row of one byte plane when shuffled."""
    return width * channels * (1 if shuffled else size)


def _up(data: bytes, row: int, *, undo: bool = False) -> bytes:
    """Each byte minus the byte one row above, modulo 256 (PNG's Up filter), or its undoing; a row at a time in big ints."""
    high, low = _masks(row)
    out, previous = bytearray(len(data)), 0
    for start in range(0, len(data), row):
        value = int.from_bytes(data[start : start + row], "little")
        if undo:
            result = previous = ((value & low) + (previous & low)) ^ ((value ^ previous) & high)
        else:
            result, previous = ((value | high) - (previous & low)) ^ ((value ^ ~previous) & high), value
        out[start : start + row] = result.to_bytes(row, "little")
    return bytes(out)


def _masks(row: int) -> tuple[int, int]:
    """The top bit and the low seven bits of every byte of a row: carries stop at byte borders."""
    return int.from_bytes(b"\x80" * row, "little"), int.from_bytes(b"\x7f" * row, "little")


def _shuffle(data: bytes, size: int) -> bytes:
    return b"".join(data[i::size] for i in range(size))


def _unshuffle(data: bytes, size: int) -> bytes:
    count = len(data) // size
    out = bytearray(len(data))
    for i in range(size):
        out[i::size] = data[i * count : (i + 1) * count]
    return bytes(out)


def _swap(data: bytes, size: int) -> bytes:
    out = bytearray(len(data))
    for i in range(size):
        out[i::size] = data[size - 1 - i :: size]
    return bytes(out)


def _mb(n: int) -> str:
    """In whole numbers: a count from JSON may be too large for a float."""
    return f"{(n + 500_000) // 10**6} MB" if n >= 10**6 else f"{n} bytes"


def _mp(n: int) -> str:
    return f"{(n + 500_000) // 10**6} MP"
