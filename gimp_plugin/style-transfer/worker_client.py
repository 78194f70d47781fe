"""The plug-in's side of the stylecore worker (docs/worker-protocol.md; CONTRACTS.md sections 2 and 3).

Standard library only: it runs in GIMP's own Python, which on Windows, macOS, Flatpak and AppImage has no
numpy. Pixels cross as float32 .npy files (format v1.0, written and read here without numpy).

How nothing is left behind when GIMP kills the plug-in (its Cancel does that, so no `finally` of ours runs):
the plug-in does not start the worker directly but through a tiny stdlib "guard" process (GUARD_SOURCE, run
by the worker's own interpreter). The guard owns the private temp dir: it starts the worker with the
plug-in's pipes, waits for it, and removes the dir when the worker ends. The worker ends when its stdin
closes (the kernel closes the plug-in's end when the plug-in dies); on Linux the guard also gets SIGTERM
through PR_SET_PDEATHSIG and then stops the worker itself. As a last line, Worker.start sweeps dirs left by
plug-ins whose process is gone (a guard killed with SIGKILL on its own).
"""

from __future__ import annotations

import array
import ast
import contextlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

PROTOCOL = 1
CONFIG_NAME = "stylecore-worker.json"
DEFAULT_REPAIR = "python3 install.py (in the stylecore folder)"
WORKDIR_PREFIX = "stylecore-gimp-"
LOGS_KEPT = 5
CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows builds of Python

# GIMP's own Python and its bundle's libraries must not leak into the worker: the Windows installer and the
# macOS DMG set PYTHONHOME/PYTHONPATH for their bundled Python, the AppImage sets LD_LIBRARY_PATH/LD_PRELOAD,
# GI_TYPELIB_PATH, GDK_PIXBUF_*, GIO_*, GTK_*, GEGL_/BABL_ paths and its own fontconfig, the Flatpak sets
# GI_TYPELIB_PATH and PYTHONUSERBASE. PATH is kept: the worker runs from an absolute path and Windows finds
# the worker Python's own DLLs beside it first.
ENV_DROP_PREFIXES = (
    "PYTHON",
    "LD_",
    "DYLD_",
    "GI_",
    "GIO_",
    "GDK_PIXBUF_",
    "GTK_",
    "GEGL_",
    "BABL_",
    "GSETTINGS_",
    "FONTCONFIG_",
)
ENV_DROP_NAMES = ("VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__", "PERLLIB", "TCL_LIBRARY", "TK_LIBRARY", "APPDIR", "OWD")

# Run with the worker's interpreter as `python -u -c GUARD_SOURCE PARENT_PID WORKDIR WORKER_ARGV...`.
GUARD_SOURCE = r"""
import os, shutil, signal, subprocess, sys, time
parent, workdir, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def death_signal():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
stop, child = [], None
def on_term(*_):
    stop.append(time.monotonic())
    if child is not None and child.poll() is None:
        child.terminate()
try:
    if sys.platform.startswith("linux"):
        death_signal()
        signal.signal(signal.SIGTERM, on_term)
    if os.name != "posix" or os.getppid() == parent:
        kw = {"creationflags": 0x08000000} if os.name == "nt" else {}
        if sys.platform.startswith("linux"):
            kw["preexec_fn"] = death_signal
        child = subprocess.Popen(cmd, stdin=0, stdout=1, stderr=2, **kw)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        while child.poll() is None:
            if stop and time.monotonic() - stop[0] > 10:
                child.kill()
            try:
                child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
finally:
    os.chdir(os.path.dirname(workdir))
    shutil.rmtree(workdir, ignore_errors=True)
sys.exit(child.returncode if child is not None and child.returncode and child.returncode > 0 else 0)
"""


class PluginError(Exception):
    """A failure with a one-line message that tells the user what to do."""


@dataclass(frozen=True)
class WorkerConfig:
    """stylecore-worker.json as install.py writes it (CONTRACTS.md section 3); missing optional keys get defaults."""

    python: str
    pythonpath: str = ""
    python_version: str = ""
    layout: str = "native"
    repair: str = DEFAULT_REPAIR


