"""`stylecore worker`: one long-lived engine process that speaks JSON lines (see docs/worker-protocol.md).

Why a worker: importing torch, reading and hashing the weights and building the network cost seconds.
A dialog's live preview and the final run that follows it share one loaded `Stylizer`, so a slider
move pays only for the optimisation. Requests are read by a thread, so a `cancel` acts while a run
is going; runs happen one at a time on the main thread, in the order they arrived.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from stylecore.atomic import write_atomic
from stylecore.images import arrays
from stylecore.models import instant_weights
from stylecore.protocol import framing, messages, option_table, pixels
from stylecore.protocol.errors import (
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    BadInput,
    BadRequest,
    Cancelled,
    OutOfMemory,
    StylecoreError,
    WeightsUnavailable,
)
from stylecore.protocol.framing import MessageReader
from stylecore.protocol.messages import Request
from stylecore.protocol.progress import Progress

if TYPE_CHECKING:  # torch loads once the protocol stream is set up (images.reading and the engine import it)
    from stylecore.engine.stylizer import Stylizer
    from stylecore.images.reading import Picture
    from stylecore.images.result import StyledImage

IMAGES_KEPT = 2  # intermediate files of one request kept on disk: the newest one and the one before
EngineFactory = Callable[[str, str], "Stylizer"]  # (device, precision) -> a loaded Stylizer


def save_npy(path: Path, array: np.ndarray) -> None:
    """Atomically (temp file, then rename): a reader never sees half an array."""
    try:
        write_atomic(path, lambda fh: np.save(fh, np.ascontiguousarray(array, dtype=np.float32)))
    except OSError as exc:
        raise BadInput(f"{path}: cannot write ({exc.strerror or exc}); check the folder's permissions and free space") from exc


class Emitter:
    """Writes one message per event; threads share it, so each is written whole under a lock."""

    def __init__(self, stream: IO[bytes]):
        self.stream, self.lock = stream, threading.Lock()

    def __call__(self, **event: Any) -> None:
        self.message(event)

    def message(self, event: dict[str, Any], payload: bytes | None = None) -> None:
        """An event followed by its payload (in-band pixels)."""
        with self.lock:
            try:
                framing.write_message(self.stream, event, payload)
            except (OSError, ValueError):  # the client has gone (a closed pipe): stdin EOF or SIGTERM ends the worker
                pass


def inline_pixels(array: np.ndarray, codec: str) -> tuple[dict[str, Any], bytes]:
    """The descriptor and payload of a float32 H×W×C array, at full precision."""
    return pixels.encode(arrays.from_array(np.ascontiguousarray(array, dtype=np.float32)), codec=codec)


def error_event(
    exc: BaseException, rid: str | None, *, event: str = messages.ERROR, what: str = "internal error"
) -> dict[str, Any]:
    """The event that reports `exc` (the request's end, or `event`): one of ours with its kind and code, anything else as
    an InternalError whose traceback is in the log (the caller prints it), `what` naming what failed. One line."""
    if isinstance(exc, StylecoreError):
        kind = next(c.__name__ for c in type(exc).__mro__ if not c.__name__.startswith("_"))  # _Duplicate: BadRequest
        code, message = exc.exit_code, str(exc)
    else:
        kind, code = "InternalError", EXIT_INTERNAL
        message = f"{what}: {type(exc).__name__}: {exc}; the traceback is in the worker log"
    return dict(id=rid, event=event, kind=kind, code=code, message=_one_line(message))


def check_before_decoding(req: Request, *, payload_read: bool) -> None:
    """What a run refuses before it decodes anything, from names and headers only: the output and the images folder,
    every source file (missing, unreadable, no image, too many pixels) and every in-band image's size.

    The reader thread checks a request before reading its payload (payload_read=False: no carried file's header is
    there yet), the run again before decoding (files come and go)."""
    from stylecore.images import reading
    from stylecore.images.result import check_output_path

    if not req.inline:
        check_output_path(req.output, req.paths())
    if req.images_every and not req.inline and not os.path.isdir(req.images_dir):
        raise BadInput(f"{req.images_dir}: the folder for intermediate images does not exist; create it first")
    for role, source in req.sources():
        if isinstance(source, str):
            reading.check(source, f"{role} image")
        elif isinstance(source, messages.EncodedFile) and payload_read:
            reading.check_bytes(source.data, source.name, f"{role} image")
        elif isinstance(source, (messages.EncodedPixels, pixels.Pixels)):
            reading.check_size(source.width, source.height, f"in-band {role}", f"{role} image")


def source_of(source: messages.Source, role: str = "image", limit: int = pixels.MAX_BYTES) -> str | np.ndarray | Picture:
    """What the engine takes: a path as it is, in-band pixels as float32 (integer samples scaled to 0..1), a carried
    file as the picture read from its bytes, the way a file on disk is read."""
    from stylecore.images import reading

    if isinstance(source, str):
        return source
    if isinstance(source, messages.EncodedFile):
        return reading.load_bytes(source.data, source.name, f"{role} image")
    try:
        return arrays.to_float32(source.decode(limit=limit) if isinstance(source, messages.EncodedPixels) else source)
    except pixels.PayloadError as exc:
        raise BadInput(f"{role}: {exc}") from None
    except MemoryError:
        raise OutOfMemory(
            f"{role}: decoding {source.width}x{source.height} in-band pixels needs more memory than is free; send a smaller image"
        ) from None


class _ImageWriter:
    """Sends the optimisation's current state every `every` evaluations (the first one too): inline, or as files of
    which the last two are kept."""

    def __init__(self, req: Request, emit: Emitter):
        self.req, self.emit = req, emit
        self.count = 0  # the optimisation's evaluations seen
        self.files = 0  # images written
        self.written: collections.deque[Path] = collections.deque()
        self.progress: Progress | None = None

    def __call__(self, rgb: np.ndarray) -> None:
        self.count += 1
        if (self.count - 1) % self.req.images_every:
            return
        p = self.progress
        self.write(rgb, p.stage if p else "optimize", p.scale if p else 1, p.step if p else self.count)

    def first(self, rgb: np.ndarray) -> None:
        """The instant picture asked for with `"first": "instant"`, before the optimisation's first evaluation."""
        self.write(rgb, "instant", 1, 0)

    def write(self, rgb: np.ndarray, stage: str, scale: int, step: int) -> None:
        where = dict(width=int(rgb.shape[1]), height=int(rgb.shape[0]), stage=stage, scale=scale, step=step)
        if self.req.inline:
            descriptor, payload = inline_pixels(rgb, self.req.codec)
            self.emit.message(dict(id=self.req.id, event=messages.IMAGE, pixels=descriptor, **where), payload)
            return
        self.files += 1
        path = Path(self.req.images_dir) / f"{_safe_name(self.req.id)}-image-{self.files:05d}.npy"
        save_npy(path, rgb)
        self.written.append(path)
        while len(self.written) > IMAGES_KEPT:
            _remove(self.written.popleft())
        self.emit(id=self.req.id, event=messages.IMAGE, path=str(path), **where)

    def clean(self) -> None:
        while self.written:
            _remove(self.written.popleft())


def _safe_name(rid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rid)[:64] or "request"


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # e.g. still open in a Windows client: the client's folder goes away with it
        pass


class _Duplicate(BadRequest):
    """A request whose id is queued or running: answered with `rejected`, which does not end that id."""


class Server:
    """The request queue, the cancel bookkeeping and the run loop; the reader thread runs `read_requests`."""

    def __init__(self, engine_factory: EngineFactory, emit: Emitter, device: str, precision: str, limit: int = pixels.MAX_BYTES):
        self.factory, self.emit = engine_factory, emit
        self.limit = limit  # bytes of one in-band image, decoded
        self.default_engine = (device, precision)
        self.engines: dict[tuple[str, str], Stylizer] = {}
        self.weights_loads = 0
        self.cond = threading.Condition()
        self.queue: collections.deque[Request] = collections.deque()
        self.running: Request | None = None
        self.running_cancel = threading.Event()
        self.closed = False
        self.terminated = False  # by SIGTERM
        self.reader_failed = False  # the reader thread died: the worker ends

    def engine(self, device: str, precision: str) -> Stylizer:
        """Engines are keyed by the device and precision asked for; the worker's own is loaded before `ready`."""
        key = (device, precision)
        if key not in self.engines:
            self.engines[key] = self.factory(device, precision)
            self.weights_loads += 1
        return self.engines[key]

    # -- reader thread -------------------------------------------------------------------------
    def read_requests(self, reader: MessageReader) -> None:
        """The reader thread: every message until stdin closes, then `close`. If it dies of anything else, it says so in
        one line (event and log) and the worker ends: nobody would read the requests that follow."""
        try:
            while True:
                try:
                    header = reader.read_header()
                except BadRequest as exc:  # a line that is no message, or an untrusted length: no id can be read
                    self.emit(**error_event(exc, None))
                    continue
                if header is None:
                    break
                self.receive(reader, *header)
        except BaseException as exc:  # whatever it was, the worker must not go on deaf
            self.reader_failed = True
            _log(f"the request reader stopped ({type(exc).__name__}: {_one_line(str(exc))}); the worker exits")
            self.emit(**error_event(exc, None, what="the worker's request reader stopped, so the worker exits"))
        finally:
            self.close()

    def receive(self, reader: MessageReader, obj: dict[str, Any], size: int | None) -> None:
        """One line and its payload: a request is checked in full before its payload is read (`admit`).

        A payload is trusted when the request's images declare exactly its length: refused, it is then skipped to the
        byte. Any other payload (a length the images do not declare, on a cancel or an unknown op too) is never read:
        the reader resynchronises at the next line that is a JSON object (docs/worker-protocol.md)."""
        rid = obj.get("id") if isinstance(obj.get("id"), str) else None
        op = obj.get("op")
        declared = messages.declared_payload(obj) if op == "stylize" else 0
        trusted = declared is not None and (size or 0) == declared
        try:
            if op == "cancel":
                self.cancel(messages.parse_cancel(obj))
            elif self.in_use(rid):
                raise _Duplicate(f"request id '{rid}' is already queued or running; use a new id per request")
            elif op != "stylize":
                raise BadRequest(f"unknown op {op!r}; use 'stylize' or 'cancel'")
            elif not trusted:
                raise BadRequest(
                    f"'bytes' {size} is not what the request's images declare ({declared}); "
                    "its payload is not read, and the next line that is a JSON object is the next request"
                )
            else:
                self.admit(obj, size)
                payload = None if size is None else reader.read_payload(size)
                self.enqueue(messages.parse_request(obj, payload, limit=self.limit, decode=False))
                return
        except _Duplicate as exc:  # not that id's end: its own terminal event is still to come
            self.emit(**error_event(exc, rid, event=messages.REJECTED), duplicate=True)
        except BadInput as exc:  # the refused request's end (BadRequest, or a file or size refused from its header)
            self.emit(**error_event(exc, rid))
        if trusted:
            reader.skip_payload(size)
        else:
            reader.resync()

    def admit(self, obj: dict[str, Any], size: int | None) -> None:
        """Everything about a request that can be checked before its payload is read: its shape, options, paths and
        descriptors, the pixels they declare, and whether this machine can hold the payload at all."""
        from stylecore.images import reading

        check_before_decoding(messages.check_request(obj, size, limit=self.limit), payload_read=False)
        free = reading.available_memory()
        if size and size > free // 2:
            raise BadInput(
                f"the request's payload of {size} bytes is more than half the memory free here ({free / 2**30:.1f} GiB); "
                "send smaller images"
            )

    def in_use(self, rid: str | None) -> bool:
        with self.cond:
            return rid is not None and (
                (self.running is not None and self.running.id == rid) or any(q.id == rid for q in self.queue)
            )

    def enqueue(self, req: Request) -> None:
        with self.cond:  # only this thread adds requests, so the id checked in `receive` is still free
            self.queue.append(req)
            self.cond.notify()

    def cancel(self, rid: str) -> None:
        """The running request stops at its next evaluation; a queued one is dropped now. Unknown ids: it just ended."""
        with self.cond:
            if self.running is not None and self.running.id == rid:
                self.running_cancel.set()
                return
            queued = [q for q in self.queue if q.id == rid]
            for q in queued:
                self.queue.remove(q)
        if queued:
            self.emit(id=rid, event=messages.CANCELLED)

    def close(self) -> None:
        """stdin closed: nobody will read results, so the running request stops and the queue is dropped."""
        with self.cond:
            self.closed = True
            self.queue.clear()
            self.running_cancel.set()
            self.cond.notify()

    # -- main thread ---------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                self.running = self.queue.popleft()
                self.running_cancel = threading.Event()
            try:
                self.run(self.running, self.running_cancel)
            finally:
                with self.cond:
                    self.running = None

    def run(self, req: Request, cancel: threading.Event) -> None:
        """Runs one request and emits exactly one terminal event for it: result, error or cancelled."""
        started = time.perf_counter()
        _log(f"{req.id}: started")
        writer = _ImageWriter(req, self.emit) if req.images_every else None
        payload: bytes | None = None
        try:
            result = self._stylize(req, cancel, writer)
            where: dict[str, Any] = dict(path=req.output)
            if req.inline:
                descriptor, payload = inline_pixels(result.rgba(), req.codec)
                where = dict(pixels=descriptor, alpha=result.alpha is not None, bits=result.source_bits)
            outcome = dict(
                id=req.id,
                event=messages.RESULT,
                **where,
                width=result.width,
                height=result.height,
                seconds=round(time.perf_counter() - started, 3),
                weights_loads=self.weights_loads,
            )
        except Cancelled:
            outcome = dict(id=req.id, event=messages.CANCELLED)
        except Exception as exc:  # ours: one line; a bug: one line on stdout, the traceback in the log
            if not isinstance(exc, StylecoreError):
                traceback.print_exc(file=sys.stderr)
            outcome = error_event(exc, req.id)
        if writer:  # before the terminal event: a client that sees it may remove the folder
            writer.clean()
        detail = outcome.get("message") or (f"{outcome['width']}x{outcome['height']}" if "width" in outcome else "")
        _log(f"{req.id}: {outcome['event']} after {time.perf_counter() - started:.2f} s {detail}".rstrip())
        self.emit.message(outcome, payload)

    def _stylize(self, req: Request, cancel: threading.Event, writer: _ImageWriter | None) -> StyledImage:
        """Checks everything that costs nothing first (output, folders, the engine, every source's header), then
        decodes the sources and runs."""
        check_before_decoding(req, payload_read=True)
        opts: dict[str, Any] = dict(req.options)  # run options, checked: stylize's keywords
        engine = self.engine(str(opts.pop("device", self.default_engine[0])), str(opts.pop("precision", self.default_engine[1])))

        def progress(p: Progress) -> None:
            if writer:
                writer.progress = p
            self.emit(id=req.id, event=messages.PROGRESS, **p.to_dict())

        content = source_of(req.content, "content", self.limit)
        styles = [(source_of(s, "style", self.limit), w) for s, w in req.styles]
        if writer and req.first == messages.FIRST_INSTANT and opts.get("preset") != messages.FIRST_INSTANT:
            self._instant_first(engine, req.id, content, styles, opts, cancel, writer)
        result = engine.stylize(content, styles, progress=progress, cancel=cancel, on_image=writer, **opts)
        if cancel.is_set():  # a cancel that arrived after the last evaluation still wins: the client asked for no result
            raise Cancelled()
        if not req.inline:
            result.save(req.output, protect=req.paths())  # .npy: float32 HxWx4 at full precision, alpha from the content
        return result

    def _instant_first(
        self,
        engine: Stylizer,
        rid: str,
        content: Any,
        styles: list[tuple[Any, float]],
        opts: dict[str, Any],
        cancel: threading.Event,
        writer: _ImageWriter,
    ) -> None:
        """The instant picture as the request's first image; without the instant network, a warning and the optimisation alone."""
        instant = {**opts, "preset": messages.FIRST_INSTANT}
        started = time.perf_counter()
        try:
            engine.stylize(content, styles, cancel=cancel, on_image=writer.first, **instant)
            _log(f"{rid}: instant picture after {time.perf_counter() - started:.2f} s")
        except WeightsUnavailable as exc:
            self.emit(**error_event(exc, rid, event=messages.WARNING))


def gpu_name(device: Any) -> str | None:
    """The GPU's own name for a CUDA device (what the dialog shows of a far end), else None."""
    if getattr(device, "type", "") != "cuda":
        return None
    import torch

    return str(torch.cuda.get_device_name(device))


def _log(message: str) -> None:
    """One line per request in the worker's log (stderr): what ran, how it ended, how long it took."""
    print(f"stylecore worker: {message}", file=sys.stderr, flush=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM when the parent exits, even if stdin stays open in a grandchild. Best effort."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_on_sigterm(server: Server) -> None:
    """SIGTERM (also what the kernel sends when the parent dies): stop like at stdin EOF, so the intermediate files go."""

    def stop(signum: int, frame: Any) -> None:  # no logging here: the interrupted thread may hold stderr's lock
        server.terminated = True
        server.close()

    signal.signal(signal.SIGTERM, stop)


def _default_factory(model: str, weights: str | None, random_weights: bool) -> EngineFactory:
    def load(device: str, precision: str) -> Stylizer:
        from stylecore import Stylizer  # imported here: torch loads once the protocol stream is set up

        engine = Stylizer(device=device, precision=precision, model=model, weights=weights, random_weights=random_weights)
        engine.load_weights()  # now, before `ready`: no run reads the weights file again (missing ones: exit 3 here)
        return engine

    return load


def _parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="stylecore worker", description="Long-lived engine speaking JSON lines on stdin/stdout (docs/worker-protocol.md)."
    )
    p.add_argument(
        "--device", default=option_table.option("device").default, help="device of the engine loaded at start (default auto)"
    )
    p.add_argument("--precision", choices=option_table.PRECISIONS, default=option_table.option("precision").default)
    p.add_argument("--model", choices=option_table.MODELS, default=option_table.MODELS[0])
    p.add_argument("--weights", default=None, help="weights file; default: the verified cache")
    p.add_argument("--random-weights", action="store_true", help="seeded random weights: for tests only, results are meaningless")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    die_with_parent()
    emit = Emitter(framing.claim_stdout())
    server = Server(_default_factory(args.model, args.weights, args.random_weights), emit, args.device, args.precision)
    _stop_on_sigterm(server)
    started = time.perf_counter()
    try:
        engine = server.engine(args.device, args.precision)
    except Exception as exc:  # ours: one line; a bug or a broken install: one line too, the traceback in the log
        if not isinstance(exc, StylecoreError):
            traceback.print_exc(file=sys.stderr)
        failed = error_event(exc, None, what="the engine failed to load")
        emit(**failed)
        return int(failed["code"])
    emit(
        event=messages.READY,
        protocol=messages.PROTOCOL,
        version=messages.VERSION,
        device=str(engine.runtime.device),
        gpu=gpu_name(engine.runtime.device),
        load_seconds=round(time.perf_counter() - started, 3),
        weights_loads=server.weights_loads,
        pid=os.getpid(),
        instant=instant_weights.problem() or "ok",
    )
    reader = threading.Thread(target=server.read_requests, args=(MessageReader(0),), name="stdin", daemon=True)
    reader.start()
    try:
        server.serve()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if server.reader_failed:
        return EXIT_INTERNAL
    if server.terminated:
        _log("stopped by SIGTERM")
        return EXIT_CANCELLED
    return 0
