"""What a run takes, validated once: `StyleOptions`, and the style images with their blend weights."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

from .errors import BadInput
from .images import ImageLike
from .presets import get_preset

StyleSpec = Union[ImageLike, Sequence[ImageLike], Sequence[tuple[ImageLike, float]]]
POOLINGS = ("max", "avg")


@dataclass(frozen=True)
class StyleOptions:
    """The options of one run. Constructing one checks every value and raises BadInput naming the bad one."""

    strength: float = 70.0  # 0..100: how strongly the style repaints
    preserve_colors: bool = False  # transfer brushwork only, keep the content's colors
    style_scale: float = 1.0  # brush size relative to the output
    preset: str = "balanced"  # see presets.PRESETS
    working_size: int | None = None  # long side of the finest optimised scale; None: the preset's
    seed: int = 0
    seamless: bool = False  # the output tiles without a seam
    tv_weight: float | None = None  # total-variation smoothing; None: off
    pooling: str = "max"

    def __post_init__(self) -> None:
        if not (_is_number(self.strength) and 0 <= self.strength <= 100):
            raise BadInput(f"strength {self.strength!r} is outside 0..100; use a percentage such as 70")
        if not (_is_number(self.style_scale) and 0.1 <= self.style_scale <= 4.0):
            raise BadInput(f"style scale {self.style_scale!r} is outside 0.1..4; 1 keeps the painting's own brush size")
        if self.working_size is not None and not (isinstance(self.working_size, int) and 64 <= self.working_size <= 8192):
            raise BadInput(f"working size {self.working_size!r} is outside 64..8192 pixels")
        if self.tv_weight is not None and not (_is_number(self.tv_weight) and 0 <= self.tv_weight <= 1e6):
            raise BadInput(f"tv weight {self.tv_weight!r} is outside 0..1e6")
        if self.pooling not in POOLINGS:
            raise BadInput(f"pooling '{self.pooling}' unknown; use max or avg")
        if not isinstance(self.seed, int):
            raise BadInput(f"seed {self.seed!r} is not a whole number")
        get_preset(self.preset)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def style_sources(style: StyleSpec, style_weights: Sequence[float] | None = None) -> tuple[list[ImageLike], list[float]]:
    """The style images and their blend weights, from any of the accepted forms."""
    if isinstance(style, (list, tuple)) and style and not isinstance(style, np.ndarray):
        items: list = list(style)
    else:
        items = [style]
    sources: list[ImageLike] = []
    blend: list[float] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and _is_number(item[1]):
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
