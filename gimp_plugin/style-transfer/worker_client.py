"""The plug-in's side of the stylecore worker (docs/worker-protocol.md): one warm worker, read by one thread.

Standard library only: it runs in GIMP's own Python, which on Windows, macOS, Flatpak and AppImage has no
numpy. For a local worker pixels cross as float32 .npy files (format v1.0, written and read here without numpy),
measured faster than in-band here; a worker on another machine (over ssh) gets them in-band (stylecore/pixels.py).

The worker is started through host.spawn_worker, the same helper `install.py --check` uses: through the
guard (stylecore/guard.py), which owns the private temp dir and removes it whatever ends the worker, even
when GIMP's Cancel kills the plug-in. As a last line, Session sweeps dirs left by plug-ins whose process is
gone (a guard killed with SIGKILL on its own). The spawn happens on the calling (main) thread, because Linux
ties a child's parent-death signal to the thread that forked it.

One reader per pipe: a daemon thread reads the worker's stdout with framing.MessageReader and hands each
event to the current listener (the preview pane, which moves it to the GTK thread) or else to a queue (a
blocking `run`). Nothing else ever reads that pipe.
"""

from __future__ import annotations

import array
import ast
import contextlib
import os
import queue
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from settings import _

from stylecore.protocol import errors, framing, host, messages, pixels, ssh
from stylecore.protocol.client import Target

WORKDIR_PREFIX = "stylecore-gimp-"
LOGS_KEPT = 5
POLL_SECONDS = 0.5  # how often a blocking wait looks whether the worker is still alive
GONE = {"event": "gone"}  # what the reader hands on at the end of the worker's output


class PluginError(Exception):
    """A failure with a one-line message that tells the user what to do."""


class CallingError(PluginError):
    """Bad arguments (GIMP's CALLING_ERROR): found before any worker starts."""


# --- float32 .npy without numpy -------------------------------------------------------------------------


def write_npy(path: str, width: int, height: int, channels: int, data: bytes) -> None:
    """Writes native float32 pixels (as GEGL's "float" formats give them) as a little-endian .npy v1.0."""
    if len(data) != width * height * channels * 4:
        raise ValueError(f"{width}x{height}x{channels} float32 needs {width * height * channels * 4} bytes, got {len(data)}")
    shape = f"({height}, {width}, {channels})"
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }"
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    if sys.byteorder == "big":
        swapped = array.array("f", data)
        swapped.byteswap()
        data = swapped.tobytes()
    with open(path, "wb") as fh:
        fh.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
        fh.write(data)


def read_npy(path: str) -> tuple[int, int, int, bytes]:
    """Reads a float32 HxW or HxWxC .npy; returns width, height, channels and native float32 bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(8)
        if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
            raise ValueError(f"{path} is not a .npy file")
        size_bytes = 2 if magic[6] == 1 else 4
        header = fh.read(int.from_bytes(fh.read(size_bytes), "little")).decode("latin1")
        try:
            meta = ast.literal_eval(header)
        except (ValueError, SyntaxError):
            raise ValueError(f"{path} has a malformed .npy header") from None
        if not isinstance(meta, dict) or meta.get("descr") not in ("<f4", ">f4") or meta.get("fortran_order"):
            raise ValueError(f"{path} is not a C-ordered float32 array ({meta!r})")
        shape = tuple(meta.get("shape", ()))
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
            raise ValueError(f"{path} has shape {meta.get('shape')}, not height x width x channels")
        height, width, channels = shape
        data = fh.read()
    if len(data) != width * height * channels * 4:
        raise ValueError(f"{path} is truncated: {len(data)} bytes for a {width}x{height}x{channels} float32 array")
    if (meta["descr"] == ">f4") != (sys.byteorder == "big"):
        swapped = array.array("f", data)
        swapped.byteswap()
        data = swapped.tobytes()
    return width, height, channels, data


def add_alpha(rgb: bytes, alpha: bytes) -> bytes:
    """Interleaves float32 RGB and float32 A planes into RGBA (C loops of the array module, no numpy)."""
    src, a = array.array("f", rgb), array.array("f", alpha)
    out = array.array("f", bytes(len(a) * 16))
    for c in range(3):
        out[c::4] = src[c::3]
    out[3::4] = a
    return out.tobytes()


def channel(data: bytes, channels: int, index: int) -> bytes:
    """One channel of interleaved float32 pixels, as float32 bytes."""
    return array.array("f", data)[index::channels].tobytes()


def event_pixels(event: dict) -> tuple[int, int, int, bytes]:
    """The float32 pixels an image or result event carries in-band, or in the .npy file it names."""
    if "pixels" in event:
        try:
            image = pixels.decode(event["pixels"], event.get("payload") or b"")
        except pixels.PayloadError as exc:
            raise ValueError(str(exc)) from None
        return image.width, image.height, image.channels, image.data
    return read_npy(event.get("path") or "")


# --- private files: logs and the temp dir ---------------------------------------------------------------


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


def open_run_log(log_dir: str | None = None, keep: int = LOGS_KEPT) -> tuple[int, str]:
    """A new log file for this run, created exclusively and without following symlinks; keeps the last `keep`."""
    log_dir = private_dir(log_dir or str(host.stylecore_cache() / "gimp-logs"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_stale_workdirs(tmp: str | None = None) -> list[str]:
    """Removes this user's temp dirs left by plug-in processes that no longer exist (POSIX only)."""
    if os.name != "posix":
        return []  # os.kill(pid, 0) would terminate the process on Windows; the guard is enough there
    tmp = tmp or tempfile.gettempdir()
    removed = []
    for name in os.listdir(tmp):
        parts = name[len(WORKDIR_PREFIX) :].split("-", 1)
        if not name.startswith(WORKDIR_PREFIX) or not parts[0].isdigit():
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


