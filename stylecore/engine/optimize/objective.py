"""What is minimised: the style, content and smoothness terms, their layers and their weights.

An objective maps the current image to (loss, gradient, named terms). The whole-image one keeps
the full graph; the tiled one gives the same numbers with one tile's activations in memory, for
layers bigger than the device holds. Both build the loss from the same `LossWeights.total` and
`losses.style_loss`: to change what is minimised, change it here and in losses.py, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from stylecore.engine import resize, tiling
from stylecore.engine import seamless as seamless_mod
from stylecore.engine.optimize import losses
from stylecore.engine.optimize.vgg import MIN_SIDE, PIXELS, stride
from stylecore.engine.tiling import Features, Grid, Poll

# The deep layers see whole objects of the painting (an eye, a face, a sail) and print them into the photo's flat areas;
# the shallow ones carry its brushwork and palette, so they weigh most (docs/quality-bench.md, all 18 bench pairs).
VGG_LAYER_WEIGHTS = {"relu1_1": 0.3, "relu2_1": 0.3, "relu3_1": 0.25, "relu4_1": 0.1, "relu5_1": 0.05}
VGG_STYLE_LAYERS = tuple(VGG_LAYER_WEIGHTS)
STYLE_LAYERS = (PIXELS, *VGG_STYLE_LAYERS)
# The pixels' color moments (mean and second moments of R, G, B) move the palette toward the painting's, which the
# VGG layers alone leave at the photo's; heavier weights cost too much of the photo (README, Quality).
PIXELS_WEIGHT = 0.3
STYLE_LAYER_WEIGHTS = {PIXELS: PIXELS_WEIGHT, **VGG_LAYER_WEIGHTS}
CONTENT_LAYER = "relu4_2"
LAYERS = (*STYLE_LAYERS, CONTENT_LAYER)  # what the network must compute
# Layers whose Grams describe fine texture: above the painting's own resolution their targets
# come from the painting at its own size, since an enlarged painting has no fine texture to give.
DETAIL_LAYERS = ("relu1_1", "relu2_1")
# strength s in [0, 100] maps log-linearly onto the style/content weight ratio, which is how
# the eye perceives it: each 10 % step multiplies the ratio by the same factor.
STRENGTH_LOG10_RANGE = (-2.0, 2.0)

Terms = dict[str, float]
T = TypeVar("T", float, torch.Tensor)
Objective = Callable[[torch.Tensor], tuple[float, torch.Tensor, Terms]]


def style_weight_for(strength: float) -> float:
    lo, hi = STRENGTH_LOG10_RANGE
    return 10.0 ** (lo + (hi - lo) * strength / 100.0)


@dataclass(frozen=True)
class LossWeights:
    style: float
    content: float = 1.0
    tv: float = 0.0
    style_layers: Mapping[str, float] = field(default_factory=lambda: dict(STYLE_LAYER_WEIGHTS))

    @classmethod
    def for_strength(cls, strength: float, tv: float | None = None) -> LossWeights:
        return cls(style=style_weight_for(strength), tv=0.0 if tv is None else tv)

    def total(self, style: T, content: T) -> T:
        """The one place where the style and content terms are combined (TV is added apart: it needs no network)."""
        return self.style * style + self.content * content


@dataclass(frozen=True)
class Targets:
    grams: dict[str, torch.Tensor]  # style layer -> target Gram (fp32), global to the picture
    content: list[torch.Tensor]  # target activations of CONTENT_LAYER: one per tile, or one for the whole image
    content_norm: float  # their summed energy, the content loss's denominator


@torch.no_grad()
def painting_grams(
    features: Features,
    painting: torch.Tensor,
    long_side: int,
    grid_for: Callable[[int, int], Grid | None],  # (width, height) -> tiles, or None for one pass
    poll: Poll | None = None,
) -> dict[str, torch.Tensor]:
    """Style Grams of a painting seen at `long_side`; paintings bigger than a tile are summed tile by tile."""

    def grams_of(img: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        grid = grid_for(img.shape[-1], img.shape[-2])
        if grid is not None:
            return tiling.tiled_grams(features, img, layers, grid, poll)[0]
        feats = features(img)
        return {n: losses.gram(feats[n]) for n in layers}

    size = (painting.shape[-1], painting.shape[-2])
    scaled = resize.bicubic(painting, *resize.fit(size, long_side, MIN_SIDE))
    if long_side <= max(size):
        return grams_of(scaled, STYLE_LAYERS)
    own = resize.bicubic(painting, *resize.fit(size, max(size), MIN_SIDE))  # its own size, unless the network needs more
    deep = tuple(n for n in STYLE_LAYERS if n not in DETAIL_LAYERS)
    return {**grams_of(own, DETAIL_LAYERS), **grams_of(scaled, deep)}


def _seamless_masks(width: int, height: int, grid: Grid | None, device: torch.device) -> list[torch.Tensor]:
    """Content weight per CONTENT_LAYER position (edge bands are left to the style), per tile."""
    s = stride(CONTENT_LAYER)
    full = seamless_mod.content_mask(width // s, height // s, device)
    if grid is None:
        return [full]
    return [full[:, :, t.y0 // s : t.y1 // s, t.x0 // s : t.x1 // s] for t in grid.tiles]


@torch.no_grad()
def content_targets(
    features: Features,
    grams: dict[str, torch.Tensor],
    content: torch.Tensor,
    grid: Grid | None,
    seamless: bool,
    poll: Poll | None = None,
) -> Targets:
    """Bundles the style Grams with the content activations (per tile when the scale is tiled)."""
    if grid is not None:
        parts = tiling.tiled_features(features, content, CONTENT_LAYER, grid, poll)
    else:
        parts = [features(content)[CONTENT_LAYER].float()]
    if seamless:
        parts = [p * m for p, m in zip(parts, _seamless_masks(content.shape[-1], content.shape[-2], grid, content.device))]
    return Targets(grams, parts, sum(float(p.pow(2).sum()) for p in parts))


@dataclass(frozen=True)
class Problem:
    """Everything an objective needs besides the image."""

    features: Features
    targets: Targets
    weights: LossWeights
    seamless: bool = False


def _tv(problem: Problem, image: torch.Tensor) -> tuple[float, torch.Tensor | None]:
    if not problem.weights.tv:
        return 0.0, None
    x = image.detach().requires_grad_(True)
    tv = problem.weights.tv * losses.tv_loss(x, wrap=problem.seamless)
    tv.backward()
    return float(tv.detach()), x.grad


def _poll_in_backward(feats: dict[str, torch.Tensor], poll: Poll) -> None:
    """`poll()` again as the backward pass reaches each layer: a cancel then acts within a layer, not an evaluation."""

    def hook(grad: torch.Tensor) -> None:
        poll()

    for feat in feats.values():
        if feat.requires_grad:
            feat.register_hook(hook)


def whole_image_objective(problem: Problem, poll: Poll | None = None) -> Objective:
    """`poll()` runs after the forward pass and as the backward pass reaches each layer the losses read, and may
    raise: a preview whose settings changed stops within a fraction of an evaluation, so the next picture comes at once."""
    t = problem.targets
    height, width = t.content[0].shape[-2:]  # feature positions of CONTENT_LAYER
    masks = [seamless_mod.content_mask(width, height, t.content[0].device)] if problem.seamless else None

    def evaluate(image: torch.Tensor) -> tuple[float, torch.Tensor, Terms]:
        x = image.detach().requires_grad_(True)
        feats = problem.features(x)
        if poll is not None:
            poll()
            _poll_in_backward(feats, poll)
        s = losses.style_loss({n: losses.gram(feats[n]) for n in t.grams}, t.grams, problem.weights.style_layers)
        c_feat = feats[CONTENT_LAYER] if masks is None else feats[CONTENT_LAYER] * masks[0]
        c = losses.content_loss(c_feat, t.content[0], t.content_norm)
        loss = problem.weights.total(s, c)
        loss.backward()
        tv, tv_grad = _tv(problem, image)
        grad = x.grad.contiguous()  # type: ignore[union-attr]  # conv backward may hand back channels-last
        if tv_grad is not None:
            grad += tv_grad
        total = float(loss.detach()) + tv
        return total, grad, {"style": float(s.detach()), "content": float(c.detach()), "total": total}

    return evaluate


def tiled_objective(problem: Problem, grid: Grid, poll: Poll | None = None) -> Objective:
    """Two passes per evaluation: the global Grams, then each tile's share of the global loss back-propagated.

    `poll()` runs before every tile and may raise: one evaluation of a huge layer takes minutes."""
    t = problem.targets
    masks = _seamless_masks(grid.width, grid.height, grid, t.content[0].device) if problem.seamless else None

    def evaluate(image: torch.Tensor) -> tuple[float, torch.Tensor, Terms]:
        image = image.detach()
        whole, positions = tiling.tiled_grams(problem.features, image, t.grams, grid, poll)
        grad = torch.zeros_like(image)
        style = content = 0.0
        for view in tiling.views(image, grid, poll):
            crop = view.crop.detach().requires_grad_(True)
            feats = problem.features(crop)
            grams = dict(whole)
            for name in t.grams:  # the global Gram, with only this tile's share carrying a gradient
                core = view.core(feats[name], name)
                if core.shape[-2] * core.shape[-1]:
                    own = losses.gram(core) * (core.shape[-2] * core.shape[-1] / positions[name])
                    grams[name] = whole[name] + own - own.detach()
            s = losses.style_loss(grams, t.grams, problem.weights.style_layers)
            c_feat = view.core(feats[CONTENT_LAYER], CONTENT_LAYER)
            if masks is not None:
                c_feat = c_feat * masks[view.index]
            c = losses.content_loss(c_feat, t.content[view.index], t.content_norm)
            problem.weights.total(s, c).backward()
            tiling.add_crop_gradient(grad, crop.grad, view, grid)  # type: ignore[arg-type]
            style, content = float(s.detach()), content + float(c.detach())
        tv, tv_grad = _tv(problem, image)
        if tv_grad is not None:
            grad += tv_grad
        total = problem.weights.total(style, content) + tv
        return total, grad, {"style": style, "content": content, "total": total}

    return evaluate
