"""stylecore.stylize: the single entry point that the CLI and the GIMP plug-in both call."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from PIL import Image

from . import colour, images, presets, resize
from . import seamless as seamless_mod
from . import weights as weights_mod
from .device import Runtime, runtime_for, tile_side
from .errors import BadInput, Cancelled, OutOfMemory
from .losses import blend_grams
from .optimize import Weights, content_targets, network_for, run_scale, style_grams, tiled_objective, whole_image_objective
from .progress import CancelCheck, Progress, ProgressCallback, cancel_requested
from .tiling import Grid, make_grid
from .vgg import random_state

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
# Layers whose Grams describe fine texture: above the painting's own resolution their targets
# come from the painting at its own size, since an enlarged painting has no fine texture to give.
DETAIL_LAYERS = ("relu1_1", "relu2_1")
ALIGN = 16  # four poolings before relu5_1: tile edges and seamless sizes on multiples of 16
HALO = 80  # receptive-field radius of relu5_1 in VGG16 is 66 px: tiles see that far past their core
StyleSpec = Union[images.ImageLike, Sequence[images.ImageLike], Sequence[tuple[images.ImageLike, float]]]

# strength s in [0, 100] maps log-linearly onto the style/content weight ratio, which is how
# the eye perceives it: each 10 % step multiplies the ratio by the same factor.
STRENGTH_LOG10_RANGE = (-2.0, 2.0)


def style_weight_for(strength: float) -> float:
    lo, hi = STRENGTH_LOG10_RANGE
    return 10.0 ** (lo + (hi - lo) * strength / 100.0)


@dataclass(frozen=True)
class _Scale:
    width: int
    height: int
    evals: int
    grid: Grid | None = None  # tiles, when the scale is too big for one pass

    @property
    def cost(self) -> float:  # relative work, for progress: a tiled pass makes an extra forward pass
        return self.width * self.height * self.evals * (1.6 if self.grid else 1.0)


def _grid_for(height: int, width: int, side: int, wrap: bool = False) -> Grid | None:
    return make_grid(height, width, side, HALO, ALIGN, wrap) if height * width > side * side else None


def _fit(width: int, height: int, long_side: int, multiple: int = 1) -> tuple[int, int]:
    k = long_side / max(width, height)
    if multiple > 1:
        return (max(multiple, round(width * k / multiple) * multiple),
                max(multiple, round(height * k / multiple) * multiple))
    return max(1, round(width * k)), max(1, round(height * k))


def _to_tensor(arr: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].to(device)


def _resize(t: torch.Tensor, width: int, height: int, wrap: bool = False) -> torch.Tensor:
    return resize.bicubic(t, width, height, wrap=wrap)


def _normalise_styles(style: StyleSpec, style_weights: Sequence[float] | None):
    if isinstance(style, (list, tuple)) and style and not isinstance(style, np.ndarray):
        items = list(style)
    else:
        items = [style]
    sources, blend = [], []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], (int, float)):
            sources.append(item[0])
            blend.append(float(item[1]))
        else:
            sources.append(item)
            blend.append(1.0)
    if not sources:
        raise BadInput("no style image given; pass at least one style image")
    if style_weights is not None:
        if len(style_weights) != len(sources):
            raise BadInput(f"{len(style_weights)} style weights for {len(sources)} style images; give one weight per style")
        blend = [float(w) for w in style_weights]
    if any(not math.isfinite(w) or w < 0 for w in blend) or sum(blend) <= 0:
        raise BadInput("style weights must be non-negative numbers with a positive sum")
    return sources, blend


def _check_options(strength, style_scale, working_size, tv_weight):
    if not (isinstance(strength, (int, float)) and 0 <= strength <= 100):
        raise BadInput(f"strength {strength!r} is outside 0..100; use a percentage such as 70")
    if not (isinstance(style_scale, (int, float)) and 0.1 <= style_scale <= 4.0):
        raise BadInput(f"style scale {style_scale!r} is outside 0.1..4; 1 keeps the painting's own brush size")
    if working_size is not None and not (64 <= working_size <= 8192):
        raise BadInput(f"working size {working_size!r} is outside 64..8192 pixels")
    if tv_weight is not None and not (0 <= tv_weight <= 1e6):
        raise BadInput(f"tv weight {tv_weight!r} is outside 0..1e6")


def stylize(
    content: images.ImageLike,
    style: StyleSpec,
    *,
    style_weights: Sequence[float] | None = None,
    strength: float = 70.0,
    preserve_colors: bool = False,
    style_scale: float = 1.0,
    preset: str = "balanced",
    working_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    model: str = "vgg16",
    weights: str | None = None,
    random_weights: bool = False,
    tv_weight: float | None = None,
    pooling: str = "max",
    seamless: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = None,
) -> Image.Image:
    """Repaints `content` in the style of `style`; returns an image of exactly the content's size.

    Alpha is passed through untouched. `progress` receives a Progress record after every
    evaluation; `cancel` (an Event or a callable) is polled as often, and a cancelled run
    raises Cancelled without returning anything. With `seamless`, the result tiles without a
    seam (edges wrap around). Scales bigger than one tile are evaluated tile by tile, against
    style statistics of the whole picture.
    """
    started = time.perf_counter()
    _check_options(strength, style_scale, working_size, tv_weight)
    if model not in ("vgg16", "vgg19"):
        raise BadInput(f"model '{model}' unknown; use vgg16 or vgg19")
    if pooling not in ("avg", "max"):
        raise BadInput(f"pooling '{pooling}' unknown; use avg or max")
    chosen = presets.get_preset(preset)
    src = images.load(content, "content image")
    sources, blend = _normalise_styles(style, style_weights)
    styles = [images.load(s, "style image") for s in sources]
    if strength == 0:
        return images.to_pil(src.rgb, src.alpha)

    rt = runtime_for(device, precision)
    torch.manual_seed(seed)
    state = random_state(model) if random_weights else weights_mod.load_weights(model, weights)
    net = network_for(state, STYLE_LAYERS + CONTENT_LAYERS, rt, arch=model, pooling=pooling, seamless=seamless)

    width, height = src.size
    top = min(max(width, height), working_size or chosen.working_size or max(width, height))
    side = tile_side(rt)
    plan = []
    for long_side, evals in presets.schedule(chosen, top):
        w, h = _fit(width, height, long_side, ALIGN if seamless else 1)
        plan.append(_Scale(w, h, evals, _grid_for(h, w, side, seamless)))
    try:
        result = _optimise(src, styles, blend, plan, net, side, rt, strength, preserve_colors, style_scale,
                           tv_weight, seed, seamless, started, progress, cancel)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(f"the {rt.device.type} ran out of memory at {plan[-1].width}x{plan[-1].height}; "
                          "lower the working size or use --device cpu") from exc
    out = _resize(result, width, height, wrap=seamless)[0].permute(1, 2, 0).float().cpu().numpy()
    if progress:
        progress(Progress("finish", len(plan), len(plan), width, height, 0, 0, 1.0, time.perf_counter() - started, 0.0))
    return images.to_pil(out, src.alpha)


def _style_grams(net, style: torch.Tensor, long_side: int, rt: Runtime, side: int, poll) -> dict[str, torch.Tensor]:
    """Style Grams for one scale; paintings bigger than a tile are summed tile by tile."""
    def grams_of(img, layers):
        return style_grams(net, img, layers, rt, _grid_for(*img.shape[-2:], side), poll)

    native = max(style.shape[-1], style.shape[-2])
    scaled = _resize(style, *_fit(style.shape[-1], style.shape[-2], long_side))
    if long_side <= native:
        return grams_of(scaled, STYLE_LAYERS)
    deep = [n for n in STYLE_LAYERS if n not in DETAIL_LAYERS]
    return {**grams_of(style, DETAIL_LAYERS), **grams_of(scaled, deep)}


def _optimise(src, styles, blend, plan, net, side: int, rt: Runtime, strength, preserve_colors, style_scale,
              tv_weight, seed, seamless, started, progress, cancel) -> torch.Tensor:
    content_full = _to_tensor(src.rgb, rt.device)
    style_full = [_to_tensor(s.rgb, rt.device) for s in styles]
    if preserve_colors:
        content_grey = colour.luminance_as_rgb(content_full)
        style_full = [colour.match_luminance(colour.luminance_as_rgb(s), content_grey) for s in style_full]
        work_source = content_grey
    else:
        work_source = content_full
    if seamless:
        work_source = seamless_mod.make_tileable(work_source)
    tv = 0.0 if tv_weight is None else tv_weight
    total_cost = float(sum(s.cost for s in plan))
    layer_weights = {n: 1.0 / len(STYLE_LAYERS) for n in STYLE_LAYERS}
    loss_weights = Weights(style=style_weight_for(strength), content=1.0, tv=tv, style_layers=layer_weights)
    image = None
    curvature = None
    done_cost = 0.0

    def poll():
        if cancel_requested(cancel):
            raise Cancelled()

    for index, scale in enumerate(plan):
        poll()
        long_side = max(16, round(max(scale.width, scale.height) * style_scale))
        grams = blend_grams([_style_grams(net, st, long_side, rt, side, poll) for st in style_full], blend)
        content_s = _resize(work_source, scale.width, scale.height, wrap=seamless)
        if image is None:
            noise = torch.randn(content_s.shape, generator=torch.Generator().manual_seed(seed)).to(content_s) * 0.01
            init = (content_s + noise).clamp(0, 1)
        else:
            init = _resize(image, scale.width, scale.height, wrap=seamless)
        if scale.grid:
            targets = content_targets(net, grams, content_s, CONTENT_LAYERS, rt, scale.grid, poll)
            objective = tiled_objective(net, targets, loss_weights, rt, scale.grid, CONTENT_LAYERS[0], seamless, poll)
        else:
            targets = content_targets(net, grams, content_s, CONTENT_LAYERS, rt)
            objective = whole_image_objective(net, targets, loss_weights, rt, seamless)

        def hook(step, terms, index=index, scale=scale, base=done_cost):
            poll()
            if progress is None:
                return
            done = (base + scale.cost * step / scale.evals) / total_cost
            elapsed = time.perf_counter() - started
            eta = elapsed * (1 - done) / done if done > 0.02 else None
            progress(Progress("optimize", index + 1, len(plan), scale.width,
                              scale.height, step, scale.evals, min(done, 1.0), elapsed, eta, terms))

        image, curvature = run_scale(init, objective, scale.evals, hook, curvature=curvature)
        done_cost += scale.cost
    if preserve_colors:
        chroma = seamless_mod.make_tileable(content_full) if seamless else content_full
        content_top = _resize(chroma, image.shape[-1], image.shape[-2], wrap=seamless)
        image = colour.recombine(image, content_top)
    return image
