"""stylecore: neural style transfer (Gatys et al. 2015) for GIMP, scripts and servers."""

from .engine import Stylizer, stylize
from .errors import BadInput, Cancelled, OutOfMemory, StylecoreError, WeightsUnavailable
from .options import StyleOptions
from .presets import PRESETS
from .progress import Progress
from .result import StyledImage

__all__ = [
    "PRESETS",
    "BadInput",
    "Cancelled",
    "OutOfMemory",
    "Progress",
    "StyleOptions",
    "StyledImage",
    "StylecoreError",
    "Stylizer",
    "WeightsUnavailable",
    "stylize",
]
__version__ = "0.1.0"
