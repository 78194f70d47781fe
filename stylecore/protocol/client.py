"""The one worker client: starts a worker (here, or over ssh), reads it with one thread, checks its ready event,
runs requests, cancels them, and hands on typed events. The GIMP plug-in, the CLI's --remote and
`install.py --check` all use it (docs/worker-protocol.md).

Standard library only. A worker on this computer is started through the guard (guard.py), which owns the
worker's private folder and removes it whatever ends the worker; one over ssh gets a private folder here only as
ssh's cwd. The spawn happens on the calling thread, because Linux ties a child's parent-death signal to the
thread that forked it. Everything the worker prints on stderr goes to a log: a file kept for the user (the
plug-in's) or an unnamed temporary file; a failure is explained from its last lines, in one line.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from . import host, messages, npy, pixels, ssh
from .errors import Cancelled, RemoteFailure, StylecoreError, WorkerFailed
from .framing import Message, MessageReader, write_message
from .progress import Progress

READY_SECONDS = 600.0  # a worker loads torch and the weights before it is ready: minutes on a cold disk or a far end
CLOSE_SECONDS = 10.0  # a worker ends at stdin EOF; one that has not ended by then is killed
WORKDIR_PREFIX = "stylecore-worker-"  # then the pid of the process that owns it, so a sweep can tell stale ones
LOGS_KEPT = 5
GONE = "gone"  # the kind of the last event: the worker's output ended


@dataclass(frozen=True)
class Event:
    """One message from the worker: its kind (messages.EVENTS, or GONE), the request id it belongs to, its fields."""

    kind: str
    id: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    payload: bytes | None = None  # in-band pixels

    @classmethod
    def of(cls, message: Message | None) -> Event:
        if message is None:
            return cls(GONE, None)
        rid = message.obj.get("id")
        return cls(str(message.obj.get("event")), rid if isinstance(rid, str) else None, message.obj, message.payload)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def message(self) -> str:
        """An error's (or warning's) text, on one line."""
        return one_line(self.fields.get("message") or self.fields.get("kind") or "unknown error")

    def progress(self) -> Progress:
        """A progress event as the typed record the engine's callers get."""
        return Progress.from_fields(self.fields)

    def pixels(self) -> tuple[int, int, int, bytes]:
        """(width, height, channels, float32 bytes) of an image or result event: in-band, or in the .npy file it names."""
        if "pixels" in self.fields:
            try:
                image = pixels.decode(self.fields["pixels"], self.payload or b"")
            except pixels.PayloadError as exc:
                raise ValueError(str(exc)) from None
            if image.sample != "f32":
                raise ValueError(f"the worker sent {image.sample} pixels; it sends float32")
            return image.width, image.height, image.channels, image.data
        return npy.read_npy(str(self.fields.get("path") or ""))

    def error(self) -> StylecoreError:
        """What a request's terminal error or cancelled event means for the caller."""
        if self.kind == messages.CANCELLED:
            return Cancelled()
        code = self.fields.get("code")
        return WorkerFailed(self.message, exit_code=code if type(code) is int else None, kind=str(self.fields.get("kind", "")))


@dataclass(frozen=True)
class Local:
    """A worker on this computer: the recorded interpreter, started through the guard."""

    config: host.WorkerConfig
    guard: Path = host.GUARD
    launcher: tuple[str, ...] = ()  # what runs the interpreter from outside a sandbox (`flatpak run --command=...`)
    workdir_parent: str | None = None  # where the private folder goes: a folder the sandbox sees, for a launcher


Where = Union[Local, ssh.Target]
Listener = Callable[[Event], None]


def where_text(where: Where) -> str:
    return messages.THIS_COMPUTER if isinstance(where, Local) else str(where.destination)


class Log:
    """The worker's stderr: a file kept for the user in `folder` (the last LOGS_KEPT), or an unnamed temporary file."""

    def __init__(self, folder: str | None = None) -> None:
        self.path: str | None = None
        if folder is None:
            self.file: IO[bytes] = tempfile.TemporaryFile()
        else:
            fd, self.path = open_run_log(folder)
            self.file = os.fdopen(fd, "w+b")

    def write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.file.write(text.encode("utf-8", "replace"))
            self.file.flush()

    def tail(self, size: int = 8000) -> str:
        try:
            if self.path is not None:
                with open(self.path, "rb") as fh:
                    fh.seek(max(0, os.path.getsize(self.path) - size))
                    data = fh.read()
            else:
                self.file.seek(0, os.SEEK_END)
                self.file.seek(max(0, self.file.tell() - size))
                data = self.file.read()
        except (OSError, ValueError):
            return ""
        return data.decode("utf-8", "replace").replace("\r", "")

    def last_line(self) -> str:
        lines = [line.strip() for line in self.tail(4000).splitlines() if line.strip()]
        return lines[-1][:200] if lines else ""

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.file.close()