def last_log_line(log_path: str | None) -> str:
    if not log_path:
        return ""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            lines = [line.strip() for line in fh.read()[-4000:].splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def one_line(text: object) -> str:
    return " ".join(str(text).split())


# --- the worker ------------------------------------------------------------------------------------------


Listener = Callable[[dict], None]


class Worker:
    """One `stylecore worker` process, its private temp dir, its log, and the one thread that reads it."""

    def __init__(
        self,
        proc: subprocess.Popen,
        config: host.WorkerConfig | None,
        workdir: str,
        log_path: str | None,
        target: Target | None = None,
    ) -> None:
        self.proc, self.config, self.workdir, self.log_path = proc, config, workdir, log_path
        self.target = target  # None: this computer; else the SSH destination, and pixels go in-band
        self.ready: dict = {}
        self.failure = ""  # why it never became ready
        self._ready_seen = threading.Event()
        self._events: queue.Queue[dict] = queue.Queue()
        self._listener: Listener | None = None
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read, name="stylecore-worker-reader", daemon=True).start()

    @classmethod
    def spawn(cls, config_path: str, target: Target | None = None) -> Worker:
        """Reads the config and launches the worker (over ssh with a target) without waiting for it; PluginError
        names the repair."""
        config = None
        try:
            if target is None:
                config = host.load_config(config_path)
            ssh = target.argv() if target is not None else []
        except (host.ConfigError, ssh.RemoteError) as exc:
            raise PluginError(str(exc)) from None
        try:
            log_fd, log_path = open_run_log()
        except OSError:
            log_fd, log_path = None, None
        workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
        if log_fd is not None:
            command = ssh or host.worker_command(config)  # type: ignore[arg-type]
            os.write(log_fd, ("$ " + " ".join(command) + f"\n# workdir {workdir}\n").encode())
        try:
            proc = host.spawn_worker(config, workdir, stderr=log_fd if log_fd is not None else subprocess.DEVNULL, ssh=ssh)
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            if config is None:
                raise PluginError(
                    _("cannot start ssh ({error}); install the OpenSSH client").format(error=exc.strerror)
                ) from None
            raise PluginError(
                _("cannot start the worker Python {python} ({error}); run: {repair}").format(
                    python=config.python, error=exc.strerror, repair=config.repair
                )
            ) from None
        finally:
            if log_fd is not None:
                os.close(log_fd)
        return cls(proc, config, workdir, log_path, target)

    @classmethod
    def start(cls, config_path: str) -> Worker:
        """spawn, then wait until it is ready."""
        worker = cls.spawn(config_path)
        worker.wait_ready()
        return worker

    # -- the reader thread --------------------------------------------------------------------------------
    def _read(self) -> None:
        reader = framing.MessageReader(self.proc.stdout, skip_junk=True)
        while True:
            try:
                message = reader.read()
            except errors.BadRequest:  # an over-long or cut-off line: skip it, as any stray output
                continue
            event = GONE if message is None else message.obj
            if message is not None and message.payload is not None:
                event = {**event, "payload": message.payload}  # in-band pixels, for event_pixels
            if not self._ready_seen.is_set():
                self._first(event)
            self._deliver(event)
            if message is None:
                return

    def _where(self) -> str:
        return str(self.target.destination) if self.target is not None else "this computer"

    def _first(self, event: dict) -> None:
        ready = event.get("event") == messages.READY
        problem = messages.ready_problem(event, self._where(), same_version=self.target is not None) if ready else None
        if problem:
            self.failure = problem
        elif event.get("event") == messages.READY:
            self.ready = event
        elif event.get("event") == messages.ERROR:
            self.failure = f"the stylecore worker did not start ({one_line(event.get('message') or event.get('kind'))})"
        elif self.target is not None:
            self.failure = self.stopped_message(ready=False)
        else:
            why = last_log_line(self.log_path) or "it stopped before it was ready"
            self.failure = f"the stylecore worker did not start ({why})"
        self._ready_seen.set()

    def stopped_message(self, ready: bool = True) -> str:
        """One line for a worker whose output ended: for a remote one, ssh's failure (ssh.explain_failure)."""
        code = self.proc.poll()
        if self.target is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=ssh.ALIVE_INTERVAL)
            try:
                with open(self.log_path or "", encoding="utf-8", errors="replace") as fh:
                    text = fh.read()[-8000:]
            except OSError:
                text = ""
            line = ssh.explain_failure(code if code is not None else ssh.SSH_EXIT, text, self.target.destination, ready=ready)
            if line:
                return line
        how = f"exit {code}" if code is not None else "its output closed"
        return f"the stylecore worker stopped ({how}); {self.details()}"

    def _deliver(self, event: dict) -> None:
        with self._lock:
            listener = self._listener
            if listener is None:
                self._events.put(event)
        if listener is not None:
            listener(event)

    def listen(self, listener: Listener | None) -> None:
        """From now on events go to listener (called on the reader thread), or with None back to run()."""
        with self._lock:
            self._listener = listener

    # -- requests -----------------------------------------------------------------------------------------
    def is_ready(self) -> bool:
        return bool(self.ready)

    def has_answered(self) -> bool:
        """True once the worker said ready or failed (then `failure` says why)."""
        return self._ready_seen.is_set()

    def wait_ready(self) -> None:
        """Blocks until the worker is ready (loading torch and the weights takes seconds); PluginError if it failed."""
        self._ready_seen.wait()
        if self.failure:
            self.close()
            raise PluginError(
                _("{failure}; run: {repair}").format(failure=self.failure, repair=self.config.repair)
                if self.config is not None
                else self.failure
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def details(self) -> str:
        return f"details in {self.log_path}" if self.log_path else "no log could be written"

    def send(self, request: dict, payload: bytes | None = None) -> None:
        try:
            with self._send_lock:
                framing.write_message(self.proc.stdin, request, payload)
        except (OSError, ValueError):
            raise PluginError(self.stopped_message()) from None

    def cancel(self, request_id: str) -> None:
        with contextlib.suppress(PluginError):
            self.send(messages.cancel_request(request_id))

    def run(self, request: dict, on_event: Listener | None = None, payload: bytes | None = None) -> dict:
        """Sends one request and returns its result event; its other events go to on_event. Blocks."""
        self.wait_ready()
        self.listen(None)
        self.send(request, payload)
        while True:
            try:
                event = self._events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if event is GONE:
                raise PluginError(self.stopped_message())
            if event.get("id") != request["id"]:
                continue  # a preview's late events, the ready event: the hand-over needs no draining
            kind = event.get("event")
            if kind == messages.RESULT:
                return event
            if kind == messages.ERROR:
                raise PluginError(one_line(event.get("message") or event.get("kind") or "unknown error"))
            if kind == messages.CANCELLED:
                raise PluginError(_("cancelled"))
            if on_event is not None:
                on_event(event)

    def close(self) -> None:
        """Closes stdin (the worker exits at EOF), waits briefly, and makes sure the temp dir is gone."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Session:
    """What one plug-in process owns: its warm worker (shared by the preview and the final run), request ids,
    and the style layers already written for the worker."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.target: Target | None = None  # where the next worker runs: None for this computer
        self.worker: Worker | None = None
        self._serial = 0
        self._style_files: dict[object, str] = {}

    def run_on(self, target: Target | None) -> None:
        """Where workers run from now on; a worker elsewhere is closed."""
        if target != self.target:
            self.close()
            self.target = target

    def spawn(self) -> Worker:
        """The worker, launched if none is running; returns at once (it may still be loading)."""
        if self.worker is None or not self.worker.alive():
            self.close()
            with contextlib.suppress(OSError):
                sweep_stale_workdirs()
            self._style_files.clear()
            self.worker = Worker.spawn(self.config_path, self.target)
        return self.worker

    def ready_worker(self) -> Worker:
        worker = self.spawn()
        worker.wait_ready()
        return worker

    def next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    def content(self, name: str, width: int, height: int, channels: int, data: bytes) -> messages.Source:
        """Float32 pixels for the worker: a .npy file in its private dir, or in-band pixels for a remote worker."""
        worker = self.spawn()
        if worker.target is not None:
            return pixels.Pixels(width, height, channels, "f32", data)
        path = os.path.join(worker.workdir, name)
        write_npy(path, width, height, channels, data)
        return path

    def output(self, name: str) -> str | None:
        """The result's file in the worker's private dir, or None (in-band) for a remote worker."""
        worker = self.spawn()
        return None if worker.target is not None else os.path.join(worker.workdir, name)

    def style_file(self, key: object, write: Callable[[str], None]) -> str:
        """The worker-side file of a style layer, written once per worker (the preview and the final run share it)."""
        worker = self.spawn()
        if key not in self._style_files:
            path = os.path.join(worker.workdir, f"style-{len(self._style_files)}.npy")
            write(path)
            self._style_files[key] = path
        return self._style_files[key]

    def log_path(self) -> str | None:
        return self.worker.log_path if self.worker is not None else None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
