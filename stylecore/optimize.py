"""One scale of the optimisation: L-BFGS on the pixels against fixed style and content targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from . import losses
from .device import Runtime
from .errors import Cancelled
from .vgg import VGGFeatures


@dataclass(frozen=True)
class Targets:
    grams: dict[str, torch.Tensor]  # style layer -> target Gram (fp32)
    content: dict[str, torch.Tensor]  # content layer -> target activations


@dataclass(frozen=True)
class Weights:
    style: float
    content: float
    tv: float
    style_layers: Mapping[str, float]


StepHook = Callable[[int, dict[str, float]], None]  # (evaluations done, loss terms); may raise Cancelled


def network_for(state, layers, rt: Runtime, arch: str = "vgg16", pooling: str = "max") -> VGGFeatures:
    """The feature network on the run's device and in its memory layout."""
    net = VGGFeatures(state, layers, arch=arch, pooling=pooling).to(rt.device)
    return net.to(memory_format=torch.channels_last) if rt.channels_last else net


def features_of(net: VGGFeatures, image: torch.Tensor, rt: Runtime) -> dict[str, torch.Tensor]:
    if rt.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    with rt.autocast():
        return net(image)


@torch.no_grad()
def compute_targets(net: VGGFeatures, style_images, style_blend, content_image: torch.Tensor,
                    style_layers, content_layers, rt: Runtime) -> Targets:
    grams = []
    for img in style_images:
        feats = features_of(net, img, rt)
        grams.append({n: losses.gram(feats[n]) for n in style_layers})
    content_feats = features_of(net, content_image, rt)
    return Targets(losses.blend_grams(grams, list(style_blend)),
                   {n: content_feats[n].float() for n in content_layers})


def run_scale(net: VGGFeatures, init: torch.Tensor, targets: Targets, weights: Weights, evals: int,
              rt: Runtime, hook: StepHook | None = None, history: int = 50) -> torch.Tensor:
    """Returns the optimised image after about `evals` loss evaluations."""
    image = init.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([image], lr=1.0, max_iter=evals, max_eval=evals, history_size=history,
                            tolerance_grad=1e-9, tolerance_change=1e-12)
    count = [0]

    def closure():
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
        opt.zero_grad(set_to_none=True)
        feats = features_of(net, image, rt)
        s = losses.style_loss(feats, targets.grams, weights.style_layers)
        c = sum(losses.content_loss(feats[n], t) for n, t in targets.content.items())
        loss = weights.style * s + weights.content * c
        if weights.tv:
            tv = losses.tv_loss(image)
            loss = loss + weights.tv * tv
        loss.backward()
        image.grad = image.grad.contiguous()  # conv backward may hand back channels-last; L-BFGS needs flat views
        count[0] += 1
        if hook is not None:
            hook(count[0], {"style": float(s.detach()), "content": float(c.detach()), "total": float(loss.detach())})
        return loss

    try:
        opt.step(closure)
    except Cancelled:
        raise
    with torch.no_grad():
        image.clamp_(0.0, 1.0)
    return image.detach()
