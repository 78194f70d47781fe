"""The typed progress record that the CLI, the worker, the plug-in and library callers all receive.

Standard library only."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Progress:
    stage: str  # "optimize" after every evaluation (the instant preset: "instant" after every tile), then one "finish"
    scale: int  # 1-based index of the current scale
    scales: int
    width: int  # size being optimised at this scale
    height: int
    step: int  # evaluations done at this scale
    steps: int  # evaluations planned at this scale
    done: float  # fraction of the whole run's work, 0..1
    elapsed: float  # seconds since the run started
    eta: float | None  # seconds left, None until it can be estimated
    losses: dict[str, float] = field(default_factory=dict)  # named loss terms of the last evaluation

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Progress:
        """The record a progress event carries; a field that is missing or of the wrong type (a worker of another
        version) reads as unknown: 0, an empty stage, no ETA. Fields it does not know (the request id) are left out."""

        def number(name: str, kind: type) -> Any:
            value = fields.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not -(2**63) < value < 2**63:
                return None
            return kind(value) if math.isfinite(value) else None

        stage = fields.get("stage")
        losses = fields.get("losses")
        return cls(
            stage=stage if isinstance(stage, str) else "",
            **{name: number(name, int) or 0 for name in ("scale", "scales", "width", "height", "step", "steps")},
            done=min(1.0, max(0.0, number("done", float) or 0.0)),
            elapsed=number("elapsed", float) or 0.0,
            eta=number("eta", float),
            losses={k: v for k, v in losses.items() if isinstance(v, float)} if isinstance(losses, dict) else {},
        )


ProgressCallback = Callable[[Progress], None]
CancelCheck = Union[threading.Event, Callable[[], bool], None]


def cancel_requested(cancel: CancelCheck) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
