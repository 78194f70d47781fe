"""Reading inputs into sRGB float arrays, and writing outputs atomically.

Every route in (path, PIL image, array) ends as an HxWx3 float32 sRGB array in [0, 1] plus an
optional alpha channel, with EXIF orientation applied and ICC profiles converted to sRGB.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import BadInput

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

MAX_PIXELS = 400_000_000  # 20000 x 20000: beyond this a layer is surely a mistake
MIN_SIDE = 8


@dataclass
class RGBImage:
    rgb: np.ndarray  # HxWx3 float32, sRGB, 0..1
    alpha: np.ndarray | None  # HxW float32 0..1, or None
    name: str  # for messages

    @property
    def size(self):
        return self.rgb.shape[1], self.rgb.shape[0]


def describe(source: ImageLike) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return type(source).__name__


def load(source: ImageLike, role: str = "image") -> RGBImage:
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, name, role)
    if isinstance(source, Image.Image):
        return _from_pil(source, name, role)
    if isinstance(source, (str, os.PathLike)):
        if str(source).lower().endswith(".npy"):
            return _from_array(_open_npy(Path(source), role), name, role)
        return _from_pil(_open_path(Path(source), role), name, role)
    raise BadInput(f"{role}: unsupported type {type(source).__name__}; pass a file path, a PIL image or an HxWxC array")


def _open_path(path: Path, role: str) -> Image.Image:
    if not path.exists():
        raise BadInput(f"{path}: {role} file not found; check the path")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not an image; pass an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the {role} ({exc.strerror}); check its permissions") from exc
    if not data:
        raise BadInput(f"{path}: the {role} file is empty (0 bytes); export the image again")
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        img = Image.open(io.BytesIO(data))
        img.load()
    except Image.DecompressionBombError as exc:
        raise BadInput(f"{path}: the {role} is too large (over {MAX_PIXELS // 1_000_000} megapixels); scale it down first") from exc
    except UnidentifiedImageError as exc:
        raise BadInput(f"{path}: not an image file PIL can read; save it as PNG or JPEG") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{path}: the {role} is damaged or truncated ({exc}); export it again") from exc
    return img


def _open_npy(path: Path, role: str) -> np.ndarray:
    """HxWxC arrays at full precision: how the GIMP plug-in hands over 16-bit and float layers."""
    if not path.is_file():
        raise BadInput(f"{path}: {role} file not found; check the path")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadInput(f"{path}: not a readable .npy array ({exc}); write it with numpy.save") from exc


def _srgb_converted(img: Image.Image) -> Image.Image:
    """Applies an embedded ICC profile so pixels are sRGB, as every editor shows them."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "L", "LA", "CMYK"):
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if img.mode in ("RGBA", "LA") else "RGB"
        if img.mode == "LA":
            img = img.convert("RGBA")
        return ImageCms.profileToProfile(img, src, dst, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: keep the pixels as they are rather than refuse the image


def _from_pil(img: Image.Image, name: str, role: str) -> RGBImage:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not make a readable image unusable
        pass
    _check_size(img.width, img.height, name, role)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if mode != "I" or arr.max() > 255 else 255.0
        grey = np.clip(arr / scale, 0, 1)
        return RGBImage(np.repeat(grey[..., None], 3, axis=2), None, name)
    if mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        return RGBImage(np.repeat(grey[..., None], 3, axis=2), None, name)
    img = _srgb_converted(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return RGBImage(np.ascontiguousarray(arr[..., :3]), arr[..., 3].copy() if has_alpha else None, name)


def _from_array(arr: np.ndarray, name: str, role: str) -> RGBImage:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise BadInput(f"{role}: array of shape {arr.shape} is not HxWxC with C in 1..4")
    _check_size(arr.shape[1], arr.shape[0], name, role)
    if arr.dtype == np.uint8:
        a = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        a = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(arr.astype(np.float32), nan=0.0)
        a = np.clip(a, 0.0, 1.0)
    else:
        raise BadInput(f"{role}: array dtype {arr.dtype} unsupported; use uint8, uint16 or float in 0..1")
    c = a.shape[2]
    alpha = a[..., c - 1].copy() if c in (2, 4) else None
    colour = a[..., : (1 if c <= 2 else 3)]
    rgb = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour
    return RGBImage(np.ascontiguousarray(rgb, dtype=np.float32), alpha, name)


def _check_size(width: int, height: int, name: str, role: str) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise BadInput(f"{name}: the {role} is {width}x{height}; it must be at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if width * height > MAX_PIXELS:
        raise BadInput(f"{name}: the {role} is {width}x{height}, over {MAX_PIXELS // 1_000_000} megapixels; scale it down first")


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    rgb8 = (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    if alpha is None:
        return Image.fromarray(rgb8, "RGB")
    a8 = (np.clip(alpha, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb8, a8]), "RGBA")


def check_output_path(path: Path, protect=()) -> str:
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


def save_atomic(image: Image.Image, path: Path, protect=()) -> Path:
    """Writes to a temporary file beside the target, then renames, so a crash never leaves half a file.

    A .npy target gets HxWx4 float32 RGBA in 0..1 (what the GIMP plug-in reads back).
    """
    path = Path(path)
    fmt = check_output_path(path, protect)
    if fmt == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if fmt == "NPY":
                np.save(fh, np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0)
            else:
                image.save(fh, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise BadInput(f"{path}: cannot write the output ({exc.strerror or exc}); check the folder's permissions and free space") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
