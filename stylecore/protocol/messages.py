"""The worker protocol's messages (docs/worker-protocol.md): the version handshake, the events, and the requests.

Standard library only. `build_request` makes a stylize request and its payload; `parse_request` checks one as the
worker receives it, with the same rules, so a client finds what the worker would refuse before sending it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

from .. import __version__
from . import pixels
from .errors import REPAIR, BadInput, BadRequest
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

    @classmethod
    def read(cls, path: str, role: str = "image") -> EncodedFile:
        """A regular file's bytes, at most what one request may carry; BadInput (one line) otherwise, before reading."""
        try:
            with open(path, "rb") as fh:
                info = os.fstat(fh.fileno())
                if not stat.S_ISREG(info.st_mode):  # a pipe would block the read, a device never end it
                    raise BadInput(f"{path}: the {role} is not a regular file (a pipe or a device); save it as a file first")
                if info.st_size > pixels.MAX_BYTES:
                    raise BadInput(f"{path}: the {role} has {info.st_size} bytes, over the {pixels.MAX_BYTES} a request carries")
                return cls(os.path.basename(path), fh.read(info.st_size))  # never more than was checked
        except OSError as exc:
            raise BadInput(f"{path}: cannot read the {role} ({exc.strerror or exc}); check the path") from None


@dataclass(frozen=True)
class EncodedPixels:
    """In-band pixels as they arrived: a checked descriptor and its payload, decoded only when the run needs them
    (after the request's options, paths and sizes have passed)."""

    descriptor: Mapping[str, Any]
    data: bytes

    @property
    def width(self) -> int:
        return int(self.descriptor["width"])

    @property
    def height(self) -> int:
        return int(self.descriptor["height"])

    def decode(self, *, limit: int = pixels.MAX_BYTES) -> pixels.Pixels:
        """The samples; raises pixels.PayloadError for a payload that is no such image."""
        return pixels.decode(dict(self.descriptor), self.data, limit=limit)


# a file path, or an image carried in the request's payload (Pixels to send, EncodedPixels as received)
Source = Union[str, pixels.Pixels, EncodedFile, EncodedPixels]
INLINE = "inline"  # "return": "inline": the result and intermediate images come back in the stream
RETURNS = ("file", INLINE)


@dataclass(frozen=True)
class Request:
    """A checked stylize request: paths are usable strings, in-band images checked (see parse_request), options checked."""

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

    def sources(self) -> list[tuple[str, Source]]:
        """(role, source) of the content and each style, in the order they come."""
        return [("content", self.content), *(("style", s) for s, _ in self.styles)]

    def paths(self) -> list[str]:
        """The sources that are files on the worker's disk (which the output must not overwrite)."""
        return [s for _, s in self.sources() if isinstance(s, str)]


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
    """The request's payload, handed out image by image in the order the descriptors come (content, then styles).

    `data` None: the payload is not read yet, only its declared `size` is known: everything is checked against it,
    and the images hold no bytes."""

    def __init__(self, data: bytes | None, size: int, limit: int):
        self.data, self.size, self.offset, self.limit = data, size, 0, limit

    def _part(self, size: int, role: str) -> bytes:
        if self.offset + size > self.size:
            raise BadRequest(f"{role}: the payload holds {self.size} bytes, too few for the images its descriptors declare")
        part = b"" if self.data is None else self.data[self.offset : self.offset + size]
        self.offset += size
        return part

    def take(self, descriptor: Any, role: str) -> EncodedPixels:
        try:
            size = pixels.check_descriptor(descriptor, limit=self.limit)
        except pixels.PayloadError as exc:
            raise BadRequest(f"{role}: {exc}") from None
        return EncodedPixels(descriptor, self._part(size, role))

    def take_file(self, spec: object, role: str) -> EncodedFile:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not has_kind(spec.get("bytes"), int):
            raise BadRequest(f'{role}: a carried file is {{"name": "painting.jpg", "bytes": N}}')
        size = spec["bytes"]
        if not 0 < size <= self.limit:
            raise BadRequest(f"{role}: {spec['name']} declares {size} bytes; send a file of 1..{self.limit} bytes")
        return EncodedFile(spec["name"], self._part(size, role))

    def carried(self, obj: Mapping, role: str) -> Source | None:
        """The image an item carries in the payload ({"pixels": descriptor} or {"file": ...}), or None for a path."""
        if "pixels" in obj:
            return self.take(obj["pixels"], role)
        if "file" in obj:
            return self.take_file(obj["file"], role)
        return None

    def finish(self) -> None:
        if self.offset != self.size:
            raise BadRequest(f"the payload holds {self.size - self.offset} bytes no pixel descriptor declares")


