"""The scale loop: coarse to fine, each scale starting from the previous one's result.

Per scale: the painting's Grams at this size (cached by the engine), the content targets, then
L-BFGS for the scale's evaluations. Content is prepared once before the loop (luminance for
preserve-colors, made tileable for seamless) and colors are put back after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from stylecore.engine import color, resize
from stylecore.engine import seamless as seamless_mod
from stylecore.engine.optimize import lbfgs
from stylecore.engine.optimize.objective import (
    LossWeights,
    Problem,
    Terms,
    content_targets,
    tiled_objective,
    whole_image_objective,
)
from stylecore.engine.optimize.vgg import ALIGN, HALO, MIN_SIDE, PIXELS
from stylecore.engine.options import StyleOptions
from stylecore.engine.tiling import Features, Grid, make_grid
from stylecore.protocol import presets
from stylecore.protocol.errors import Cancelled
from stylecore.protocol.progress import CancelCheck, Progress, ProgressCallback, cancel_requested

ImageCallback = Callable[[np.ndarray], None]
# Beyond this share of the painting's palette the photo's own color contrasts are gone from the content term, and the
# judge found results further from the painting and from the photo (docs/quality-bench.md).
PALETTE_SHARE_MAX = 0.7
StyleGrams = Callable[[int], dict[str, torch.Tensor]]  # long side -> the blended paintings' Grams at that size


@dataclass(frozen=True)
class Scale:
    width: int
    height: int
    evals: int
    grid: Grid | None = None  # tiles, when the scale is too big for one pass

    @property
    def cost(self) -> float:  # relative work, for progress: a tiled pass makes an extra forward pass
        return self.width * self.height * self.evals * (1.6 if self.grid else 1.0)


def grid_for(width: int, height: int, side: int, wrap: bool = False) -> Grid | None:
    return make_grid(width, height, side, HALO, ALIGN, wrap) if height * width > side * side else None


def plan(size: tuple[int, int], options: StyleOptions, tile_side: int) -> list[Scale]:
    """The scales of a run for a content of `size` (width, height).

    Layers thinner than the network accepts are optimised at MIN_SIDE (stretched across) and resized back."""
    preset = presets.get_preset(options.preset)
    top = min(max(size), options.working_size or preset.working_size or max(size))
    out = []
    for long_side, evals in presets.schedule(preset, top):
        w, h = resize.fit(size, long_side, MIN_SIDE, ALIGN if options.seamless else 1)
        out.append(Scale(w, h, evals, grid_for(w, h, tile_side, options.seamless)))
    return out


@dataclass
class Reporter:
    """Progress, intermediate images and cancellation for one run."""

    progress: ProgressCallback | None
    on_image: ImageCallback | None
    cancel: Sequence[CancelCheck]
    started: float

    def poll(self) -> None:
        if any(cancel_requested(c) for c in self.cancel):
            raise Cancelled()

    def finish(self, plan: list[Scale], size: tuple[int, int]) -> None:
        if self.progress:
            elapsed = time.perf_counter() - self.started
            self.progress(
                Progress(
                    "finish",
                    scale=len(plan),
                    scales=len(plan),
                    width=size[0],
                    height=size[1],
                    step=0,
                    steps=0,
                    done=1.0,
                    elapsed=elapsed,
                    eta=0.0,
                )
            )


@dataclass(frozen=True)
class Content:
    """The content as the optimizer sees it, and what puts its colors back."""

    work: torch.Tensor  # what the content loss compares against (luminance with preserve-colors)
    chroma: torch.Tensor | None  # the content whose colors the result takes, with preserve-colors
    wrap: bool

    @classmethod
    def prepare(cls, rgb: torch.Tensor, options: StyleOptions) -> Content:
        work = color.luminance_as_rgb(rgb) if options.preserve_colors else rgb
        chroma = rgb if options.preserve_colors else None
        if options.seamless:
            work = seamless_mod.make_tileable(work)
            chroma = None if chroma is None else seamless_mod.make_tileable(chroma)
        return cls(work, chroma, options.seamless)

    def toward_palette(self, pixel_gram: torch.Tensor, share: float) -> Content:
        """The work picture moved `share` of the way to the painting's palette (color.match_palette): it is both where
        the optimisation starts and what the content term keeps, so the content term no longer pulls the photo's colors
        back. With preserve-colors the photo's colors are the point, so it is left as it is."""
        if self.chroma is not None or share <= 0:
            return self
        moved = color.match_palette(self.work, pixel_gram)
        return replace(self, work=moved.sub_(self.work).mul_(share).add_(self.work))  # lerp, without another copy

    def at(self, width: int, height: int) -> torch.Tensor:
        return resize.bicubic(self.work, width, height, wrap=self.wrap)

    def finish(self, image: torch.Tensor) -> torch.Tensor:
        """Colors put back (preserve-colors), at the image's own size."""
        if self.chroma is None:
            return image
        return color.recombine(image, resize.bicubic(self.chroma, image.shape[-1], image.shape[-2], wrap=self.wrap))


