"""A picture painted at a working size, enlarged to the layer's size with the photo's own detail put back.

Enlarged alone, a picture painted smaller than the layer is soft at 100 %: the photo's edges and fine texture above
the working size's resolution are gone. The photo still holds that band, photo - enlarge(shrink(photo)); it is added
to the enlarged painting in luminance, scaled by the gain with which the painting follows the photo's luminance
there (a guided filter's local slope, He et al. 2013, measured at the working size and clipped to 0..1). Where the
painting kept the photo's structure its edges come back sharp; where it painted over it (a flat passage, its own
strokes) the photo's texture does not come back. The layer is done in strips of rows, so the memory beyond the
result is a strip's, whatever the layer's size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stylecore.engine import color, resize

RADIUS = 2  # working-size pixels either side of the window where the painting's gain on the photo is measured
EPS = 1e-3  # variance added to the photo's: where it is flatter than about 3 % grey, its detail is noise, not structure
STRIP = 256  # rows of the layer enlarged at a time
CUBIC = -0.75  # the bicubic kernel's parameter, as torch's (resize.bicubic): strips equal the whole picture resized


def enlarge(
    painted: np.ndarray, photo: np.ndarray, small_photo: np.ndarray, *, wrap: bool = False, photo_colors: bool = False
) -> np.ndarray:
    """`painted` (hxwx3, painted from `small_photo`, the photo at that size) at the photo's size (HxWx3), with the
    photo's detail; float32 in 0..1. photo_colors (preserve-colors): the photo's own chroma at full resolution.
    With wrap (seamless) the picture is enlarged plainly, its edges wrapping: the photo's edges do not wrap."""
    height, width = photo.shape[:2]
    h, w = painted.shape[:2]
    if wrap or h > height or w > width or (h, w) == (height, width):  # nothing to enlarge (a thin layer is stretched)
        return resize.bicubic_array(painted, width, height, wrap=wrap)
    small = np.concatenate([painted, _luminance(small_photo), _gain(painted, small_photo)], axis=2)
    rows = _taps(small.shape[0], height)
    out = np.empty((height, width, 3), np.float32)
    for y0 in range(0, height, STRIP):
        y1 = min(height, y0 + STRIP)
        band = _enlarged_rows(small, rows, y0, y1, width)
        detail = _luminance(photo[y0:y1]) - band[..., 3:4]
        strip = np.clip(band[..., :3] + band[..., 4:5] * detail, 0, 1)
        out[y0:y1] = keep_photo_colors(strip, photo[y0:y1]) if photo_colors else strip
    return out


def keep_photo_colors(painted: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The painted luminance with the photo's chroma."""
    return resize.to_numpy(color.recombine(color.luminance_as_rgb(resize.to_tensor(painted)), resize.to_tensor(photo)))


def _gain(painted: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """hxwx1: the local slope of the painting's luminance on the photo's, clipped to 0..1 and smoothed."""
    guide, target = resize.to_tensor(_luminance(photo)), resize.to_tensor(_luminance(painted))
    mean_g, mean_t = _box(guide), _box(target)
    slope = (_box(guide * target) - mean_g * mean_t) / (_box(guide * guide) - mean_g * mean_g + EPS)
    return resize.to_numpy(_box(slope.clamp(0, 1)))


def _box(t: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(t, 2 * RADIUS + 1, stride=1, padding=RADIUS, count_include_pad=False)


def _taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (dst x 4) of a bicubic enlargement from src to dst samples, as torch computes it."""
    at = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    base = np.floor(at)
    t = (at - base)[:, None]
    offsets = np.arange(-1, 3)
    distance = np.abs(t - offsets)
    near = ((CUBIC + 2) * distance - (CUBIC + 3)) * distance * distance + 1
    far = ((CUBIC * distance - 5 * CUBIC) * distance + 8 * CUBIC) * distance - 4 * CUBIC
    weights = np.where(distance <= 1, near, far).astype(np.float32)
    index = np.clip(base[:, None].astype(np.int64) + offsets, 0, src - 1)
    return index, weights


def _enlarged_rows(small: np.ndarray, rows: tuple[np.ndarray, np.ndarray], y0: int, y1: int, width: int) -> np.ndarray:
    """Rows y0..y1 of `small` enlarged to the layer: the vertical taps here, the horizontal ones by torch."""
    index, weights = rows[0][y0:y1], rows[1][y0:y1]
    band = np.einsum("rk,rkwc->rwc", weights, small[index])
    wide = F.interpolate(resize.to_tensor(band), size=(y1 - y0, width), mode="bicubic", align_corners=False)
    return resize.to_numpy(wide)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """hxwx1, the Y of YIQ (color.to_yiq): the luminance the rest of the engine keeps and transfers."""
    return resize.to_numpy(color.to_yiq(resize.to_tensor(rgb))[:, :1])