def _source(obj: Mapping, name: str, what: str, payload: _Payload) -> Source:
    """A path, or {"pixels": descriptor} or {"file": {"name", "bytes"}} for an image carried in the payload."""
    value = obj.get(name)
    carried = payload.carried(value, name) if isinstance(value, Mapping) else None
    if carried is not None:
        return carried
    return _path(obj, name, what + ', or {"pixels": descriptor} with the image in the payload')


def declared_payload(obj: Mapping) -> int | None:
    """The bytes a stylize request's carried images declare in all, or None where one of them declares no usable count.

    A line's "bytes" that differs cannot be trusted (the worker resynchronises instead of reading or skipping it)."""
    styles = obj.get("styles")
    total = 0
    for item in (obj.get("content"), *(styles if isinstance(styles, list) else ())):
        if not isinstance(item, Mapping) or not ("pixels" in item or "file" in item):
            continue
        spec = item["pixels"] if "pixels" in item else item["file"]
        count = spec.get("bytes") if isinstance(spec, Mapping) else None
        if type(count) is not int or count < 0:
            return None
        total += count
    return total


def parse_request(obj: object, payload: bytes | None = None, *, limit: int = pixels.MAX_BYTES, decode: bool = True) -> Request:
    """Checks a stylize request's shape, options and in-band images (each at most `limit` bytes decoded), then decodes
    those images into Pixels; decode=False leaves them EncodedPixels, for the run to decode when it needs them.

    Its files are not opened here: the run opens those, with BadInput."""
    req = _parse(obj, _Payload(payload, len(payload or b""), limit))
    if not decode:
        return req

    def decoded(source: Source, role: str) -> Source:
        if not isinstance(source, EncodedPixels):
            return source
        try:
            return source.decode(limit=limit)
        except pixels.PayloadError as exc:
            raise BadRequest(f"{role}: {exc}") from None

    styles = tuple((decoded(s, "style"), w) for s, w in req.styles)
    return replace(req, content=decoded(req.content, "content"), styles=styles)


def check_request(obj: object, size: int | None, *, limit: int = pixels.MAX_BYTES) -> Request:
    """What parse_request checks, before the payload is read: against its declared length (`size`; None: no payload).

    The request's in-band images hold no bytes; raises BadRequest as parse_request would."""
    return _parse(obj, _Payload(None, size or 0, limit))


def _parse(obj: object, carried: _Payload) -> Request:
    if not isinstance(obj, Mapping):
        raise BadRequest("not a JSON object; send one JSON object per line")
    rid = _field(obj, "id", str, "a non-empty string")
    if not rid:
        raise BadRequest("'id' must be a non-empty string")
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
    if inline and obj.get("output") is not None:
        raise BadRequest('\'output\' and "return": "inline" ask for the result in two places; send one of them')
    output = "" if inline else _path(obj, "output", "the result's file path (.npy, or an image extension)")
    options = check_options({} if obj.get("options") is None else obj["options"])
    every, folder = 0, ""
    if obj.get("images") is not None:
        spec = obj["images"]
        if not isinstance(spec, Mapping):
            raise BadRequest('\'images\' must be {"every": N, "dir": "/folder"} ({"every": N} with "return": "inline")')
        every = _field(spec, "every", int, "a whole number of evaluations, 1 or more")
        if inline and spec.get("dir") is not None:
            raise BadRequest(
                "'dir' in 'images' is a folder for image files, but with \"return\": \"inline\" they come in the stream; leave 'dir' out"
            )
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
        if isinstance(value, EncodedPixels):
            parts.append(value.data)
            return {"pixels": dict(value.descriptor)}
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
    check_request(obj, None if payload is None else len(payload))
    return obj, payload


def cancel_request(id: str) -> dict[str, Any]:
    return {"op": "cancel", "id": id}


def parse_cancel(obj: Mapping) -> str:
    """The id a cancel request names."""
    return str(_field(obj, "id", str, "the id of the request to cancel"))
