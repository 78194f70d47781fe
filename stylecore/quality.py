"""Quality figures for tests and benchmarks: how far an image is from a style and from a content.

Measured with a plain max-pooling VGG16 at a fixed analysis size, independently of the options
the stylisation itself used, so different settings and baselines are judged on the same ruler.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import images, losses
from .vgg import VGGFeatures

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


class Judge:
    def __init__(self, state: dict[str, np.ndarray], size: int = 256):
        self.net = VGGFeatures(state, STYLE_LAYERS + (CONTENT_LAYER,), pooling="max", padding="zeros")
        self.size = size

    @torch.no_grad()
    def _features(self, image, shape=None):
        rgb = images.load(image).rgb
        t = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        h, w = shape or _fit(t.shape[-2], t.shape[-1], self.size)
        t = F.interpolate(t, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        return self.net(t), (h, w)

    def style_distance(self, image, style) -> float:
        """Mean relative Gram error over relu1_1..relu5_1: 0 means the style statistics match."""
        fi, _ = self._features(image)
        fs, _ = self._features(style)
        return float(np.mean([float(losses.relative_sq_error(losses.gram(fi[n]), losses.gram(fs[n]))) for n in STYLE_LAYERS]))

    def content_distance(self, image, content) -> float:
        """Relative relu4_2 error against the content, both at the content's aspect."""
        fc, shape = self._features(content)
        fi, _ = self._features(image, shape)
        return float(losses.relative_sq_error(fi[CONTENT_LAYER], fc[CONTENT_LAYER]))


def _fit(h: int, w: int, long_side: int):
    k = long_side / max(h, w)
    return max(16, round(h * k)), max(16, round(w * k))
