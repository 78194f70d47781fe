"""The result of a run, at full precision, and how it is written to disk."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from . import bitdepth
from .atomic import write_atomic
from .errors import BadInput

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
        fmt = check_output_path(path, protect)
        depth = bit_depth or (16 if self.source_bits > 8 and fmt in bitdepth.SIXTEEN_BIT_FORMATS else 8)
        if depth not in (8, 16):
            raise BadInput(f"bit depth {depth} unsupported; use 8 or 16")
        if depth == 16 and fmt not in bitdepth.SIXTEEN_BIT_FORMATS:
            raise BadInput(f"{path}: {fmt} holds 8 bits per channel; save as .png or .tif for 16 bits")

        def write(fh: BinaryIO) -> None:
            if fmt == "NPY":
                np.save(fh, self.rgba())
            elif depth == 16:
                bitdepth.write16(fh, fmt, self.rgb if self.alpha is None else self.rgba())
            else:
                image = self.to_pil()
                if fmt == "JPEG" and image.mode == "RGBA":
                    image = image.convert("RGB")
                image.save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))

        try:
            return write_atomic(path, write)
        except OSError as exc:
            raise BadInput(f"{path}: cannot write the output ({exc.strerror or exc}); check the folder's permissions and free space") from exc


def check_output_path(path: PathLike, protect: Iterable[PathLike] = ()) -> str:
    """Validates an output path and returns its format; callers run it before a long job, not after."""
    path = Path(path)
    for other in protect:
        try:
            if path.resolve() == Path(other).resolve():
                raise BadInput(f"{path}: the output would overwrite an input; choose another output path")
        except OSError:
            continue
    fmt = "NPY" if path.suffix.lower() == ".npy" else Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise BadInput(f"{path}: unknown image extension '{path.suffix}'; use .png, .jpg, .tif or .webp")
    if not path.parent.exists():
        raise BadInput(f"{path}: the output folder {path.parent} does not exist; create it first")
    return fmt
