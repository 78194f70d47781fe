"""16-bit image files, which Pillow reads and writes only at 8 bits per RGB channel.

Pillow has no 48/64-bit RGB(A) mode: it opens a 16-bit RGB PNG as 8-bit RGB and cannot write
one. Writing a PNG or a baseline TIFF is a few lines of numpy and zlib; reading a 16-bit PNG
uses torchvision's libpng decoder, already a dependency. (16-bit RGB TIFF inputs are still read
by Pillow, at 8 bits.)
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
INDUCTOR_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"  # torch sets it when torch._dynamo is first imported


def quantize(values: np.ndarray, bits: int) -> np.ndarray:
    """Float [0, 1] to unsigned integers of `bits` bits, rounded to nearest."""
    top = (1 << bits) - 1
    return (np.clip(values, 0.0, 1.0) * top + 0.5).astype(np.uint8 if bits == 8 else np.uint16)


def is_png16_header(head: bytes) -> bool:
    """A PNG's first 26 bytes say 16 bits per channel of RGB, grey+alpha or RGBA (IHDR depth, color type)."""
    return len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 4, 6)


def read_png16(data: bytes, decoded: Image.Image) -> np.ndarray | None:
    """HxWxC uint16 pixels of a 16-bit color PNG, or None for anything else.

    Also None when the file needs what only the 8-bit route does (an ICC profile to convert, an
    EXIF rotation): correct colors and orientation matter more than the last 8 bits."""
    if not is_png16_header(data[:26]):
        return None
    if decoded.info.get("icc_profile") or decoded.getexif().get(0x0112, 1) != 1:
        return None
    try:  # torchvision marks its image I/O deprecated (0.29) in favour of torchcodec; without it, 8 bits it is
        with warnings.catch_warnings(), _no_inductor_folder():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_png

            pixels = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except (ImportError, RuntimeError):
        return None
    return pixels.permute(1, 2, 0).to(torch.int32).numpy().astype(np.uint16)  # older torchvision: int32


@contextlib.contextmanager
def _no_inductor_folder() -> Iterator[None]:
    """Importing torchvision imports torch._dynamo, which makes torch's compile cache folder at once (torch 2.14:
    $TMPDIR/torchinductor_<user>) and points TORCHINDUCTOR_CACHE_DIR at it. stylecore compiles nothing: a folder that
    this import made is removed again while still empty, and the variable is put back as it was."""
    if "torch._dynamo" in sys.modules:
        yield
        return
    temp = Path(tempfile.gettempdir())
    before = _inductor_folders(temp)
    variable = os.environ.get(INDUCTOR_VARIABLE)
    try:
        yield
    finally:
        for folder in _inductor_folders(temp) - before:
            with contextlib.suppress(OSError):  # not empty (another process uses it now) or gone already: its own
                folder.rmdir()
        if variable is None:
            os.environ.pop(INDUCTOR_VARIABLE, None)


def _inductor_folders(temp: Path) -> set[Path]:
    try:
        return {p for p in temp.glob("torchinductor_*") if p.is_dir() and not p.is_symlink()}
    except OSError:
        return set()


def write16(fh: BinaryIO, fmt: str, pixels: np.ndarray) -> None:
    """HxWxC float (C = 3 or 4) as a 16-bit PNG or TIFF."""
    data = quantize(pixels, 16)
    if fmt == "PNG":
        fh.write(_png16(data))
    else:
        fh.write(_tiff16(data))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png16(data: np.ndarray) -> bytes:
    height, width, channels = data.shape
    rows = np.zeros((height, 1 + width * channels * 2), np.uint8)  # filter byte 0 ("none") per row
    rows[:, 1:] = data.astype(">u2").view(np.uint8).reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 16, 6 if channels == 4 else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def _tiff16(data: np.ndarray) -> bytes:
    """Baseline little-endian TIFF, one uncompressed strip, RGB(A) at 16 bits, alpha unassociated."""
    height, width, channels = data.shape
    pixels = data.astype("<u2").tobytes()
    bits_at = 8
    entries_at = bits_at + 2 * channels
    tags = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, channels, bits_at),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 0),
        (277, 3, 1, channels),
        (278, 4, 1, height),
        (279, 4, 1, len(pixels)),
        (284, 3, 1, 1),
    ]
    if channels == 4:
        tags.append((338, 3, 1, 2))  # ExtraSamples: unassociated alpha
    ifd_size = 2 + 12 * len(tags) + 4
    strip_at = entries_at + ifd_size
    tags = [(t, k, n, strip_at if t == 273 else v) for t, k, n, v in tags]
    out = bytearray(struct.pack("<2sHI", b"II", 42, entries_at))
    out += struct.pack(f"<{channels}H", *([16] * channels))
    out += struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        out += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    out += struct.pack("<I", 0)
    return bytes(out) + pixels
