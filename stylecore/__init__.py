"""stylecore: neural style transfer (Gatys et al. 2015) for GIMP, scripts and servers.

The public names load on first use (PEP 562), so `stylecore.contract` imports without numpy or torch:
GIMP's own Python imports it beside the plug-in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PRESETS": "presets",
    "BadInput": "errors",
    "Cancelled": "errors",
    "OutOfMemory": "errors",
    "Progress": "progress",
    "StyleOptions": "options",
    "StyledImage": "result",
    "StylecoreError": "errors",
    "Stylizer": "engine",
    "WeightsUnavailable": "errors",
    "stylize": "engine",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .engine import Stylizer as Stylizer
    from .engine import stylize as stylize
    from .errors import BadInput as BadInput
    from .errors import Cancelled as Cancelled
    from .errors import OutOfMemory as OutOfMemory
    from .errors import StylecoreError as StylecoreError
    from .errors import WeightsUnavailable as WeightsUnavailable
    from .options import StyleOptions as StyleOptions
    from .presets import PRESETS as PRESETS
    from .progress import Progress as Progress
    from .result import StyledImage as StyledImage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylecore' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
