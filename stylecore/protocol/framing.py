"""JSON lines with optional raw payloads: the one reader and writer of the worker protocol's stream.

Standard library only.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from .errors import BadRequest
from .option_table import has_kind

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
    `read` raises BadRequest for that line, and the next `read` goes on after it.

    Recovery (docs/worker-protocol.md): a payload refused for what it holds is skipped exactly (`skip_payload`), so
    the next line is the next message. A payload length that cannot be trusted is never read: the reader
    resynchronises (`resync`): it drops, without a word, every line up to the first that is a JSON object, or that
    ends with one (the next message glued to the tail of a payload shorter than declared)."""

    def __init__(self, source: int | IO[bytes], skip_junk: bool = False):
        self.source, self.skip_junk = source, skip_junk
        self.buffer = bytearray()
        self.eof = False
        self.lost = False  # resynchronising: lines that are no JSON object are dropped silently

    def read(self) -> Message | None:
        """The next message, or None at the end of the stream."""
        header = self.read_header()
        if header is None:
            return None
        obj, size = header
        return Message(obj, None if size is None else self.read_payload(size))

    def read_header(self) -> tuple[dict[str, Any], int | None] | None:
        """The next line's object and its payload's declared length (None: no payload), or None at the end of the stream.

        The payload is not read: the caller reads it (`read_payload`), skips it (`skip_payload`) or, if it cannot trust
        the length, `resync`s. A length that is no whole number of 0 to MAX_PAYLOAD raises BadRequest, and the reader
        resynchronises itself."""
        while True:
            try:
                line = self._line()
            except BadRequest:
                if self.skip_junk or self.lost:
                    continue
                raise
            if line is None:
                return None
            if not line.strip():
                continue
            try:
                obj = _recover(line) if self.lost or self.skip_junk else _decode(line)  # a banner glued to ready, say
            except BadRequest:
                if self.skip_junk or self.lost:
                    continue
                raise
            self.lost = False
            size = obj.get("bytes")
            if size is None:
                return obj, None
            if not has_kind(size, int) or size < 0:
                self.lost = True
                raise BadRequest(f"'bytes' {size!r} must be the payload's length, a whole number of 0 or more")
            if size > MAX_PAYLOAD:  # not read, nor skipped: a sender that lied about it would lose every later line
                self.lost = True
                raise BadRequest(f"a payload of {size} bytes is over the {MAX_PAYLOAD} byte limit; send less per message")
            return obj, size

    def read_payload(self, size: int) -> bytes:
        """The `size` bytes that follow the line just read, gathered in one buffer of that size, never more: the caller
        checked the size against its limits (a worker, against the images the line declares and the memory free)."""
        payload = bytearray(size)
        filled = 0
        while filled < size:
            if not self.buffer and not self._fill():
                raise BadRequest(f"the stream ended {size - filled} bytes short of a {size} byte payload")
            take = min(len(self.buffer), size - filled)
            payload[filled : filled + take] = self.buffer[:take]
            del self.buffer[:take]
            filled += take
        return bytes(payload)

    def skip_payload(self, size: int | None) -> None:
        """Reads and drops the `size` bytes that follow the line just read, a chunk at a time: nothing is held."""
        left = size or 0
        while left:
            if not self.buffer and not self._fill():
                return
            take = min(len(self.buffer), left)
            del self.buffer[:take]
            left -= take

    def resync(self) -> None:
        """The line just read declared a payload that cannot be trusted: read on from here as lines, dropping every line
        that is no JSON object until one is (see the class)."""
        self.lost = True

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


RECOVERY_TRIES = 64  # starts of a JSON object tried at the end of one junk line while resynchronising


def _recover(line: bytes) -> dict[str, Any]:
    """The JSON object a line is, or that it ends with (a message glued to the tail of a short payload); BadRequest if none.

    Tried from the line's last '{"' backwards: an inner object does not reach the end of the line, so the first that
    does is the outermost."""
    try:
        return _decode(line)
    except BadRequest:
        pass
    end = len(line)
    for _ in range(RECOVERY_TRIES):
        end = line.rfind(b'{"', 0, end)
        if end < 0:
            break
        try:
            return _decode(line[end:])
        except BadRequest:
            continue
    raise BadRequest("no JSON object in this line")


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
