"""Break-it: image files Pillow cannot read (issue 26, kind 6) are one BadInput line naming the file and the fix, from
a path and from a file's bytes carried in a worker request alike, with nothing printed before it."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from stylecore.images import reading
from stylecore.protocol.errors import BadInput

from .test_breakit_worker import dds_unknown_format, png_declaring


def damaged_tiff() -> bytes:
    """An LZW TIFF whose compressed strip is scrambled: libtiff prints its complaint from C, on stderr."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        buf, "TIFF", compression="tiff_lzw"
    )
    data = bytearray(buf.getvalue())
    for i in range(20, 200):
        data[i] ^= 0x5A
    return bytes(data)


def read_both_ways(tmp_path: Path, name: str, data: bytes) -> list[BadInput]:
    """The error from the file on disk and from its bytes as a worker receives them."""
    path = tmp_path / name
    path.write_bytes(data)
    caught = []
    for read in (lambda: reading.load(path, "style image"), lambda: reading.load_bytes(data, name, "style image")):
        with pytest.raises(BadInput) as info:
            read()
        caught.append(info.value)
    return caught


@pytest.mark.parametrize(
    "name,data,words",
    [
        ("odd.dds", dds_unknown_format(), "cannot read"),  # failed before: NotImplementedError, exit 70
        ("huge.png", png_declaring(30000, 30000), "too many pixels"),
        ("damaged.tif", damaged_tiff(), "damaged"),
    ],
    ids=["dds", "png", "tiff"],
)
def test_files_pillow_cannot_read_are_one_line_from_a_path_and_from_bytes(tmp_path, name, data, words):
    for error in read_both_ways(tmp_path, name, data):
        message = str(error)
        assert name in message and words in message and "\n" not in message, message


@pytest.mark.parametrize(
    "exc",
    [struct.error("unpack requires a buffer"), EOFError(), SyntaxError("not a TIFF"), NotImplementedError("mode"),
     ValueError("tile"), IndexError("list index"), ZeroDivisionError("0"), OSError("broken data stream")],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
def test_every_exception_pillow_raises_becomes_bad_input_in_one_place(tmp_path, monkeypatch, exc):
    """Failed before for struct.error, NotImplementedError, IndexError and ZeroDivisionError (tracebacks)."""

    def fails(*args, **kwargs):
        raise exc

    good = io.BytesIO()
    Image.new("RGB", (4, 4)).save(good, "PNG")
    monkeypatch.setattr(ImageFile.ImageFile, "load", fails)
    for error in read_both_ways(tmp_path, "a.png", good.getvalue()):
        assert "a.png" in str(error) and "export it again" in str(error)


def test_libtiff_complaints_are_not_printed_before_the_one_error_line(tmp_path):
    """Failed before: 'tempfile.tif: Using code not yet in table.' on stderr, then the error."""
    path = tmp_path / "damaged.tif"
    path.write_bytes(damaged_tiff())
    code = (
        "import sys\n"
        "from stylecore.images import reading\n"
        "from stylecore.protocol.errors import BadInput\n"
        "try:\n"
        f"    reading.load({str(path)!r})\n"
        "except BadInput as exc:\n"
        "    print(exc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and str(path) in r.stdout and len(r.stdout.splitlines()) == 1, r
    assert r.stderr == "", r.stderr
