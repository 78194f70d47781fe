"""What the plug-in, the worker, the installer and the CLI agree on, defined once (docs/worker-protocol.md).

Standard library only: GIMP's own Python (no numpy, no torch) imports this module beside the plug-in.
It holds the run options (name, type, default, range, choices), the presets and devices offered, the
request builder and parser, the one JSON-lines reader and writer, the event names and the exit codes.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Union

from . import __version__, pixels

PROTOCOL = 3
VERSION = __version__

# --- exit codes: the CLI's status, the worker's `code` field and the README share them ---------------

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_WEIGHTS_UNAVAILABLE = 3
EXIT_CANCELLED = 4
EXIT_OUT_OF_MEMORY = 5
EXIT_REMOTE = 6  # the remote worker could not be reached, or the link to it dropped
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "ok"),
    (EXIT_BAD_INPUT, "bad input (one line naming the file and the fix)"),
    (EXIT_WEIGHTS_UNAVAILABLE, "weights unavailable"),
    (EXIT_CANCELLED, "cancelled"),
    (EXIT_OUT_OF_MEMORY, "out of memory"),
    (EXIT_REMOTE, "remote worker unreachable or connection dropped"),
    (EXIT_INTERNAL, "internal error"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

# --- events the worker sends ------------------------------------------------------------------------

READY, PROGRESS, IMAGE = "ready", "progress", "image"
RESULT, ERROR, CANCELLED = "result", "error", "cancelled"
REJECTED = "rejected"  # a request refused because its id is in use: not the end of the request that holds that id
WARNING = "warning"  # something the run went on without (the instant picture asked for first): not an end either
TERMINAL_EVENTS = (RESULT, ERROR, CANCELLED)
EVENTS = (READY, PROGRESS, IMAGE, WARNING, *TERMINAL_EVENTS, REJECTED)


def ready_problem(event: Mapping[str, Any], where: str = "this computer", *, same_version: bool = True) -> str | None:
    """Why a worker's ready event does not match this stylecore (one line saying which side to upgrade), or None.

    same_version: the versions must match too (a far end, which must paint what this one would)."""
    protocol, version = event.get("protocol"), event.get("version")
    if protocol == PROTOCOL and (version == VERSION or not same_version):
        return None
    theirs = f"stylecore {version} (protocol {protocol})"
    ours = f"stylecore {VERSION} (protocol {PROTOCOL})"
    if protocol == PROTOCOL:
        older = _version_key(version) < _version_key(VERSION)
    else:
        older = not isinstance(protocol, int) or protocol < PROTOCOL
    upgrade = f"upgrade stylecore on {where}" if older else "upgrade stylecore on this computer (python3 install.py)"
    return f"the worker on {where} runs {theirs}, this one is {ours}; {upgrade} so both are the same version"


def _version_key(text: object) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in str(text).split("."))


class BadRequest(ValueError):
    """A request or option the protocol refuses; the message is one line naming the field and the fix."""

    exit_code = EXIT_BAD_INPUT


# --- presets and devices offered by every front end ---------------------------------------------------

PRESETS: tuple[tuple[str, str], ...] = (
    ("instant", "Instant (one pass, about a second)"),
    ("draft", "Draft (quick preview)"),
    ("balanced", "Balanced"),
    ("best", "Best (slow)"),
)
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
SEED_MAX = 2**31 - 1  # GIMP's int arguments are 32-bit signed


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
        if not _has_kind(value, self.kind):
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


def _has_kind(value: object, kind: type) -> bool:
    """JSON's types, strictly: true is no number, 1 is no boolean, "false" is no boolean, 1.5 is no whole number."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real) and math.isfinite(value)
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
        choices=tuple(name for name, _ in PRESETS),
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
    Option("seed", int, 0, "same seed and inputs give the same output on the same machine", 0, SEED_MAX, gimp="seed"),
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


# --- requests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedFile:
    """An image file's bytes carried in the payload (a painting on the client's disk, for a worker on another machine)."""

    name: str  # for messages, and the format hint of its extension
    data: bytes


Source = Union[str, pixels.Pixels, EncodedFile]  # a file path, or an image carried in the request's payload
INLINE = "inline"  # "return": "inline": the result and intermediate images come back in the stream
RETURNS = ("file", INLINE)


@dataclass(frozen=True)
class Request:
    """A checked stylize request: paths are usable strings, in-band pixels decoded, options checked (see check_options)."""

    id: str
    content: Source
    styles: tuple[tuple[Source, float], ...]
    output: str  # "" when the result is returned inline
    options: Mapping[str, Value] = field(default_factory=dict)
    images_every: int = 0  # 0: no intermediate images
    images_dir: str = ""  # "" when they are returned inline
    codec: str = pixels.CODEC  # of the pixels the worker returns inline
    first: str = ""  # FIRST_INSTANT: an instant picture as the first image, before the optimisation starts

    @property
    def inline(self) -> bool:
        return not self.output


