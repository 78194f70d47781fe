"""numpy views of stylecore.protocol.pixels payloads, for the worker (the plug-in side stays standard-library only)."""

from __future__ import annotations

import numpy as np

from stylecore.protocol.pixels import SAMPLES, PayloadError, Pixels

DTYPES: dict[str, type[np.generic]] = {"u8": np.uint8, "u16": np.uint16, "f16": np.float16, "f32": np.float32}
SCALES = {"u8": 255.0, "u16": 65535.0}  # integer formats: the value of full intensity
assert set(DTYPES) == set(SAMPLES)


def from_array(array: np.ndarray) -> Pixels:
    """An H×W or H×W×C array of one of DTYPES' types as Pixels, in native byte order."""
    sample = next((name for name, dtype in DTYPES.items() if array.dtype == dtype), None)
    if sample is None:
        raise PayloadError(f"arrays of {array.dtype} cannot be sent; use one of uint8, uint16, float16, float32")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise PayloadError(f"an image array is H×W×C, not {array.shape}")
    height, width, channels = array.shape
    native = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    return Pixels(width, height, channels, sample, native.tobytes())


def to_array(pixels: Pixels) -> np.ndarray:
    """H×W×C samples as sent (no copy when the byte order is already native)."""
    dtype = np.dtype(DTYPES[pixels.sample]).newbyteorder("<" if pixels.byteorder == "little" else ">")
    return np.frombuffer(pixels.data, dtype=dtype).reshape(pixels.height, pixels.width, pixels.channels)


def to_float32(pixels: Pixels) -> np.ndarray:
    """H×W×C float32 with integer formats scaled to 0..1 (floats are kept as they are)."""
    array = to_array(pixels).astype(np.float32)
    scale = SCALES.get(pixels.sample)
    return array / np.float32(scale) if scale else array


def from_float32(array: np.ndarray, sample: str) -> Pixels:
    """Float samples in 0..1 as ``sample``: integer formats rounded to their nearest step, floats kept."""
    if sample not in DTYPES:
        raise PayloadError(f"unknown sample format {sample!r}; use one of {', '.join(DTYPES)}")
    scale = SCALES.get(sample)
    if scale:
        converted = np.rint(np.clip(array, 0.0, 1.0) * scale).astype(DTYPES[sample])
    else:
        converted = array.astype(DTYPES[sample])
    return from_array(converted)