@dataclass(frozen=True)
class Job:
    """One run, with everything fixed before the loop starts."""

    options: StyleOptions
    content: Content
    styles: StyleGrams
    features: Features
    plan: list[Scale]


def run(job: Job, report: Reporter) -> torch.Tensor:
    """Optimises coarse to fine; returns the finest scale's image, colors put back (1x3xHxW)."""
    options, scales = job.options, job.plan
    weights = LossWeights.for_strength(options.strength, options.tv_weight)
    total_cost = float(sum(s.cost for s in scales))
    image: torch.Tensor | None = None
    coarse_content: torch.Tensor | None = None
    curvature: lbfgs.Curvature | None = None
    done_cost = 0.0
    source = job.content
    for index, scale in enumerate(scales):
        report.poll()
        grams = job.styles(max(MIN_SIDE, round(max(scale.width, scale.height) * options.style_scale)))
        if index == 0:  # strength is how far toward the painting, in its palette as in its brushwork
            source = job.content.toward_palette(grams[PIXELS], min(options.strength / 100, PALETTE_SHARE_MAX))
        content = source.at(scale.width, scale.height)
        if image is None or coarse_content is None:
            noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(options.seed)).to(content) * 0.01
            init = (content + noise).clamp(0, 1)
        else:
            init = detailed_init(image, content, coarse_content, options.seamless)
        coarse_content = content
        targets = content_targets(job.features, grams, content, scale.grid, options.seamless, report.poll)
        problem = Problem(job.features, targets, weights, options.seamless)
        objective = (
            tiled_objective(problem, scale.grid, report.poll) if scale.grid else whole_image_objective(problem, report.poll)
        )
        hook = _hook(job, report, index, (done_cost / total_cost, scale.cost / total_cost))
        image, curvature = lbfgs.minimize(init, objective, scale.evals, hook, curvature=curvature)
        done_cost += scale.cost
    assert image is not None
    return source.finish(image)


def detailed_init(image: torch.Tensor, content: torch.Tensor, coarse_content: torch.Tensor, wrap: bool) -> torch.Tensor:
    """The coarser scale's result enlarged, plus the photo's detail that the coarser scale could not hold.

    The enlarged result alone is blurred, and a fine scale's few evaluations never bring the photo's edges, faces and
    lettering back; adding the band content - enlarge(coarse content) puts them back before the first evaluation."""
    width, height = content.shape[-1], content.shape[-2]
    enlarged = resize.bicubic(image, width, height, wrap=wrap)
    return (enlarged + content - resize.bicubic(coarse_content, width, height, wrap=wrap)).clamp(0, 1)


def _hook(job: Job, report: Reporter, index: int, share: tuple[float, float]) -> lbfgs.StepHook:
    scale, scales = job.plan[index], job.plan
    base, part = share

    def hook(step: int, terms: Terms, x: torch.Tensor) -> None:
        report.poll()
        if report.on_image is not None:
            report.on_image(resize.to_numpy(job.content.finish(x)))
        if report.progress is None:
            return
        done = min(1.0, base + part * step / scale.evals)
        elapsed = time.perf_counter() - report.started
        eta = elapsed * (1 - done) / done if done > 0.02 else None
        report.progress(
            Progress(
                "optimize",
                scale=index + 1,
                scales=len(scales),
                width=scale.width,
                height=scale.height,
                step=step,
                steps=scale.evals,
                done=done,
                elapsed=elapsed,
                eta=eta,
                losses=terms,
            )
        )

    return hook
