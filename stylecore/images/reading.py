"""Reading inputs into sRGB float arrays.

Every route in (path, PIL image, array) ends as an HxWx3 float32 sRGB array in [0, 1] plus an
optional alpha channel, with EXIF orientation applied and ICC profiles converted to sRGB, at the
input's own precision (a 16-bit file stays 16-bit; nothing is rounded to 8 bits).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from stylecore.images import bitdepth
from stylecore.images.result import StyledImage
from stylecore.protocol import messages
from stylecore.protocol.errors import BadInput, OutOfMemory, StylecoreError
from stylecore.protocol.pixels import MAX_PIXELS  # 20000 x 20000: beyond this a layer is surely a mistake

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, StyledImage, "Picture"]

BYTES_PER_PIXEL = 64  # what a run holds per pixel of the content at its full size (decoded, float copies, result, file)


@dataclass(frozen=True)
class Picture:
    rgb: np.ndarray  # HxWx3 float32, sRGB, 0..1
    alpha: np.ndarray | None  # HxW float32 0..1, or None
    bits: int = 8  # precision of the source: 8, 16 or 32 (float)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as everywhere in stylecore."""
        return self.rgb.shape[1], self.rgb.shape[0]


def digest(array: np.ndarray) -> bytes:
    """A fingerprint of a picture's pixels, for caches of what is computed from them."""
    return hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=16).digest()


def describe(source: ImageLike) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return type(source).__name__


def load(source: ImageLike, role: str = "image") -> Picture:
    if isinstance(source, Picture):  # loaded already (stylecore.stylize reads its files before the weights)
        return source
    if isinstance(source, StyledImage):  # a result stylised again, at its full precision
        return Picture(source.rgb, source.alpha, source.source_bits)
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, name, role)
    if isinstance(source, Image.Image):
        with _pillow_errors(name, role):
            return _from_pil(source, name, role)
    if isinstance(source, (str, os.PathLike)):
        path = _usable_path(source, role)
        if _is_npy(path):
            return _from_array(_npy(path, role, read=True), name, role)
        with _opened(path, role) as fh:
            return _read_image(fh, str(path), role)
    raise BadInput(f"{role}: unsupported type {type(source).__name__}; pass a file path, a PIL image or an HxWxC array")


def load_bytes(data: bytes, name: str, role: str = "image") -> Picture:
    """An image file's bytes (a file carried in a worker request), read exactly as that file on disk would be."""
    return _read_image(_bytes_file(data, name, role), name, role)


def check(source: str | os.PathLike, role: str = "image") -> None:
    """What `load` would refuse before decoding a pixel (the path, the file, its format, its size), from headers only."""
    path = _usable_path(source, role)
    if _is_npy(path):
        _npy(path, role, read=False)
        return
    with _opened(path, role) as fh, _pillow_errors(str(path), role):
        _open_image(fh, str(path), role)


def check_bytes(data: bytes, name: str, role: str = "image") -> None:
    """`check` for a file's bytes: its format and size from its header, before anything is decoded."""
    with _pillow_errors(name, role):
        _open_image(_bytes_file(data, name, role), name, role)


def _usable_path(source: str | os.PathLike, role: str) -> Path:
    text = os.fspath(source)
    why = messages.path_problem(text) if isinstance(text, str) else None
    if why:
        raise BadInput(f"{role}: the path {why}; pass a real file name")
    return Path(text)


def _is_npy(path: Path) -> bool:
    return str(path).lower().endswith(".npy")


def _bytes_file(data: bytes, name: str, role: str) -> BinaryIO:
    if not data:
        raise BadInput(f"{name}: the {role} file is empty (0 bytes); export the image again")
    return io.BytesIO(data)