FIRST_INSTANT = "instant"  # the one value of a request's "first"


def _field(obj: Mapping, name: str, kind: type, what: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):  # JSON true is no count
        raise BadRequest(f"'{name}' must be {what}")
    return value


def path_problem(path: str) -> str | None:
    """Why no file system can take `path` (empty, a NUL character, a lone surrogate), or None."""
    if not path:
        return "is empty"
    if "\x00" in path:
        return f"holds a NUL character ({path!a})"
    try:
        os.fsencode(path)
    except UnicodeError:
        return f"holds characters no file name can hold ({path!a})"
    return None


def _path(obj: Mapping, name: str, what: str) -> str:
    """A path field the file system can take."""
    value = _field(obj, name, str, what)
    why = path_problem(value)
    if why:
        raise BadRequest(f"'{name}' {why}; it must be {what}, sent as UTF-8")
    return value


class _Payload:
    """The request's payload, handed out image by image in the order the descriptors come (content, then styles)."""

    def __init__(self, payload: bytes | None, limit: int, decode: bool):
        self.data, self.offset, self.limit, self.decode = payload or b"", 0, limit, decode

    def take(self, descriptor: object, role: str) -> pixels.Pixels:
        try:
            size = pixels.check_descriptor(descriptor, limit=self.limit)
            if self.offset + size > len(self.data):
                raise pixels.PayloadError(
                    f"the payload holds {len(self.data)} bytes, too few for the images its descriptors declare"
                )
            part = self.data[self.offset : self.offset + size]
            self.offset += size
            if not self.decode:  # the sender's own check: its bytes were just encoded
                d: dict[str, Any] = descriptor  # type: ignore[assignment]
                return pixels.Pixels(d["width"], d["height"], d["channels"], d["sample"], b"")
            return pixels.decode(descriptor, part, limit=self.limit)  # type: ignore[arg-type]
        except pixels.PayloadError as exc:
            raise BadRequest(f"{role}: {exc}") from None

    def take_file(self, spec: object, role: str) -> EncodedFile:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not _has_kind(spec.get("bytes"), int):
            raise BadRequest(f'{role}: a carried file is {{"name": "painting.jpg", "bytes": N}}')
        size = spec["bytes"]
        if not 0 < size <= self.limit:
            raise BadRequest(f"{role}: {spec['name']} declares {size} bytes; send a file of 1..{self.limit} bytes")
        if self.offset + size > len(self.data):
            raise BadRequest(f"{role}: the payload holds {len(self.data)} bytes, too few for the images its descriptors declare")
        part = self.data[self.offset : self.offset + size]
        self.offset += size
        return EncodedFile(spec["name"], part)

    def carried(self, obj: Mapping, role: str) -> Source | None:
        """The image an item carries in the payload ({"pixels": descriptor} or {"file": ...}), or None for a path."""
        if "pixels" in obj:
            return self.take(obj["pixels"], role)
        if "file" in obj:
            return self.take_file(obj["file"], role)
        return None

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise BadRequest(f"the payload holds {len(self.data) - self.offset} bytes no pixel descriptor declares")


def _source(obj: Mapping, name: str, what: str, payload: _Payload) -> Source:
    """A path, or {"pixels": descriptor} or {"file": {"name", "bytes"}} for an image carried in the payload."""
    value = obj.get(name)
    carried = payload.carried(value, name) if isinstance(value, Mapping) else None
    if carried is not None:
        return carried
    return _path(obj, name, what + ', or {"pixels": descriptor} with the image in the payload')