def load_config(path: str) -> WorkerConfig:
    """Reads and checks the config; every problem becomes one line that names the repair command."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        raise PluginError(f"stylecore is not set up for this GIMP ({path} is missing); run: {DEFAULT_REPAIR}") from None
    except (OSError, ValueError) as exc:
        raise PluginError(f"{path} is unreadable ({exc.__class__.__name__}); run: {DEFAULT_REPAIR}") from None
    if not isinstance(raw, dict):
        raise PluginError(f"{path} is damaged (not a JSON object); run: {DEFAULT_REPAIR}")
    repair = raw.get("repair") if isinstance(raw.get("repair"), str) and raw.get("repair") else DEFAULT_REPAIR
    python = raw.get("python")
    if not isinstance(python, str) or not python:
        raise PluginError(f"{path} names no worker Python; run: {repair}")
    if not os.path.isabs(python):
        raise PluginError(f"the worker Python '{python}' in {path} is not an absolute path; run: {repair}")
    if not os.path.isfile(python):
        raise PluginError(f"the worker Python {python} no longer exists (moved or updated?); run: {repair}")
    pythonpath = raw.get("pythonpath") or ""
    if not isinstance(pythonpath, str):
        raise PluginError(f"{path} has a bad 'pythonpath'; run: {repair}")
    return WorkerConfig(python, pythonpath, str(raw.get("python_version") or ""), str(raw.get("layout") or "native"), repair)


def worker_environment(environ: dict[str, str], pythonpath: str) -> dict[str, str]:
    """GIMP's environment without its Python and loader variables, plus the worker's own PYTHONPATH."""
    env = {k: v for k, v in environ.items() if not k.upper().startswith(ENV_DROP_PREFIXES) and k.upper() not in ENV_DROP_NAMES}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def worker_command(config: WorkerConfig) -> list[str]:
    return [config.python, "-u", "-m", "stylecore", "worker"]


def guarded_command(config: WorkerConfig, workdir: str, parent_pid: int) -> list[str]:
    """The command the plug-in launches: the guard, which runs worker_command and then removes workdir."""
    return [config.python, "-u", "-c", GUARD_SOURCE, str(parent_pid), workdir, *worker_command(config)]


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


# --- private files: logs and the temp dir ---------------------------------------------------------------


def cache_dir() -> str:
    """The user's cache folder (inside the sandbox for a Flatpak GIMP, which sets XDG_CACHE_HOME)."""
    if os.name == "nt":
        return os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches")
    return os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


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
    log_dir = private_dir(log_dir or os.path.join(cache_dir(), "stylecore", "gimp-logs"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"  # names sort by age
    for _ in range(5):
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


# --- the worker ------------------------------------------------------------------------------------------


class Worker:
    """One warm `stylecore worker` process, its private temp dir and its log."""

    def __init__(self, proc: subprocess.Popen, config: WorkerConfig, workdir: str, log_path: str | None) -> None:
        self.proc = proc
        self.config = config
        self.workdir = workdir
        self.log_path = log_path
        self.stdout = proc.stdout
        self.ready: dict = {}

    @classmethod
    def start(cls, config_path: str) -> Worker:
        """Reads the config, launches the worker and waits for its ready event; PluginError names the repair."""
        config = load_config(config_path)
        with contextlib.suppress(OSError):
            sweep_stale_workdirs()
        try:
            log_fd, log_path = open_run_log()
        except OSError:
            log_fd, log_path = None, None
        workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
        cmd = guarded_command(config, workdir, os.getpid())
        if log_fd is not None:
            os.write(log_fd, ("$ " + " ".join(worker_command(config)) + f"\n# workdir {workdir}\n").encode())
        kw = {"creationflags": CREATE_NO_WINDOW} if os.name == "nt" else {}
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_fd if log_fd is not None else subprocess.DEVNULL,
                cwd=workdir,  # `-m` puts the cwd first on sys.path: only our private dir is safe there
                env=worker_environment(dict(os.environ), config.pythonpath),
                text=True,
                encoding="utf-8",
                bufsize=1,
                close_fds=True,
                **kw,
            )
        except OSError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise PluginError(f"cannot start the worker Python {config.python} ({exc.strerror}); run: {config.repair}") from None
        finally:
            if log_fd is not None:
                os.close(log_fd)
        worker = cls(proc, config, workdir, log_path)
        event = worker.read_event()
        if event is None or event.get("event") != "ready":
            worker.close()
            said = event.get("message") if event is not None and event.get("event") == "error" else None
            why = " ".join(str(said).split()) if said else last_log_line(log_path) or "it stopped before it was ready"
            raise PluginError(f"the stylecore worker did not start ({why}); run: {config.repair}")
        if event.get("protocol") != PROTOCOL:
            worker.close()
            raise PluginError(
                f"the stylecore worker speaks protocol {event.get('protocol')}, not {PROTOCOL}; run: {config.repair}"
            )
        worker.ready = event
        return worker

    def details(self) -> str:
        return f"details in {self.log_path}" if self.log_path else "no log could be written"

    def send(self, request: dict) -> None:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise PluginError(f"the stylecore worker has stopped; {self.details()}") from None

    def read_event(self) -> dict | None:
        """The next JSON event, blocking; None at end of file. Stray non-JSON lines are skipped."""
        while True:
            line = self.stdout.readline()
            if not line:
                return None
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                return event

    def cancel(self, request_id: str) -> None:
        with contextlib.suppress(PluginError):
            self.send({"op": "cancel", "id": request_id})

    def run(self, request: dict, on_event=None) -> dict:
        """Sends one request and returns its result event; progress and image events go to on_event."""
        self.send(request)
        while True:
            event = self.read_event()
            if event is None:
                code = self.proc.poll()
                how = f"exit {code}" if code is not None else "its output closed"
                raise PluginError(f"the stylecore worker stopped ({how}); {self.details()}")
            if event.get("id") not in (request.get("id"), None):
                continue
            kind = event.get("event")
            if kind == "result":
                return event
            if kind == "error":
                message = " ".join(str(event.get("message") or event.get("kind") or "unknown error").split())
                raise PluginError(message)
            if kind == "cancelled":
                raise PluginError("cancelled")
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
        with contextlib.suppress(OSError, ValueError):
            self.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