@contextlib.contextmanager
def _opened(path: Path, role: str) -> Iterator[BinaryIO]:
    """The file, open for reading: a regular file that is not empty, or one line saying why not."""
    try:
        _check_regular_file(path, role)
        fh = open(path, "rb")
    except OSError as exc:  # no permission, a name too long for the file system
        raise BadInput(f"{path}: cannot read the {role} ({exc.strerror or exc}); check the path and its permissions") from exc
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise BadInput(f"{path}: the {role} file is empty (0 bytes); export the image again")
        yield fh


def _open_image(fh: BinaryIO, name: str, role: str) -> Image.Image:
    """The image as Pillow opens it: its header read and its size checked, no pixel decoded."""
    img = Image.open(fh)
    check_size(img.width, img.height, name, role)
    return img


def _read_image(fh: BinaryIO, name: str, role: str) -> Picture:
    """The one reader of image files, on disk or carried: the size is checked from the header before a pixel is decoded,
    so a huge file or one that declares more pixels than the machine can hold costs nothing; a 16-bit PNG is decoded
    again at its full precision."""
    said: list[str] = []
    with _pillow_errors(name, role, said):
        img = _open_image(fh, name, role)
        with _c_stderr(said):  # libtiff complains on stderr, from C, while it decodes
            img.load()
        data = _png16_bytes(fh)
        deep = None if data is None else bitdepth.read_png16(data, img)
        return _from_array(deep, name, role) if deep is not None else _from_pil(img, name, role)


@contextlib.contextmanager
def _pillow_errors(name: str, role: str, said: list[str] | None = None) -> Iterator[None]:
    """Whatever Pillow raises on a file (its decoders raise nearly anything on a hostile one: struct.error, IndexError,
    NotImplementedError, ...) becomes one BadInput line naming the file and the fix. What it warns is not printed, nor
    what C printed into `said` (see _c_stderr): the first of it goes into that line."""
    said = [] if said is None else said
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # stylecore's own size limit is the one that applies
            yield
    except StylecoreError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow refuses twice its own limit when it opens the header
        raise BadInput(f"{name}: the {role} declares too many pixels ({exc}); scale it down first") from exc
    except UnidentifiedImageError as exc:
        raise BadInput(f"{name}: not an image file PIL can read; save it as PNG or JPEG") from exc
    except MemoryError as exc:
        raise OutOfMemory(f"{name}: decoding the {role} needs more memory than is free; scale it down first") from exc
    except Exception as exc:
        detail = "; ".join(x for x in (f"{type(exc).__name__}: {exc}".rstrip(": "), *said, *map(str, caught)) if x)
        raise BadInput(
            f"{name}: the {role} is damaged, truncated or in a form Pillow cannot read ({detail[:300]}); "
            "export it again as PNG, JPEG or TIFF"
        ) from exc


_STDERR = threading.Lock()  # one redirection of file descriptor 2 at a time: two would leave it pointing nowhere


@contextlib.contextmanager
def _c_stderr(said: list[str]) -> Iterator[None]:
    """What C libraries print on file descriptor 2 meanwhile (libtiff's complaints), into `said` instead."""
    with _STDERR:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no stderr at all: nothing to keep quiet
            yield
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                text = capture.read(4096).decode("utf-8", "replace")
                said.extend(line.strip() for line in text.splitlines()[:3] if line.strip())


def _check_regular_file(path: Path, role: str) -> None:
    if not path.exists():
        raise BadInput(f"{path}: {role} file not found; check the path")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not an image; pass an image file")
    if not path.is_file():  # a FIFO would block the read, a device never end it
        raise BadInput(f"{path}: the {role} is not a regular file (a pipe or a device); save it as a file first")


def _png16_bytes(fh: BinaryIO) -> bytes | None:
    """The whole file when its PNG header declares 16 bits per channel of colour, else None (not read)."""
    fh.seek(0)
    head = fh.read(26)
    if not bitdepth.is_png16_header(head):
        return None
    fh.seek(0)
    return fh.read()


