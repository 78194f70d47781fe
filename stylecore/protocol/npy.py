"""float32 .npy files (format 1.0) written and read without numpy, and the channel shuffles a layer needs.

Standard library only: GIMP's own Python hands a local worker its layer as a .npy file in the worker's private
folder and reads the result back the same way (measured faster than in-band pixels for a worker on this computer).
"""

from __future__ import annotations

import array
import ast
import sys

MAGIC = b"\x93NUMPY"


def write_npy(path: str, width: int, height: int, channels: int, data: bytes) -> None:
    """Writes native float32 pixels (as GEGL's "float" formats give them) as a little-endian .npy v1.0."""
    if len(data) != width * height * channels * 4:
        raise ValueError(f"{width}x{height}x{channels} float32 needs {width * height * channels * 4} bytes, got {len(data)}")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + f"({height}, {width}, {channels})" + ", }"
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    if sys.byteorder == "big":
        data = _swapped(data)
    with open(path, "wb") as fh:
        fh.write(MAGIC + b"\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
        fh.write(data)


def read_npy(path: str) -> tuple[int, int, int, bytes]:
    """Reads a float32 HxW or HxWxC .npy; returns width, height, channels and native float32 bytes (ValueError if not one)."""
    with open(path, "rb") as fh:
        magic = fh.read(8)
        if len(magic) != 8 or magic[:6] != MAGIC:
            raise ValueError(f"{path} is not a .npy file")
        size_bytes = 2 if magic[6] == 1 else 4
        header = fh.read(int.from_bytes(fh.read(size_bytes), "little")).decode("latin1")
        try:
            meta = ast.literal_eval(header)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"{path} has a malformed .npy header") from None
        if not isinstance(meta, dict) or meta.get("descr") not in ("<f4", ">f4") or meta.get("fortran_order"):
            raise ValueError(f"{path} is not a C-ordered float32 array")
        shape = tuple(meta.get("shape", ()))
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(f"{path} has shape {meta.get('shape')}, not height x width x channels")
        height, width, channels = shape
        expected = width * height * channels * 4
        data = fh.read(expected + 1)
    if len(data) != expected:
        raise ValueError(
            f"{path} has {len(data)} bytes of pixels, not the {expected} of a {width}x{height}x{channels} float32 array"
        )
    if (meta["descr"] == ">f4") != (sys.byteorder == "big"):
        data = _swapped(data)
    return width, height, channels, data


def _swapped(data: bytes) -> bytes:
    values = array.array("f", data)
    values.byteswap()
    return values.tobytes()


def add_alpha(rgb: bytes, alpha: bytes) -> bytes:
    """Interleaves float32 RGB and float32 A planes into RGBA (C loops of the array module, no numpy)."""
    src, a = array.array("f", rgb), array.array("f", alpha)
    out = array.array("f", bytes(len(a) * 16))
    for c in range(3):
        out[c::4] = src[c::3]
    out[3::4] = a
    return out.tobytes()


def channel(data: bytes, channels: int, index: int) -> bytes:
    """One channel of interleaved float32 pixels, as float32 bytes."""
    return array.array("f", data)[index::channels].tobytes()
