"""Seamless mode: pictures whose right edge continues into the left, and bottom into top.

The network wraps around (circular padding) so the optimiser sees across the seam; the photo
itself does not wrap, so it is made tileable first and its content is matched only away from
the edges, where the style alone paints texture that runs across.
"""

from __future__ import annotations

import torch

BAND = 0.15  # fraction of each side over which the photo fades into its wrapped self


def ramp(n: int, device: torch.device | str, band: float = BAND) -> torch.Tensor:
    """0 at both ends, rising linearly to 1 at `band` of the way in."""
    pos = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
    return (torch.minimum(pos, 1 - pos) / band).clamp(max=1.0)


def make_tileable(image: torch.Tensor, band: float = BAND) -> torch.Tensor:
    """Cross-fades each edge band with the picture shifted by half a period, one axis at a time.

    The half-shifted copy is continuous across the wrap, and its own cut lies in the middle,
    where the original keeps full weight; doing rows after columns keeps both axes seamless."""
    h, w = image.shape[-2:]
    mx = ramp(w, image.device, band)[None, None, None, :]
    out = image * mx + image.roll(w // 2, dims=-1) * (1 - mx)
    my = ramp(h, image.device, band)[None, None, :, None]
    return out * my + out.roll(h // 2, dims=-2) * (1 - my)


def content_mask(width: int, height: int, device: torch.device | str, band: float = BAND) -> torch.Tensor:
    """Content weight per feature position of a (width, height) feature map, as 1x1xHxW: the edge bands are left to the style."""
    return (ramp(height, device, band)[:, None] * ramp(width, device, band)[None, :])[None, None]
