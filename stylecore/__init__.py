"""stylecore: neural style transfer (Gatys et al. 2015) for GIMP, scripts and servers.

The public names load on first use (PEP 562), so `stylecore.protocol` imports without numpy or torch:
GIMP's own Python imports it beside the plug-in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "PRESETS": "protocol.presets",
    "BadInput": "protocol.errors",
    "Cancelled": "protocol.errors",
    "OutOfMemory": "protocol.errors",
    "Progress": "protocol.progress",
    "StyleOptions": "engine.options",
    "StyledImage": "images.result",
    "StylecoreError": "protocol.errors",
    "Stylizer": "engine.stylizer",
    "WeightsUnavailable": "protocol.errors",
    "stylize": "engine.stylizer",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from stylecore.engine.options import StyleOptions as StyleOptions
    from stylecore.engine.stylizer import Stylizer as Stylizer
    from stylecore.engine.stylizer import stylize as stylize
    from stylecore.images.result import StyledImage as StyledImage
    from stylecore.protocol.errors import BadInput as BadInput
    from stylecore.protocol.errors import Cancelled as Cancelled
    from stylecore.protocol.errors import OutOfMemory as OutOfMemory
    from stylecore.protocol.errors import StylecoreError as StylecoreError
    from stylecore.protocol.errors import WeightsUnavailable as WeightsUnavailable
    from stylecore.protocol.presets import PRESETS as PRESETS
    from stylecore.protocol.progress import Progress as Progress


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stylecore' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
