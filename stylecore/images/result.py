"""The result of a run, at full precision, and how it is written to disk."""

from __future__ import annotations

import errno
import functools
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from stylecore.atomic import write_atomic
from stylecore.images import bitdepth
from stylecore.protocol import messages
from stylecore.protocol.errors import BadInput

PathLike = os.PathLike | str


@dataclass(frozen=True)
class StyledImage:
    """A stylised picture: float32 sRGB in [0, 1], never rounded to 8 bits until it is saved so."""

    rgb: np.ndarray  # HxWx3 float32
    alpha: np.ndarray | None = None  # HxW float32, passed through from the content
    source_bits: int = 8  # the content's precision: 16- and 32-bit inputs are saved at 16 bits by default

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def rgba(self) -> np.ndarray:
        """HxWx4 float32, alpha 1 where the content had none: how the GIMP plug-in takes pixels back."""
        alpha = np.ones(self.rgb.shape[:2], np.float32) if self.alpha is None else self.alpha
        return np.dstack([self.rgb, alpha]).astype(np.float32, copy=False)

    def to_pil(self, bits: int = 8) -> Image.Image:
        """An 8-bit PIL image (PIL has no 16-bit RGB mode: for 16 bits use `save` or `rgb`)."""
        if bits != 8:
            raise BadInput(f"to_pil(bits={bits}): PIL holds RGB at 8 bits only; use .save(path, bit_depth=16) or .rgb")
        channels = [self.rgb] if self.alpha is None else [self.rgb, self.alpha[..., None]]
        data = bitdepth.quantize(np.dstack(channels), 8)
        return Image.fromarray(data, "RGB" if self.alpha is None else "RGBA")

    def save(self, path: PathLike, bit_depth: int | None = None, protect: Iterable[PathLike] = ()) -> Path:
        """Writes atomically; the format follows the extension (.png, .tif, .jpg, .webp, .npy float32 RGBA).

        bit_depth None: 16 for a PNG or TIFF when the content had more than 8 bits, else 8."""
        path = Path(path)
        fmt = check_output_path(path, protect, bit_depth)
        depth = bit_depth or (16 if self.source_bits > 8 and fmt in bitdepth.SIXTEEN_BIT_FORMATS else 8)

        def write(fh: BinaryIO) -> None:
            if fmt == "NPY":
                np.save(fh, self.rgba())
            elif depth == 16:
                bitdepth.write16(fh, fmt, self.rgb if self.alpha is None else self.rgba())
            else:
                image = self.to_pil()
                if image.mode == "RGBA" and not pillow_writes(fmt, "RGBA"):  # JPEG and the like hold no alpha
                    image = image.convert("RGB")
                image.save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))

        try:
            return write_atomic(path, write)
        except OSError as exc:
            raise BadInput(
                f"{path}: cannot write the output ({exc.strerror or exc}); check the folder's permissions and free space"
            ) from exc


def check_output_path(path: PathLike, protect: Iterable[PathLike] = (), bit_depth: int | None = None) -> str:
    """Checks that the output can be written, as asked, before a long job; returns its format.

    The format must be one Pillow writes (or .npy), at the bit depth asked for, and the path a file in an
    existing folder that takes new files (probed with a temporary file, which also catches read-only mounts)."""
    why = messages.path_problem(os.fspath(path)) if isinstance(os.fspath(path), str) else None
    if why:
        raise BadInput(f"output: the path {why}; pass a real file name")
    path = Path(path)
    try:
        _check_target(path, protect)
    except OSError as exc:  # a name too long, a folder without search permission
        raise BadInput(f"{path}: unusable output path ({exc.strerror or exc}); choose another output path") from exc
    fmt = "NPY" if path.suffix.lower() == ".npy" else Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise BadInput(f"{path}: unknown image extension '{path.suffix}'; use .png, .jpg, .tif or .webp")
    if fmt != "NPY" and not pillow_writes(fmt, "RGB"):
        raise BadInput(f"{path}: Pillow reads {fmt} ('{path.suffix}') but cannot write it; use .png, .jpg, .tif or .webp")
    if bit_depth is not None and bit_depth not in (8, 16):
        raise BadInput(f"bit depth {bit_depth} unsupported; use 8 or 16")
    if bit_depth == 16 and fmt not in bitdepth.SIXTEEN_BIT_FORMATS:
        raise BadInput(f"{path}: {fmt} holds 8 bits per channel; save as .png or .tif for 16 bits")
    _check_folder(path)
    return fmt


def _check_target(path: Path, protect: Iterable[PathLike]) -> None:
    for other in protect:
        try:
            if path.resolve() == Path(other).resolve():
                raise BadInput(f"{path}: the output would overwrite an input; choose another output path")
        except (OSError, ValueError, RuntimeError):  # an unusable input path or a symlink loop: images.load names it
            continue
    if path.is_dir():
        raise BadInput(f"{path}: is a folder; give the output a file name, such as {path / 'result.png'}")
    if path.exists() and not path.is_file():  # the rename would replace the device or pipe itself
        raise BadInput(f"{path}: is not a regular file (a device or a pipe); choose an output file name")


def _check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.exists():
        raise BadInput(f"{path}: the output folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise BadInput(f"{path}: {folder} is a file, not a folder; choose an output path in a folder")
    try:  # also reached by a name too long for the file system
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise BadInput(
                f"{path}: the folder {folder} is read-only ({exc.strerror}); choose a folder you can write to"
            ) from exc
        raise BadInput(f"{path}: cannot create a file in {folder} ({exc.strerror or exc}); choose another output folder") from exc
    os.close(fd)
    os.unlink(probe)


@functools.cache
def pillow_writes(fmt: str, mode: str) -> bool:
    """Whether Pillow can write `fmt` from a `mode` image: tried on one pixel, since its format list includes read-only ones."""
    Image.init()
    if fmt not in Image.SAVE:
        return False
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=fmt)
    except Exception:  # each format plug-in raises its own kind (OSError, ValueError, KeyError, ...)
        return False
    return True
