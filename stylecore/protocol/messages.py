"""The worker protocol's messages (docs/worker-protocol.md): the version handshake, the events, and the requests.

Standard library only. `build_request` makes a stylize request and its payload; `parse_request` checks one as the
worker receives it, with the same rules, so a client finds what the worker would refuse before sending it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from .. import __version__
from . import pixels
from .errors import REPAIR, BadRequest
from .option_table import Value, check_options, has_kind
from .presets import INSTANT

PROTOCOL = 3
VERSION = __version__
THIS_COMPUTER = "this computer"  # where a local worker runs, in messages and in the dialog's "Run on"

# --- events the worker sends ------------------------------------------------------------------------

READY, PROGRESS, IMAGE = "ready", "progress", "image"
RESULT, ERROR, CANCELLED = "result", "error", "cancelled"
REJECTED = "rejected"  # a request refused because its id is in use: not the end of the request that holds that id
WARNING = "warning"  # something the run went on without (the instant picture asked for first): not an end either
TERMINAL_EVENTS = (RESULT, ERROR, CANCELLED)
EVENTS = (READY, PROGRESS, IMAGE, WARNING, *TERMINAL_EVENTS, REJECTED)


def ready_problem(event: Mapping[str, Any], where: str = THIS_COMPUTER, *, same_version: bool = True) -> str | None:
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
    upgrade = f"upgrade stylecore on {where}" if older else f"upgrade stylecore on {THIS_COMPUTER} ({REPAIR})"
    return f"the worker on {where} runs {theirs}, this one is {ours}; {upgrade} so both are the same version"


def _version_key(text: object) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in str(text).split("."))


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


FIRST_INSTANT = INSTANT  # the one value of a request's "first": the instant preset's picture


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
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not has_kind(spec.get("bytes"), int):
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
        if not has_kind(weight, float) or weight < 0:
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


def build_request(
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
