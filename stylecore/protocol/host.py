"""What the plug-in, the installer and the engine agree on about the host: config, environment, cache, spawn.

Standard library only: GIMP's own Python imports this module (install.py copies it beside the plug-in).
- the worker config `stylecore-worker.json` that install.py writes and the plug-in reads;
- the one environment-cleaning rule for the worker's environment;
- the one cache-folder rule (weights, logs);
- the one way to start the worker: through the guard, from a private folder, with the cleaned environment.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from .errors import REPAIR_HERE, SetupError

CONFIG_NAME = "stylecore-worker.json"
WORKER_ARGS = ("-m", "stylecore", "worker")  # what runs the worker, after the interpreter and its flags
LAYOUTS = ("native", "flatpak")
GUARD = Path(__file__).resolve().with_name("guard.py")
CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows builds of Python

# GIMP's own Python and its bundle's libraries must not reach the worker: the Windows installer and the macOS
# DMG set PYTHONHOME/PYTHONPATH for their bundled Python, the AppImage sets LD_LIBRARY_PATH/LD_PRELOAD,
# GI_TYPELIB_PATH, GDK_PIXBUF_*, GIO_*, GTK_*, GEGL_/BABL_ paths and its own fontconfig, the Flatpak sets
# GI_TYPELIB_PATH and PYTHONUSERBASE, and an installer's shell may hold a venv or stylecore overrides that
# GIMP started from the desktop would not have. PATH is kept: the worker runs from an absolute path, and
# Windows finds the worker Python's own DLLs beside it first.
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
    "STYLECORE_",
)
# Set in every environment we start a Python in (the worker, the installer's probes): onnxruntime writes a device
# id, a telemetry database and $TMPDIR/.ses at import time unless this is set first.
ENV_SET = {"ORT_DISABLE_TELEMETRY": "1"}
ENV_DROP_NAMES = ("VIRTUAL_ENV", "CONDA_PREFIX", "__PYVENV_LAUNCHER__", "PERLLIB", "TCL_LIBRARY", "TK_LIBRARY", "APPDIR", "OWD")


@dataclass(frozen=True)
class WorkerConfig:
    """stylecore-worker.json: the worker's interpreter and how to repair it; missing optional keys get defaults."""

    python: str
    pythonpath: str = ""
    python_version: str = ""
    layout: str = "native"
    repair: str = REPAIR_HERE


def config_json(config: WorkerConfig) -> str:
    """The file's text, as install.py writes it."""
    return json.dumps(asdict(config), indent=2) + "\n"


def read_config(path: str | os.PathLike[str]) -> WorkerConfig:
    """The config as recorded, with its fields type-checked; the interpreter itself is not looked at."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        raise SetupError(f"stylecore is not set up for this GIMP ({path} is missing); run: {REPAIR_HERE}") from None
    except (OSError, ValueError) as exc:
        raise SetupError(f"{path} is unreadable ({exc.__class__.__name__}); run: {REPAIR_HERE}") from None
    if not isinstance(raw, dict):
        raise SetupError(f"{path} is damaged (not a JSON object); run: {REPAIR_HERE}")
    repair = str(raw["repair"]) if isinstance(raw.get("repair"), str) and raw["repair"] else REPAIR_HERE
    python = raw.get("python")
    if not isinstance(python, str) or not python:
        raise SetupError(f"{path} names no worker Python; run: {repair}")
    fields = {key: raw.get(key) or "" for key in ("pythonpath", "python_version", "layout")}
    for key, value in fields.items():
        if not isinstance(value, str) or "\0" in value:
            raise SetupError(f"{path} has a bad '{key}'; run: {repair}")
    if "\0" in python:
        raise SetupError(f"{path} names a worker Python with a NUL byte; run: {repair}")
    return WorkerConfig(python, fields["pythonpath"], fields["python_version"], fields["layout"] or "native", repair)


def load_config(path: str | os.PathLike[str]) -> WorkerConfig:
    """Reads the config and checks that its interpreter is there, as the plug-in needs before it starts it."""
    config = read_config(path)
    if not os.path.isabs(config.python):
        raise SetupError(f"the worker Python '{config.python}' in {path} is not an absolute path; run: {config.repair}")
    if not os.path.isfile(config.python):
        raise SetupError(f"the worker Python {config.python} no longer exists (moved or updated?); run: {config.repair}")
    return config


def worker_environment(environ: Mapping[str, str], pythonpath: str = "") -> dict[str, str]:
    """environ without Python, loader, toolkit and stylecore variables, plus ENV_SET and the worker's own PYTHONPATH."""
    env = {k: v for k, v in environ.items() if not k.upper().startswith(ENV_DROP_PREFIXES) and k.upper() not in ENV_DROP_NAMES}
    env.update(ENV_SET)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user cache folder (inside the sandbox for a Flatpak GIMP, which sets XDG_CACHE_HOME)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME") or Path.home()) if os.name != "nt" else Path.home()
    if os.name == "nt":
        return Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    if sys.platform == "darwin":
        return home / "Library" / "Caches"
    return Path(env.get("XDG_CACHE_HOME") or home / ".cache")


