"""Loss terms of Gatys et al.: Gram-matrix style loss, feature content loss, total variation.

Both main terms are relative squared errors (divided by the target's energy), so every layer
and every image pair contributes on the same scale and one strength setting means the same
thing across images and working sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


def gram(features: torch.Tensor) -> torch.Tensor:
    """G_ij = sum_k F_ik F_jk / M: pairwise dot products of the flattened filter maps.

    Normalising by the number of positions M makes Grams of differently sized images
    comparable (needed for style images of any size and for tiled sums). Always fp32.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    flat = flat.to(torch.promote_types(flat.dtype, torch.float32))
    return _Gram.apply(flat)


class _Gram(torch.autograd.Function):
    """F F^T / N with a one-product backward, (dG + dG^T) F / N.

    Autograd's own backward of bmm(F, F^T) makes two products and adds them: at 512x384 that
    was 11.8 % of an evaluation's time in bmm and 5.5 % in add; this saves about 5 %."""

    @staticmethod
    def forward(ctx: Any, flat: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(flat)
        return torch.bmm(flat, flat.transpose(1, 2)).div_(flat.shape[2])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (flat,) = ctx.saved_tensors
        return torch.bmm((grad + grad.transpose(1, 2)) / flat.shape[2], flat)  # divide the small matrix


def relative_sq_error(value: torch.Tensor, target: torch.Tensor, norm: float | None = None) -> torch.Tensor:
    """|value - target|^2 / |target|^2, or over `norm` when the target is one tile of a bigger whole."""
    value = value.to(torch.promote_types(value.dtype, torch.float32))  # bf16 activations: compare in fp32
    energy = target.pow(2).sum().clamp_min(1e-12) if norm is None else max(norm, 1e-12)
    return (value - target).pow(2).sum() / energy


def style_loss(
    grams: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float]
) -> torch.Tensor:
    """Weighted relative Gram error over the style layers.

    Takes Grams, not features: the tiled objective passes the global Grams with only one tile's
    share carrying a gradient, so this one definition serves both the whole-image and the tiled path."""
    total = torch.zeros((), device=next(iter(targets.values())).device)
    for name, target in targets.items():
        total = total + layer_weights[name] * relative_sq_error(grams[name], target)
    return total


def content_loss(features: torch.Tensor, target: torch.Tensor, norm: float | None = None) -> torch.Tensor:
    """Relative feature error; `norm` is the whole picture's target energy when `features` is one tile of
    it, so the tiles' losses add up to the picture's."""
    return relative_sq_error(features, target, norm)


def tv_loss(image: torch.Tensor, wrap: bool = False) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels: discourages high-frequency noise.

    With wrap, the last column neighbours the first (seamless mode)."""
    if wrap:
        dx = image - image.roll(1, dims=-1)
        dy = image - image.roll(1, dims=-2)
    else:
        dx = image[..., :, 1:] - image[..., :, :-1]
        dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def blend_grams(grams: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Target Gram of several styles: their weighted mean, layer by layer."""
    total = sum(weights)
    out: dict[str, torch.Tensor] = {}
    for g, w in zip(grams, weights):
        for name, value in g.items():
            out[name] = out[name] + value * (w / total) if name in out else value * (w / total)
    return out
