"""stylecore: neural style transfer (Gatys et al. 2015) for GIMP, scripts and servers."""

from .api import stylize
from .errors import BadInput, Cancelled, OutOfMemory, StylecoreError, WeightsUnavailable
from .presets import PRESETS
from .progress import Progress

__all__ = ["stylize", "Progress", "PRESETS", "StylecoreError", "BadInput", "Cancelled",
           "WeightsUnavailable", "OutOfMemory"]
__version__ = "0.1.0"
