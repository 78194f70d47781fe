"""Quality presets: their names and labels as every front end offers them, and how many evaluations to spend at which sizes.

Standard library only (the GIMP dialog lists them).

Cost of one evaluation grows with the pixel count, so most evaluations run at coarse scales,
where the picture's structure and colours are decided; the fine scales only sharpen brushwork.
Above `base_size` each doubling gets a few evaluations only: those scales are tiled when they
outgrow the device, against style statistics of the whole picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylecore.protocol.errors import BadInput


@dataclass(frozen=True)
class Preset:
    name: str
    label: str  # what the dialog and --help show
    working_size: int | None  # long side of the finest optimised scale, at most; None: the layer's own
    min_size: int  # long side of the coarsest scale
    coarse_evals: int  # evaluations at min_size
    fine_evals: int  # the fewest evaluations any scale up to base_size gets
    decay: float  # evaluations fall as (min_size / size) ** decay: equal time per scale is decay 2
    scale_step: float = math.sqrt(2.0)
    base_size: int = 1024  # long side up to which the scales follow the decay
    refine_evals: int = 4  # evaluations at each doubling above base_size
    final_evals: int = 0  # the finest scale up to base_size gets at least this many at 512 px, fewer per pixel above
    feed_forward: bool = False  # painted in one pass by the instant network (instant.py): no evaluations at all


INSTANT = "instant"  # the feed-forward preset, whose picture a preview may ask for first

PRESETS = {
    INSTANT: Preset(
        INSTANT,
        "Instant (one pass, about a second)",
        # Whatever the layer's size: the preview's 320 px and a 24 MP layer get the same strokes relative to the picture.
        # Bigger paints finer strokes and makes the preview's instant picture wait longer.
        working_size=768,
        min_size=0,
        coarse_evals=0,
        fine_evals=0,
        decay=0.0,
        feed_forward=True,
    ),
    "draft": Preset(
        "draft", "Draft (quick preview)", working_size=256, min_size=128, coarse_evals=32, fine_evals=6, decay=2.4, scale_step=2.0
    ),
    "balanced": Preset(
        "balanced",
        "Balanced",
        working_size=2048,
        min_size=128,
        coarse_evals=60,
        fine_evals=6,
        decay=1.45,
        scale_step=2.0,
        final_evals=24,
    ),
    "best": Preset(
        "best", "Best (slow)", working_size=None, min_size=128, coarse_evals=100, fine_evals=10, decay=1.1, refine_evals=6
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInput(f"preset '{name}' unknown; use one of {', '.join(PRESETS)}") from None


def schedule(preset: Preset, long_side: int) -> list[tuple[int, int]]:
    """(long side, evaluations) per scale, coarse to fine, ending exactly at long_side."""
    top = max(long_side, 16)
    upper = []
    while top > 1.5 * preset.base_size:
        upper.append((top, preset.refine_evals))
        top = round(top / 2)
    sizes = [top]
    while sizes[-1] / preset.scale_step >= preset.min_size * 0.99:
        sizes.append(round(sizes[-1] / preset.scale_step))
    sizes.reverse()
    out = []
    for size in sizes:
        evals = preset.coarse_evals * min(1.0, preset.min_size / size) ** preset.decay
        out.append((size, max(preset.fine_evals, round(evals))))
    # The finest scale is what is seen at 100 %, so it gets enough evaluations to replace the photo's own texture
    # with brushwork (the figures behind final_evals are in README's Quality section).
    final = round(preset.final_evals * min(1.0, (512 / sizes[-1]) ** 2))
    out[-1] = (out[-1][0], max(out[-1][1], final))
    return out + upper[::-1]
