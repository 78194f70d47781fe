"""One scale of the optimisation: L-BFGS on the pixels against fixed style and content targets.

An objective maps the current image to (loss, gradient, named terms). The whole-image one
keeps the full graph; the tiled one (see tiling.py) gives the same numbers with one tile's
activations in memory, for layers bigger than the device holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from . import losses, tiling
from . import seamless as seamless_mod
from .device import Runtime
from .vgg import VGGFeatures


@dataclass(frozen=True)
class Targets:
    grams: dict[str, torch.Tensor]  # style layer -> target Gram (fp32), global to the picture
    content: dict[str, torch.Tensor]  # content layer -> target activations (whole-image objective)
    content_tiles: list[torch.Tensor] | None = None  # per-tile targets of the single content layer (tiled)


@dataclass(frozen=True)
class Weights:
    style: float
    content: float
    tv: float
    style_layers: Mapping[str, float]


StepHook = Callable[[int, dict[str, float]], None]  # (evaluations done, loss terms); may raise Cancelled
Objective = Callable[[torch.Tensor], tuple[float, torch.Tensor, dict[str, float]]]


def network_for(state, layers, rt: Runtime, arch: str = "vgg16", pooling: str = "max",
                seamless: bool = False) -> VGGFeatures:
    """The feature network on the run's device and in its memory layout."""
    net = VGGFeatures(state, layers, arch=arch, pooling=pooling, padding="circular" if seamless else "replicate")
    net = net.to(rt.device)
    return net.to(memory_format=torch.channels_last) if rt.channels_last else net


def features_of(net: VGGFeatures, image: torch.Tensor, rt: Runtime) -> dict[str, torch.Tensor]:
    if rt.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    with rt.autocast():
        return net(image)


def style_grams(net: VGGFeatures, image: torch.Tensor, layers, rt: Runtime,
                grid: tiling.Grid | None = None, poll=None) -> dict[str, torch.Tensor]:
    if grid is not None:
        return tiling.tiled_grams(lambda x: features_of(net, x, rt), image, layers, grid, poll)
    with torch.no_grad():
        feats = features_of(net, image, rt)
        return {n: losses.gram(feats[n]) for n in layers}


@torch.no_grad()
def content_targets(net: VGGFeatures, grams: dict[str, torch.Tensor], content_image: torch.Tensor, content_layers,
                    rt: Runtime, grid: tiling.Grid | None = None, poll=None) -> Targets:
    """Bundles the style Grams with the content activations, per tile when the scale is tiled."""
    if grid is not None:
        (layer,) = content_layers
        tiles = tiling.tiled_features(lambda x: features_of(net, x, rt), content_image, layer, grid, poll)
        return Targets(grams, {}, tiles)
    feats = features_of(net, content_image, rt)
    return Targets(grams, {n: feats[n].float() for n in content_layers})


def whole_image_objective(net: VGGFeatures, targets: Targets, weights: Weights, rt: Runtime,
                          seamless: bool = False) -> Objective:
    masks = {n: seamless_mod.content_mask(t.shape[-2], t.shape[-1], t.device) for n, t in targets.content.items()} if seamless else {}

    def evaluate(image: torch.Tensor):
        x = image.detach().requires_grad_(True)
        feats = features_of(net, x, rt)
        s = losses.style_loss(feats, targets.grams, weights.style_layers)
        if masks:
            c = sum(losses.content_loss(feats[n] * masks[n], t * masks[n]) for n, t in targets.content.items())
        else:
            c = sum(losses.content_loss(feats[n], t) for n, t in targets.content.items())
        loss = weights.style * s + weights.content * c
        if weights.tv:
            loss = loss + weights.tv * losses.tv_loss(x, wrap=seamless)
        loss.backward()
        terms = {"style": float(s.detach()), "content": float(c.detach()), "total": float(loss.detach())}
        return terms["total"], x.grad.contiguous(), terms  # conv backward may hand back channels-last

    return evaluate


