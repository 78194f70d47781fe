"""Colour handling: luminance-only transfer (Gatys et al. 2016, 'Preserving Color')."""

from __future__ import annotations

import torch

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(rgb), rgb)


def to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _YIQ_TO_RGB.to(yiq), yiq)


def luminance_as_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """Grey image whose three channels hold the luminance, the form VGG expects."""
    return to_yiq(rgb)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_grey: torch.Tensor, content_grey: torch.Tensor) -> torch.Tensor:
    """Shifts the style's luminance to the content's mean and spread, so only texture transfers."""
    s_mean, s_std = style_grey.mean(), style_grey.std().clamp_min(1e-4)
    c_mean, c_std = content_grey.mean(), content_grey.std()
    return ((style_grey - s_mean) / s_std * c_std + c_mean).clamp(0, 1)


def recombine(stylized_grey: torch.Tensor, content_rgb: torch.Tensor) -> torch.Tensor:
    """The stylised luminance with the content's own chroma."""
    yiq = to_yiq(content_rgb)
    yiq = torch.cat([stylized_grey.mean(1, keepdim=True), yiq[:, 1:]], dim=1)
    return to_rgb(yiq).clamp(0, 1)