class WorkerClient:
    """One worker process: spawned at once, read by one thread, ready once its ready event matched this stylecore.

    Events go to the current listener (called on the reader thread) or, without one, to `run`. Nothing else reads
    the worker's stdout. Raises SetupError (no usable config), BadInput (a bad ssh destination) or RemoteFailure /
    WorkerFailed (it cannot be started), each one line naming the fix."""

    def __init__(self, where: Where, *, log_folder: str | None = None) -> None:
        self.where = where
        self.ready: Mapping[str, Any] = {}
        self.failure = ""  # why it never became ready
        self._failed: Event | None = None  # the worker's own error event instead of ready
        self._answered = threading.Event()
        self._events: queue.Queue[Event] = queue.Queue()
        self._listener: Listener | None = None
        self._lock = threading.Lock()  # the listener
        self._send_lock = threading.Lock()
        self._answer_lock = threading.Lock()  # the handshake's answer: the first event, or the ready timeout
        try:
            self.log = Log(log_folder)
        except OSError:
            self.log = Log()  # no folder for logs: the worker still runs, its messages are only not kept
        parent = where.workdir_parent if isinstance(where, Local) else None
        self.workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=parent)
        command = where.argv() if isinstance(where, ssh.Target) else host.worker_command(where.config)
        self.log.write("$ " + " ".join(command) + f"\n# workdir {self.workdir}\n")
        try:
            if isinstance(where, ssh.Target):
                self.proc = host.spawn_worker(None, self.workdir, stderr=self.log.file, ssh=command)
            else:
                self.proc = host.spawn_worker(
                    where.config, self.workdir, stderr=self.log.file, guard=where.guard, launcher=where.launcher
                )
        except OSError as exc:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.log.close()
            if isinstance(where, ssh.Target):
                raise RemoteFailure(f"cannot start ssh ({exc.strerror or exc}); install the OpenSSH client") from None
            raise WorkerFailed(
                f"cannot start the worker Python {where.config.python} ({exc.strerror or exc}); run: {where.config.repair}"
            ) from None
        threading.Thread(target=self._read, name="stylecore-worker-reader", daemon=True).start()

    @classmethod
    def for_config(cls, config_path: str, target: ssh.Target | None = None, *, log_folder: str | None = None) -> WorkerClient:
        """The plug-in's worker: over ssh with a target, else the interpreter its config file records."""
        if target is not None:
            return cls(target, log_folder=log_folder)
        return cls(Local(host.load_config(config_path)), log_folder=log_folder)

    @property
    def remote(self) -> bool:
        return isinstance(self.where, ssh.Target)

    @property
    def log_path(self) -> str | None:
        return self.log.path

    # -- the reader thread ------------------------------------------------------------------------------
    def _read(self) -> None:
        assert self.proc.stdout is not None
        reader = MessageReader(self.proc.stdout, skip_junk=True)
        while True:
            try:
                message = reader.read()
            except StylecoreError:  # an over-long or cut-off line: the stream is no longer one we can follow
                message = None
            event = Event.of(message)
            if not self._answered.is_set():
                self._first(event)
            self._deliver(event)
            if message is None:
                return

    def _first(self, event: Event) -> None:
        """The ready handshake: the first event must be a ready event whose versions match this stylecore."""
        with self._answer_lock:
            if not self._answered.is_set():  # a ready timeout may have answered first
                self._handshake(event)
                self._answered.set()

    def _handshake(self, event: Event) -> None:
        if event.kind == messages.READY:
            problem = messages.ready_problem(event.fields, where_text(self.where), same_version=self.remote)
            if problem:
                self.failure = problem
            else:
                self.ready = event.fields
        elif event.kind == messages.ERROR:
            self._failed = event
            self.failure = f"the stylecore worker on {where_text(self.where)} did not start ({event.message}); {self._fix()}"
        elif event.kind == GONE:
            self.failure = self.stopped_message(ready=False)
        else:
            self.failure = f"{where_text(self.where)}: the worker command is not a stylecore worker; {self._fix()}"

    def _deliver(self, event: Event) -> None:
        with self._lock:
            listener = self._listener
            if listener is None:
                self._events.put(event)
        if listener is not None:
            listener(event)

    def listen(self, listener: Listener | None) -> None:
        """From now on events go to listener (on the reader thread), or with None back to `run`."""
        with self._lock:
            self._listener = listener

    # -- state ---------------------------------------------------------------------------------------------
    def has_answered(self) -> bool:
        """True once the worker said ready or failed (then `failure` says why)."""
        return self._answered.is_set()

    def is_ready(self) -> bool:
        return bool(self.ready)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float | None = None) -> Mapping[str, Any]:
        """The ready event's fields; RemoteFailure or WorkerFailed (one line) if it failed or did not come in time
        (timeout None: READY_SECONDS)."""
        limit = READY_SECONDS if timeout is None else timeout
        if not self._answered.wait(limit):
            with self._answer_lock:  # set before the process goes, so the reader's end-of-output cannot replace it
                if not self._answered.is_set():
                    self.failure = (
                        f"the worker on {where_text(self.where)} did not get ready within {limit:.0f} s; "
                        f"check the worker command ({self._fix()}), then {self.details()}"
                    )
                    self._answered.set()
            self.close(wait=False)
        if self.failure:
            self.close()
            if self.remote:
                raise RemoteFailure(self.failure)
            kind = str(self._failed.get("kind", "")) if self._failed is not None else ""
            raise WorkerFailed(self.failure, kind=kind)
        return self.ready

    def details(self) -> str:
        return f"details in {self.log.path}" if self.log.path else "run it in a terminal to see why"

    def _fix(self) -> str:
        if isinstance(self.where, Local):
            return f"run: {self.where.config.repair}"
        return f"run '{ssh.SETUP_HINT}' on that machine and pass the worker command it prints"

    def stopped_message(self, ready: bool = True) -> str:
        """One line for a worker whose output ended: ssh's own failure, or how the worker ended and where its log is."""
        try:
            code = self.proc.wait(timeout=ssh.ALIVE_INTERVAL if self.remote else 2)
        except subprocess.TimeoutExpired:
            code = None
        if isinstance(self.where, ssh.Target):
            line = ssh.explain_failure(
                code if code is not None else ssh.SSH_EXIT, self.log.tail(), self.where.destination, ready=ready
            )
            if line:
                return line
            last = self.log.last_line() or f"exit {code}"
            return f"{self.where.destination}: the remote worker stopped ({last}); {self._fix()}"
        last = self.log.last_line()
        how = last or (f"exit {code}" if code is not None else "its output closed")
        return f"the stylecore worker stopped ({how}); {self.details()}; {self._fix()}"

    # -- requests ------------------------------------------------------------------------------------------
    def send(self, obj: Mapping[str, Any], payload: bytes | None = None) -> None:
        try:
            with self._send_lock:
                assert self.proc.stdin is not None
                write_message(self.proc.stdin, obj, payload)
        except (OSError, ValueError):
            failed = RemoteFailure if self.remote else WorkerFailed
            raise failed(self.stopped_message()) from None

    def cancel(self, request_id: str) -> None:
        with contextlib.suppress(StylecoreError):
            self.send(messages.cancel_request(request_id))

    def run(self, obj: Mapping[str, Any], payload: bytes | None = None, on_event: Listener | None = None) -> Event:
        """Sends one request and returns its result event; its other events go to on_event. Blocks.

        Raises Cancelled, WorkerFailed (the worker's error, with its exit code) or RemoteFailure (the link dropped)."""
        self.wait_ready()
        self.listen(None)
        self.send(obj, payload)
        while True:
            event = self._events.get()
            if event.kind == GONE:
                failed = RemoteFailure if self.remote else WorkerFailed
                raise failed(self.stopped_message())
            if event.id != obj["id"]:
                continue  # a preview's late events, the ready event: the hand-over needs no draining
            if event.kind == messages.RESULT:
                return event
            if event.kind in (messages.ERROR, messages.CANCELLED):
                raise event.error()
            if on_event is not None:
                on_event(event)

    def close(self, wait: bool = True) -> None:
        """EOF to the worker (it exits), a short wait (none with wait=False), then kill; its private folder and
        temporary log go with it."""
        proc = getattr(self, "proc", None)
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
            try:
                proc.wait(timeout=CLOSE_SECONDS if wait else 0.5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.log.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- private files: logs and stale private folders ------------------------------------------------------------


def private_dir(path: str) -> str:
    """Creates path (mode 0700) if needed and refuses one that is a symlink, not ours, or open to others."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{path} is not a plain folder")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise OSError(f"{path} belongs to another user")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)
    return path


def open_run_log(log_dir: str, keep: int = LOGS_KEPT) -> tuple[int, str]:
    """A new log file for this run, created exclusively and without following symlinks; keeps the last `keep`."""
    log_dir = private_dir(log_dir)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"  # names sort by age
    for _attempt in range(5):
        path = os.path.join(log_dir, f"worker-{stamp}-{os.getpid()}-{secrets.token_hex(3)}.log")
        try:
            fd = os.open(path, flags, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise OSError(f"cannot create a new log file in {log_dir}")
    mine = os.path.basename(path)
    logs = sorted(name for name in os.listdir(log_dir) if name.startswith("worker-") and name.endswith(".log") and name != mine)
    for old in logs[: max(0, len(logs) - keep + 1)]:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(log_dir, old))
    return fd, path


def default_log_folder() -> str:
    return str(host.stylecore_cache() / "gimp-logs")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_stale_workdirs(tmp: str | None = None) -> list[str]:
    """Removes this user's private worker folders left by processes that no longer exist (POSIX only): the guard
    removes its own, so only one killed with SIGKILL leaves one behind."""
    if os.name != "posix":
        return []  # os.kill(pid, 0) would terminate the process on Windows; the guard is enough there
    tmp = tmp or tempfile.gettempdir()
    removed = []
    for name in os.listdir(tmp):
        parts = name[len(WORKDIR_PREFIX) :].split("-", 1)
        if not name.startswith(WORKDIR_PREFIX) or not parts[0].isdigit() or not parts[0].isascii():
            continue
        path = os.path.join(tmp, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _pid_alive(int(parts[0])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def one_line(text: object) -> str:
    return " ".join(str(text).split())