def stylecore_cache(environ: Mapping[str, str] | None = None) -> Path:
    """stylecore's cache folder: STYLECORE_CACHE, else <the user's cache folder>/stylecore."""
    env = os.environ if environ is None else environ
    return Path(env["STYLECORE_CACHE"]) if env.get("STYLECORE_CACHE") else user_cache_dir(env) / "stylecore"


def worker_command(config: WorkerConfig) -> list[str]:
    return [config.python, "-u", *WORKER_ARGS]


def remote_worker_command(python: str | os.PathLike[str]) -> str:
    """What a far end runs over ssh, as install.py prints it to paste into the dialog: isolated mode, because ssh
    starts it in the home folder, which -m would put first on sys.path, and a login's PYTHON* settings stay out."""
    return shlex.join([os.fspath(python), "-I", "-u", *WORKER_ARGS])


def guarded_command(config: WorkerConfig, workdir: str, parent_pid: int, guard: str | os.PathLike[str] = GUARD) -> list[str]:
    """The guard (isolated mode: nothing on its path but the standard library), which runs worker_command."""
    return [config.python, "-I", "-u", str(guard), str(parent_pid), workdir, "--", *worker_command(config)]


def spawn_worker(
    config: WorkerConfig | None,
    workdir: str,
    *,
    stderr: int | IO[bytes] | None = subprocess.DEVNULL,
    environ: Mapping[str, str] | None = None,
    guard: str | os.PathLike[str] = GUARD,
    launcher: Sequence[str] = (),
    ssh: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Starts the guarded worker with binary pipes on stdin/stdout; the caller reads its ready event.

    workdir: a private folder, the worker's cwd (`-m` puts the cwd first on sys.path, so only a folder of
    ours is safe there; never the caller's, which may hold a checkout), removed by the guard at the end.
    launcher: a prefix that runs the config's interpreter, such as `flatpak run --command=PYTHON APP`, for a
    check from outside the sandbox (workdir must then be visible inside it).
    ssh: the argv of remote.ssh_argv, which runs the worker on another machine instead (config is then not used).
    No guard stands between: when we die, ssh's stdin closes, the remote worker's stdin with it, and it exits.
    Raises OSError.
    """
    if ssh:
        env = worker_environment(os.environ if environ is None else environ)
        command = list(ssh)
    else:
        assert config is not None, "a local worker needs its config"
        env = worker_environment(os.environ if environ is None else environ, config.pythonpath)
        command = guarded_command(config, workdir, 0 if launcher else os.getpid(), guard)
        if launcher:  # the launcher names the interpreter, and stands between us and the guard
            command = [*launcher, *command[1:]]
    kw: dict[str, object] = {"creationflags": CREATE_NO_WINDOW} if os.name == "nt" else {}
    return subprocess.Popen(  # type: ignore[call-overload]
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=workdir,
        env=env,
        bufsize=0,
        close_fds=True,
        **kw,
    )
