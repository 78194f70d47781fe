"""What a run takes, validated once: `StyleOptions`, and the style images with their blend weights."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from stylecore.images.reading import ImageLike
from stylecore.protocol import option_table
from stylecore.protocol.errors import BadInput
from stylecore.protocol.presets import get_preset

StyleSpec = Union[ImageLike, Sequence[ImageLike], Sequence[tuple[ImageLike, float]]]


def _default(name: str) -> Any:
    return option_table.option(name).default


@dataclass(frozen=True)
class StyleOptions:
    """The options of one run: option_table.RUN_OPTIONS, whose table holds each one's type, default, range and help.

    The fields are spelled out so type checkers see them; a test holds them equal to the table.
    Constructing one checks every value and raises BadInput naming the bad one and the fix."""

    strength: float = _default("strength")
    preserve_colors: bool = _default("preserve_colors")
    style_scale: float = _default("style_scale")
    preset: str = _default("preset")
    working_size: int | None = _default("working_size")
    seed: int = _default("seed")
    seamless: bool = _default("seamless")
    tv_weight: float | None = _default("tv_weight")
    pooling: str = _default("pooling")

    def __post_init__(self) -> None:
        for option in option_table.RUN_OPTIONS:
            if option.name == "preset":  # the engine's registry decides (equal to the contract's; tests add their own)
                get_preset(self.preset)
                continue
            why = option.problem(getattr(self, option.name))
            if why:
                raise BadInput(why)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> StyleOptions:
        """StyleOptions(**keywords), with an unknown keyword refused as BadInput (a misspelt option is never ignored)."""
        unknown = sorted(set(keywords) - set(cls.__dataclass_fields__))
        if unknown:
            raise BadInput(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**keywords)


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
