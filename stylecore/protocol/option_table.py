"""The run options, defined once: name, type, default, range, choices, help, and the plug-in's argument name.

Standard library only. The CLI's flags, `Stylizer.stylize`'s keywords, the worker's checks and the GIMP
dialog's arguments are all made from OPTIONS.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from stylecore.protocol.errors import BadRequest

from .presets import PRESETS

# --- devices and the other choices offered by every front end -------------------------------------------

DEVICES: tuple[tuple[str, str], ...] = (
    ("auto", "Automatic (GPU if available)"),
    ("cpu", "CPU"),
    ("cuda", "NVIDIA GPU (CUDA)"),
    ("mps", "Apple GPU (MPS)"),
)
PRECISIONS = ("auto", "fp32", "bf16")
POOLINGS = ("max", "avg")
MODELS = ("vgg16", "vgg19")
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]+)?"  # the offered devices, plus a numbered CUDA device
INT_MAX = 2**31 - 1  # GIMP's int arguments are 32-bit signed: no whole-number option goes above it


# --- the option table ------------------------------------------------------------------------------

Value = Union[bool, int, float, str, None]


@dataclass(frozen=True)
class Option:
    """One run or engine option, as the API keyword, the CLI flag, the worker's JSON key and the plug-in argument."""

    name: str  # the API keyword and the request's JSON key
    kind: type  # bool, int, float or str
    default: Any  # of type `kind`, or None where nullable
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None  # a str option's accepted values, when they are not a fixed list
    gimp: str | None = None  # the plug-in's argument name; None: the dialog does not offer it
    nullable: bool = False  # None (JSON null) means "the preset's" or "off"
    engine: bool = False  # picks (or loads) the engine rather than shaping one run

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: object) -> str | None:
        """Why `value` is not acceptable for this option (one line naming the fix), or None when it is."""
        if value is None:
            return None if self.nullable else f"{self.name} must not be null; {self._expected()}"
        if not has_kind(value, self.kind):
            return f"{self.name} {value!r} is not {_KIND_WORDS[self.kind]}; {self._expected()}"
        if self.minimum is not None and self.maximum is not None and not (self.minimum <= value <= self.maximum):  # type: ignore[operator]
            return f"{self.name} {value!r} is outside {_number(self.minimum)}..{_number(self.maximum)}; {self._expected()}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} '{value}' unknown; use one of {', '.join(self.choices)}"
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            return f"{self.name} '{value}' unknown; {self._expected()}"
        return None

    def _expected(self) -> str:
        if self.choices is not None:
            what = f"use one of {', '.join(self.choices)}"
        elif self.pattern is not None:
            what = f"use {self.help.split(';')[0]}"
        elif self.minimum is not None and self.maximum is not None:
            what = f"use {_KIND_WORDS[self.kind]} in {_number(self.minimum)}..{_number(self.maximum)}"
        else:
            what = f"use {_KIND_WORDS[self.kind]}"
        return what + (" or null" if self.nullable else "")


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def has_kind(value: object, kind: type) -> bool:
    """JSON's types, strictly: true is no number, 1 is no boolean, "false" is no boolean, 1.5 is no whole number."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        try:  # an integer too large for a float (1 and 400 zeros) is no number we can use, not an OverflowError
            return isinstance(value, numbers.Real) and math.isfinite(value)
        except OverflowError:
            return False
    return isinstance(value, kind)


def _number(value: float) -> str:
    """A range bound as people write it: 0, 0.1, 8192, 2147483647, 1e6."""
    if value != int(value):
        return f"{value:g}"
    digits = str(int(value))
    return f"1e{len(digits) - 1}" if len(digits) > 4 and digits.rstrip("0") == "1" else digits


OPTIONS: tuple[Option, ...] = (
    Option("strength", float, 70.0, "0..100, how strongly the style repaints", 0, 100, gimp="strength"),
    Option("preserve_colors", bool, False, "keep the content's colors; transfer only brushwork", gimp="preserve-colors"),
    Option(
        "style_scale", float, 1.0, "brush size relative to the output, 0.1..4 (1: the painting's own)", 0.1, 4, gimp="style-scale"
    ),
    Option(
        "preset",
        str,
        "balanced",
        "instant (one pass), draft (preview), balanced, best",
        choices=tuple(PRESETS),
        gimp="quality",
    ),
    Option(
        "working_size",
        int,
        None,
        "long side, in pixels, of the finest optimised scale (default: the preset's)",
        64,
        8192,
        gimp="working-size",
        nullable=True,
    ),
    Option("seed", int, 0, "same seed and inputs give the same output on the same machine", 0, INT_MAX, gimp="seed"),
    Option("seamless", bool, False, "make the output tile seamlessly (textures)", gimp="seamless"),
    Option("tv_weight", float, None, "total-variation smoothing, 0..1e6 (default off)", 0, 1e6, nullable=True),
    Option("pooling", str, "max", "the network's pooling: max or avg", choices=POOLINGS),
    Option(
        "device",
        str,
        "auto",
        "auto, cpu, cuda, cuda:N or mps; auto picks CUDA, then MPS, then CPU",
        pattern=DEVICE_PATTERN,
        gimp="device",
        engine=True,
    ),
    Option("precision", str, "auto", "auto, fp32 or bf16", choices=PRECISIONS, engine=True),
)
# The choices a front end shows with a label, as (value, label).
LABELLED_CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "preset": tuple((p.name, p.label) for p in PRESETS.values()),
    "device": DEVICES,
}
RUN_OPTIONS = tuple(o for o in OPTIONS if not o.engine)
ENGINE_OPTIONS = tuple(o for o in OPTIONS if o.engine)
_BY_NAME = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    return _BY_NAME[name]


def defaults(options: Iterable[Option] = OPTIONS) -> dict[str, Value]:
    return {o.name: o.default for o in options}


def check_options(obj: object) -> dict[str, Value]:
    """The request's options, checked for their JSON types and ranges; raises BadRequest naming the first bad one."""
    if not isinstance(obj, Mapping):
        raise BadRequest("'options' must be an object")
    unknown = sorted(str(k) for k in obj if k not in _BY_NAME)
    if unknown:
        raise BadRequest(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    checked: dict[str, Value] = {}
    for name, value in obj.items():
        why = _BY_NAME[name].problem(value)
        if why:
            raise BadRequest(why)
        checked[name] = float(value) if _BY_NAME[name].kind is float and value is not None else value
    return checked
