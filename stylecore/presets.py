"""Quality presets: how many evaluations to spend at which sizes.

Cost of one evaluation grows with the pixel count, so most evaluations run at coarse scales,
where the picture's structure and colours are decided; the fine scales only add brushwork.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BadInput


@dataclass(frozen=True)
class Preset:
    name: str
    working_size: int  # long side of the finest optimised scale, at most
    min_size: int  # long side of the coarsest scale
    coarse_evals: int  # evaluations at the coarsest scale
    fine_evals: int  # evaluations at the finest scale
    scale_step: float = math.sqrt(2.0)


PRESETS = {
    "draft": Preset("draft", working_size=256, min_size=128, coarse_evals=40, fine_evals=6, scale_step=2.0),
    "balanced": Preset("balanced", working_size=1024, min_size=128, coarse_evals=60, fine_evals=8, scale_step=2.0),
    "best": Preset("best", working_size=1024, min_size=128, coarse_evals=100, fine_evals=10),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInput(f"preset '{name}' unknown; use one of {', '.join(PRESETS)}") from None


def schedule(preset: Preset, long_side: int) -> list[tuple[int, int]]:
    """(long side, evaluations) per scale, coarse to fine, ending exactly at long_side."""
    top = max(long_side, 16)
    sizes = [top]
    while sizes[-1] / preset.scale_step >= preset.min_size * 0.99:
        sizes.append(round(sizes[-1] / preset.scale_step))
    sizes.reverse()
    if len(sizes) == 1:
        return [(top, preset.coarse_evals)]
    out = []
    for i, size in enumerate(sizes):
        t = i / (len(sizes) - 1)
        # geometric interpolation of the evaluation count between coarse and fine
        evals = preset.coarse_evals * (preset.fine_evals / preset.coarse_evals) ** t
        out.append((size, max(1, round(evals))))
    return out
