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


def _sqrtm(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def _moments(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the pixels (fp64, on the CPU), from at most about a million of them."""
    step = max(1, int((rgb.shape[-1] * rgb.shape[-2] / 1e6) ** 0.5))
    flat = rgb.detach()[0, :, ::step, ::step].reshape(3, -1).double().cpu()
    mean = flat.mean(1)
    centred = flat - mean[:, None]
    return mean, centred @ centred.T / flat.shape[1]


def match_palette(rgb: torch.Tensor, pixel_gram: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """The picture (1x3xHxW) with the painting's color mean and covariance, by the linear map that moves its pixels
    least (the Monge-Kantorovich map between two Gaussians); `pixel_gram` is the painting's 4x4 Gram of (R, G, B, 1).

    The style terms alone leave much of the photo's palette in place, and what they do change comes as colored
    speckle, worst with a black-and-white painting."""
    g = pixel_gram.detach().double().reshape(4, 4).cpu()
    target_mean = g[:3, 3]
    target_cov = g[:3, :3] - torch.outer(target_mean, target_mean)
    mean, cov = _moments(rgb)
    eye = torch.eye(3, dtype=torch.float64)
    root = _sqrtm(cov + eps * eye)
    inv_root = torch.linalg.inv(root)
    transform = inv_root @ _sqrtm(root @ target_cov @ root) @ inv_root
    shift = target_mean - transform @ mean
    out = torch.einsum("ij,bjhw->bihw", transform.to(rgb), rgb)  # in place from here: one picture-sized copy in all
    return out.add_(shift.to(rgb)[None, :, None, None]).clamp_(0, 1)