def tiled_objective(net: VGGFeatures, targets: Targets, weights: Weights, rt: Runtime, grid: tiling.Grid,
                    content_layer: str, seamless: bool = False, poll=None) -> Objective:
    """`poll()` runs before every tile and may raise: one evaluation of a huge layer takes minutes."""
    content, masks = targets.content_tiles, None
    if seamless:
        s = tiling.feature_stride(content_layer)
        full = seamless_mod.content_mask(grid.height // s, grid.width // s, rt.device)
        masks = [full[:, :, t.y0 // s:t.y1 // s, t.x0 // s:t.x1 // s] for t in grid.tiles]
        content = [t * m for t, m in zip(content, masks)]
    content_norm = sum(float(t.pow(2).sum()) for t in content)  # once per scale, not per evaluation

    def evaluate(image: torch.Tensor):
        total, grad, terms = tiling.tiled_loss_and_grad(
            lambda x: features_of(net, x, rt), image.detach(), grid, targets.grams, weights.style_layers,
            weights.style, content_layer, content, weights.content, content_norm, masks, poll)
        if weights.tv:
            x = image.detach().requires_grad_(True)
            tv = weights.tv * losses.tv_loss(x, wrap=grid.wrap)
            tv.backward()
            grad += x.grad
            total += float(tv)
            terms = {**terms, "total": total}
        return total, grad, terms

    return evaluate


def lbfgs_history(numel: int, budget_bytes: float = 2e9, most: int = 50) -> int:
    """L-BFGS keeps two image-sized vectors per remembered step: bound them for huge layers."""
    return int(max(3, min(most, budget_bytes // (8 * numel))))


@dataclass
class Curvature:
    """The inverse-Hessian scale L-BFGS learned, carried to the next scale.

    Without it every scale's first step is a blind, tiny one (torch's LBFGS takes 1/|g|_1) and
    the second evaluation is wasted; with few evaluations per fine scale that was a third of
    them. Gradients per pixel shrink as 1/pixels (Grams are averages), so the scale grows with
    the pixel count."""
    gamma: float
    pixels: int

    def at(self, pixels: int) -> float:
        return self.gamma * pixels / self.pixels


def run_scale(init: torch.Tensor, objective: Objective, evals: int, hook: StepHook | None = None,
              curvature: Curvature | None = None) -> tuple[torch.Tensor, Curvature | None]:
    """L-BFGS (two-loop recursion, unit steps, projected onto [0, 1]) for `evals` evaluations.

    Returns the image and the curvature to start the next scale with."""
    x = init.detach().clamp(0.0, 1.0).contiguous()
    pixels = x.shape[-1] * x.shape[-2]
    history = min(lbfgs_history(x.numel()), max(evals, 3))
    _, grad, terms = objective(x)
    if hook is not None:
        hook(1, terms)
    gamma = curvature.at(pixels) if curvature else None
    steps: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (s, y, 1 / y.s)
    for count in range(2, evals + 1):
        g = grad.reshape(-1)
        if gamma is None:
            direction = -g * min(1.0, 1.0 / float(g.abs().sum().clamp_min(1e-30)))
        else:
            direction = -_two_loop(g, steps, gamma)
        new_x = (x + direction.view_as(x)).clamp_(0.0, 1.0)
        _, new_grad, terms = objective(new_x)
        if hook is not None:
            hook(count, terms)
        s = (new_x - x).reshape(-1)
        y = (new_grad - grad).reshape(-1)
        ys = float(y.dot(s))
        if ys > 1e-10 * max(1e-30, float(s.dot(s))):
            steps.append((s, y, 1.0 / ys))
            if len(steps) > history:
                steps.pop(0)
            gamma = ys / float(y.dot(y))
        x, grad = new_x, new_grad
    return x, (Curvature(gamma, pixels) if gamma is not None else curvature)


def _two_loop(g: torch.Tensor, steps, gamma: float) -> torch.Tensor:
    """H·g for the L-BFGS inverse-Hessian estimate H (Nocedal & Wright, algorithm 7.4)."""
    q = g.clone()
    alphas = []
    for s, y, rho in reversed(steps):
        a = rho * float(s.dot(q))
        alphas.append(a)
        q.add_(y, alpha=-a)
    q.mul_(gamma)
    for (s, y, rho), a in zip(steps, reversed(alphas)):
        b = rho * float(y.dot(q))
        q.add_(s, alpha=a - b)
    return q
