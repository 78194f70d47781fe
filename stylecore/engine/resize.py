"""Bicubic resizing, also for pictures that wrap around (seamless mode)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def fit(size: tuple[int, int], long_side: int, minimum: int = 1, multiple: int = 1) -> tuple[int, int]:
    """(width, height) with the aspect of `size` (width, height) and the given long side.

    Each side is at least `minimum` (a very thin picture is stretched across rather than lost) and,
    with `multiple`, a multiple of it."""
    width, height = size
    k = long_side / max(width, height)
    lo = max(minimum, multiple)
    return (max(lo, round(width * k / multiple) * multiple), max(lo, round(height * k / multiple) * multiple))


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWxC array -> 1xCxHxW float32 tensor (on the CPU, sharing nothing the caller may change)."""
    return torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]


def to_numpy(image: torch.Tensor) -> np.ndarray:
    """1xCxHxW tensor (any device or float type) -> HxWxC float32 array."""
    return np.ascontiguousarray(image[0].permute(1, 2, 0).float().cpu().numpy())


def bicubic_array(rgb: np.ndarray, width: int, height: int, wrap: bool = False) -> np.ndarray:
    """bicubic for an HxWxC array."""
    return to_numpy(bicubic(to_tensor(rgb), width, height, wrap))


def bicubic(t: torch.Tensor, width: int, height: int, wrap: bool = False) -> torch.Tensor:
    """Antialiased when shrinking; with wrap, the edges are filtered against the opposite edge."""
    if t.shape[-1] == width and t.shape[-2] == height:
        return t
    if not wrap:
        return _plain(t, width, height).clamp(0, 1)
    return _wrapped(_wrapped(t, width, t.shape[-2], dim=-1), width, height, dim=-2).clamp(0, 1)


def _plain(t: torch.Tensor, width: int, height: int) -> torch.Tensor:
    down = width < t.shape[-1] or height < t.shape[-2]
    return F.interpolate(t, size=(height, width), mode="bicubic", align_corners=False, antialias=down)


def _wrapped(t: torch.Tensor, width: int, height: int, dim: int) -> torch.Tensor:
    """Resizes along one axis after padding it circularly by a margin that maps onto whole output pixels."""
    src = t.shape[dim]
    dst = width if dim == -1 else height
    if src == dst:
        return t
    period = src // math.gcd(src, dst)  # padding by k*period source pixels is exactly k*dst/gcd output pixels
    margin_src = period * max(1, math.ceil(max(4, 2 * src / dst) / period))
    if margin_src > src:  # no small exact margin: pad by a whole period of the picture
        margin_src = src
    margin_dst = margin_src * dst // src
    pad = (margin_src, margin_src, 0, 0) if dim == -1 else (0, 0, margin_src, margin_src)
    padded = F.pad(t, pad, mode="circular")
    size = (t.shape[-2], dst + 2 * margin_dst) if dim == -1 else (dst + 2 * margin_dst, t.shape[-1])
    out = _plain(padded, size[1], size[0])
    return out[..., margin_dst : margin_dst + dst] if dim == -1 else out[..., margin_dst : margin_dst + dst, :]