def _npy(path: Path, role: str, *, read: bool) -> np.ndarray:
    """HxWxC arrays at full precision: how the GIMP plug-in hands over 16-bit and float layers.

    Mapped first, so the shape is checked from the header before the array is read (read=False: never)."""
    if not path.is_file():
        raise BadInput(f"{path}: {role} file not found; check the path")
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        if mapped.ndim >= 2:
            check_size(mapped.shape[1], mapped.shape[0], str(path), role)
        return np.array(mapped) if read else mapped
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
        converted = ImageCms.profileToProfile(img, src, dst, outputMode=out_mode)
        return img if converted is None else converted
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: keep the pixels as they are rather than refuse the image


def _from_pil(img: Image.Image, name: str, role: str) -> Picture:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # broken EXIF must not make a readable image unusable
        pass
    check_size(img.width, img.height, name, role)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if mode != "I" or arr.max() > 255 else 255.0
        grey = np.clip(arr / scale, 0, 1)
        return Picture(np.repeat(grey[..., None], 3, axis=2), None, 16 if scale > 255 else 8)
    if mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        return Picture(np.repeat(grey[..., None], 3, axis=2), None, 32)
    img = _srgb_converted(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    img = img.convert("RGBA" if has_alpha else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return Picture(np.ascontiguousarray(arr[..., :3]), arr[..., 3].copy() if has_alpha else None)


def _from_array(arr: np.ndarray, name: str, role: str) -> Picture:
    if arr.ndim == 2:
        arr = arr[..., None]
    expected = "expected float32 HxWxC (or uint8, uint16) with C 1 to 4, values 0..1"
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise BadInput(f"{name}: {role} array is {arr.dtype} {arr.shape}; {expected}")
    check_size(arr.shape[1], arr.shape[0], name, role)
    if arr.dtype == np.uint8:
        a, bits = arr.astype(np.float32) / 255.0, 8
    elif arr.dtype == np.uint16:
        a, bits = arr.astype(np.float32) / 65535.0, 16
    elif np.issubdtype(arr.dtype, np.floating):
        bits = 32
        a = np.nan_to_num(arr.astype(np.float32), nan=0.0)
        a = np.clip(a, 0.0, 1.0)
    else:
        raise BadInput(f"{name}: {role} array is {arr.dtype} {arr.shape}; {expected}")
    c = a.shape[2]
    alpha = a[..., c - 1].copy() if c in (2, 4) else None
    color = a[..., : (1 if c <= 2 else 3)]
    rgb = np.repeat(color, 3, axis=2) if color.shape[2] == 1 else color
    return Picture(np.ascontiguousarray(rgb, dtype=np.float32), alpha, bits)


def check_size(width: int, height: int, name: str, role: str) -> None:
    """Refuses an image of no pixels, or of more than `pixel_limit()`: every route in, before its pixels are decoded."""
    if width < 1 or height < 1:
        raise BadInput(f"{name}: the {role} is {width}x{height}, an empty image; pass one with pixels")
    limit = pixel_limit()
    if width * height > limit:
        raise BadInput(
            f"{name}: the {role} is {width}x{height} ({width * height / 1e6:.0f} MP), more than this machine can work on "
            f"(about {limit / 1e6:.0f} MP with {available_memory() / 2**30:.1f} GiB of memory free); scale it down first"
        )


def pixel_limit() -> int:
    """The most pixels a content may have: what the free memory holds at BYTES_PER_PIXEL, and at most MAX_PIXELS."""
    return max(1, min(MAX_PIXELS, available_memory() // BYTES_PER_PIXEL))


def available_memory() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable, less where a cgroup or rlimit caps it."""
    amounts = [_meminfo_available()]
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            amounts.append(max(0, soft - _address_space_used()))
    except (ImportError, OSError, ValueError):
        pass
    amounts.append(_cgroup_free())
    known = [a for a in amounts if a is not None]
    return min(known) if known else 1 << 62


def _address_space_used() -> int:
    """What RLIMIT_AS counts already (torch alone reserves gigabytes of it); 0 where /proc does not say."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on Windows: no figure, no limit beyond MAX_PIXELS
        return None


def _cgroup_free() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