def parse_request(obj: object, payload: bytes | None = None, *, limit: int = pixels.MAX_BYTES, decode: bool = True) -> Request:
    """Checks a stylize request's shape and options, and decodes its in-band pixels (each at most `limit` bytes).

    Its files are not opened here: the run opens those, with BadInput. decode=False checks the descriptors only."""
    if not isinstance(obj, Mapping):
        raise BadRequest("not a JSON object; send one JSON object per line")
    rid = _field(obj, "id", str, "a non-empty string")
    if not rid:
        raise BadRequest("'id' must be a non-empty string")
    carried = _Payload(payload, limit, decode)
    content = _source(obj, "content", "the content's file path (image or float32 .npy)", carried)
    raw_styles = _field(obj, "styles", list, 'a list of {"path": ..., "weight": ...}')
    if not raw_styles:
        raise BadRequest("'styles' must not be empty; send at least one style")
    styles = []
    for item in raw_styles:
        if not isinstance(item, Mapping):
            raise BadRequest('each style must be {"path": "...", "weight": 1.0}')
        weight = item.get("weight", 1.0)
        if not _has_kind(weight, float) or weight < 0:
            raise BadRequest(f"style weight {weight!r} is not a non-negative number")
        source = carried.carried(item, "style")
        styles.append((_path(item, "path", "the style's file path") if source is None else source, float(weight)))
    carried.finish()
    returned = obj.get("return", "file")
    if returned not in RETURNS:
        raise BadRequest(f"'return' {returned!r} unknown; use 'file' (the result at 'output') or 'inline' (in the stream)")
    codec = obj.get("codec", pixels.CODEC)
    if codec not in pixels.CODECS:
        raise BadRequest(f"'codec' {codec!r} unknown; use one of {', '.join(pixels.CODECS)}")
    inline = returned == INLINE
    output = "" if inline else _path(obj, "output", "the result's file path (.npy, or an image extension)")
    options = check_options({} if obj.get("options") is None else obj["options"])
    every, folder = 0, ""
    if obj.get("images") is not None:
        spec = obj["images"]
        if not isinstance(spec, Mapping):
            raise BadRequest('\'images\' must be {"every": N, "dir": "/folder"} ({"every": N} with "return": "inline")')
        every = _field(spec, "every", int, "a whole number of evaluations, 1 or more")
        folder = "" if inline else _path(spec, "dir", "an existing folder for the intermediate images")
        if every < 1:
            raise BadRequest("'images.every' must be 1 or more")
    first = obj.get("first") or ""
    if first not in ("", FIRST_INSTANT):
        raise BadRequest(f"'first' {first!r} unknown; use \"{FIRST_INSTANT}\" or leave it out")
    if first and not every:
        raise BadRequest("'first' needs 'images' (where its picture goes); add \"images\": {\"every\": N, ...}")
    return Request(rid, content, tuple(styles), output, options, every, folder, codec, first)


def stylize_request(
    id: str,
    content: str,
    styles: Sequence[tuple[str, float]],
    options: Mapping[str, Value],
    output: str,
    images: Mapping[str, Any] | None = None,
    first: str = "",
) -> dict[str, Any]:
    """The JSON object of a stylize request whose images are files; raises BadRequest when the worker would refuse it."""
    return stylize_message(id, content, styles, options, output, images, first=first)[0]


def stylize_message(
    id: str,
    content: Source,
    styles: Sequence[tuple[Source, float]],
    options: Mapping[str, Value],
    output: str | None,
    images: Mapping[str, Any] | None = None,
    *,
    codec: str = pixels.CODEC,
    first: str = "",
) -> tuple[dict[str, Any], bytes | None]:
    """The JSON object of a stylize request and its payload (None when every image is a path).

    Pixels sources are encoded with `codec` into the payload; output None asks for the result inline.
    Raises BadRequest when the worker would refuse it."""
    parts: list[bytes] = []

    def source(value: Source) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, EncodedFile):
            parts.append(value.data)
            return {"file": {"name": value.name, "bytes": len(value.data)}}
        try:
            descriptor, data = pixels.encode(value, codec=codec)
        except pixels.PayloadError as exc:
            raise BadRequest(str(exc)) from None
        parts.append(data)
        return {"pixels": descriptor}

    obj: dict[str, Any] = {"op": "stylize", "id": id, "content": source(content), "styles": [], "options": dict(options)}
    for value, weight in styles:
        item = source(value)
        obj["styles"].append({"path": item, "weight": weight} if isinstance(item, str) else {**item, "weight": weight})
    if output is None:
        obj["return"], obj["codec"] = INLINE, codec
    else:
        obj["output"] = output
    if images is not None:
        obj["images"] = dict(images)
    if first:
        obj["first"] = first
    payload = b"".join(parts) if parts else None
    parse_request(obj, payload, decode=False)
    return obj, payload


def cancel_request(id: str) -> dict[str, Any]:
    return {"op": "cancel", "id": id}


def parse_cancel(obj: Mapping) -> str:
    """The id a cancel request names."""
    return str(_field(obj, "id", str, "the id of the request to cancel"))


# --- JSON lines, with optional raw payloads -----------------------------------------------------------

MAX_LINE = 1 << 20  # bytes in one message line; a longer one is refused, not buffered without end
MAX_PAYLOAD = 1 << 33  # bytes in one payload (a 400 MP float32 RGBA layer is 6.4 GB); a larger one is refused
CHUNK = 1 << 16


@dataclass(frozen=True)
class Message:
    obj: dict[str, Any]
    payload: bytes | None = None  # the N raw bytes that follow a line whose object has "bytes": N


