"""stylecore.stylize: the single entry point that the CLI and the GIMP plug-in both call."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import colour, images, presets
from . import weights as weights_mod
from .device import Runtime, runtime_for
from .errors import BadInput, Cancelled, OutOfMemory
from .optimize import Weights, compute_targets, network_for, run_scale
from .progress import CancelCheck, Progress, ProgressCallback, cancel_requested
from .vgg import random_state

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
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


def _fit(width: int, height: int, long_side: int) -> tuple[int, int]:
    k = long_side / max(width, height)
    return max(1, round(width * k)), max(1, round(height * k))


def _to_tensor(arr: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].to(device)


def _resize(t: torch.Tensor, width: int, height: int) -> torch.Tensor:
    if t.shape[-1] == width and t.shape[-2] == height:
        return t
    down = width < t.shape[-1]
    return F.interpolate(t, size=(height, width), mode="bicubic", align_corners=False, antialias=down).clamp(0, 1)


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
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = None,
) -> Image.Image:
    """Repaints `content` in the style of `style`; returns an image of exactly the content's size.

    Alpha is passed through untouched. `progress` receives a Progress record after every
    evaluation; `cancel` (an Event or a callable) is polled as often, and a cancelled run
    raises Cancelled without returning anything.
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
    net = network_for(state, STYLE_LAYERS + CONTENT_LAYERS, rt, arch=model, pooling=pooling)

    width, height = src.size
    top = min(max(width, height), working_size or chosen.working_size)
    plan = [_Scale(*_fit(width, height, side), evals) for side, evals in presets.schedule(chosen, top)]
    try:
        result = _optimise(src, styles, blend, plan, net, rt, strength, preserve_colors, style_scale,
                           tv_weight, seed, started, progress, cancel)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemory(f"the {rt.device.type} ran out of memory at {plan[-1].width}x{plan[-1].height}; lower the working size or use --device cpu") from exc
    out = _resize(result, width, height)[0].permute(1, 2, 0).float().cpu().numpy()
    if progress:
        progress(Progress("finish", len(plan), len(plan), width, height, 0, 0, 1.0, time.perf_counter() - started, 0.0))
    return images.to_pil(out, src.alpha)


def _optimise(src, styles, blend, plan, net, rt: Runtime, strength, preserve_colors, style_scale,
              tv_weight, seed, started, progress, cancel) -> torch.Tensor:
    content_full = _to_tensor(src.rgb, rt.device)
    style_full = [_to_tensor(s.rgb, rt.device) for s in styles]
    if preserve_colors:
        content_grey = colour.luminance_as_rgb(content_full)
        style_full = [colour.match_luminance(colour.luminance_as_rgb(s), content_grey) for s in style_full]
        work_source = content_grey
    else:
        work_source = content_full
    layer_weights = {n: 1.0 / len(STYLE_LAYERS) for n in STYLE_LAYERS}
    loss_weights = Weights(style=style_weight_for(strength), content=1.0,
                           tv=0.0 if tv_weight is None else tv_weight, style_layers=layer_weights)
    costs = [s.width * s.height * s.evals for s in plan]
    total_cost = float(sum(costs))
    image = None
    done_cost = 0.0
    for index, scale in enumerate(plan):
        content_s = _resize(work_source, scale.width, scale.height)
        style_s = []
        for st in style_full:
            sw, sh = _fit(st.shape[-1], st.shape[-2], max(16, round(max(scale.width, scale.height) * style_scale)))
            style_s.append(_resize(st, sw, sh))
        targets = compute_targets(net, style_s, blend, content_s, STYLE_LAYERS, CONTENT_LAYERS, rt)
        if image is None:
            noise = torch.randn(content_s.shape, generator=torch.Generator().manual_seed(seed)).to(content_s) * 0.01
            init = (content_s + noise).clamp(0, 1)
        else:
            init = _resize(image, scale.width, scale.height)

        def hook(step, terms, index=index, scale=scale, base=done_cost):
            if cancel_requested(cancel):
                raise Cancelled()
            if progress is None:
                return
            done = (base + scale.width * scale.height * step) / total_cost
            elapsed = time.perf_counter() - started
            eta = elapsed * (1 - done) / done if done > 0.02 else None
            progress(Progress("optimize", index + 1, len(plan), scale.width, scale.height, step, scale.evals,
                              min(done, 1.0), elapsed, eta, terms))

        if cancel_requested(cancel):
            raise Cancelled()
        image = run_scale(net, init, targets, loss_weights, scale.evals, rt, hook)
        done_cost += costs[index]
    if preserve_colors:
        content_top = _resize(content_full, image.shape[-1], image.shape[-2])
        image = colour.recombine(image, content_top)
    return image