class MessageReader:
    """Reads messages from a binary stream or a file descriptor: one JSON object per line, UTF-8.

    A line whose object has `"bytes": N` is followed by exactly N raw bytes, its payload. A descriptor is read
    with os.read (a thread blocked in a buffered read would hold its lock at interpreter exit). With
    `skip_junk`, a line that is not a JSON object is skipped (a client reading a child that printed); without it,
    `read` raises BadRequest for that line, and the next `read` goes on after it."""

    def __init__(self, source: int | IO[bytes], skip_junk: bool = False):
        self.source, self.skip_junk = source, skip_junk
        self.buffer = bytearray()
        self.eof = False

    def read(self) -> Message | None:
        """The next message, or None at the end of the stream."""
        while True:
            line = self._line()
            if line is None:
                return None
            if not line.strip():
                continue
            try:
                obj = _decode(line)
            except BadRequest:
                if self.skip_junk:
                    continue
                raise
            size = obj.get("bytes")
            if size is None:
                return Message(obj)
            if not _has_kind(size, int) or size < 0:
                raise BadRequest(f"'bytes' {size!r} must be the payload's length, a whole number of 0 or more")
            if size > MAX_PAYLOAD:  # not skipped either: a sender that lied about it would lose every later line
                raise BadRequest(f"a payload of {size} bytes is over the {MAX_PAYLOAD} byte limit; send less per message")
            return Message(obj, self._exactly(size))

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            if isinstance(self.source, int):
                chunk = os.read(self.source, CHUNK)
            else:
                read = getattr(self.source, "read1", self.source.read)
                chunk = read(CHUNK)
        except (OSError, ValueError):  # closed under us: the same as the end of the stream
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _line(self) -> bytes | None:
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                if len(line) > MAX_LINE:
                    raise BadRequest(f"a line of {len(line)} bytes is over the {MAX_LINE} byte limit; send less per line")
                return line
            if len(self.buffer) > MAX_LINE:  # drop what we have and the rest of that line, then refuse it
                self.buffer.clear()
                while self._fill() and (end := self.buffer.find(b"\n")) < 0:
                    self.buffer.clear()
                if end >= 0:
                    del self.buffer[: end + 1]
                raise BadRequest(f"a line over the {MAX_LINE} byte limit; send less per line")
            start = len(self.buffer)
            if not self._fill():
                if self.buffer:  # a last line without its newline
                    line = bytes(self.buffer)
                    self.buffer.clear()
                    return line
                return None

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                got = len(self.buffer)
                self.buffer.clear()
                raise BadRequest(f"the stream ended {size - got} bytes short of a {size} byte payload")
        payload = bytes(self.buffer[:size])
        del self.buffer[:size]
        return payload


def _decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the parser goes
        raise BadRequest(f"not a JSON object ({type(exc).__name__}: {exc}); send one JSON object per line") from exc
    if not isinstance(obj, dict):
        raise BadRequest("not a JSON object; send one JSON object per line")
    return obj


def encode_message(obj: Mapping[str, Any], payload: bytes | None = None) -> bytes:
    """One line of JSON (ASCII, so any path survives), followed by the payload if there is one."""
    if payload is not None:
        obj = {**obj, "bytes": len(payload)}
    try:
        line = json.dumps(obj, allow_nan=False, default=_plain)
    except ValueError:  # a NaN or infinity (a diverged loss): JSON has none, null says "no number"
        line = json.dumps(_finite(obj), allow_nan=False, default=_plain)
    return line.encode("ascii") + b"\n" + (payload or b"")


def write_message(stream: IO[bytes] | IO[str], obj: Mapping[str, Any], payload: bytes | None = None) -> None:
    """Writes one message in one write and flushes; the caller holds its lock when threads share the stream.

    Raises OSError (BrokenPipeError) when the reader has gone: the caller decides what that means."""
    data = encode_message(obj, payload)
    if isinstance(stream, io.TextIOWrapper):  # a text stream: its bytes underneath, after what it holds
        stream.flush()
        target: Any = stream.buffer
    else:
        target = stream
    view = memoryview(data)
    while view:
        written = target.write(view)
        view = view[len(view) if written is None else written :]
    target.flush()


def claim_stdout() -> IO[bytes]:
    """The real stdout, for messages only; fd 1 and sys.stdout then point at stderr, so a stray print lands in the log.

    Unbuffered: each message is one write, and nothing is left to flush (and fail) at exit if the reader has gone."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _plain(value: Any) -> Any:
    """numpy scalars and the like: their Python value."""
    if hasattr(value, "item"):
        return value.item()
    return float(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):
        return _finite(value.item())
    return value
