"""The worker environment for GIMP's Flatpak: a venv made by the sandbox's own Python, under the app's data folder."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import common
from .common import HERE, MARKER, InstallError, clean_env, python_version_of, repair_command, say
from .discovery import FLATPAK_APP, Flatpak
from .native import fetch_commands, host_instant_folder, host_weights_file, pip_install
from .torch_choice import pick_torch


def flatpak_cmd(command: object, *argv: object) -> list[str]:
    """A command run inside GIMP's Flatpak sandbox (it sees the host home at the same path)."""
    return ["flatpak", "run", f"--command={command}", FLATPAK_APP, *map(str, argv)]


def sandbox_succeeds(command: object, *argv: object) -> bool:
    return common.run(flatpak_cmd(command, *argv), capture_output=True, env=clean_env()).returncode == 0


def sandbox_python_version() -> str | None:
    return python_version_of(flatpak_cmd("python3"))


def envs_root(flatpak: Flatpak) -> Path:
    """Where the Flatpak worker environments live, one per runtime Python (venv-py3.X)."""
    return flatpak.data_dir / "data" / "stylecore"


def site_packages(venv: Path, version: str) -> Path:
    return venv / "lib" / f"python{version}" / "site-packages"


def ensure_flatpak_environment(flatpak: Flatpak, args: argparse.Namespace) -> tuple[Path, str]:
    """A venv made by the sandbox's own python3, under the app's data folder; returns (python, X.Y)."""
    repair = repair_command(args)
    version = sandbox_python_version()
    if version is None:
        raise InstallError(
            f"'flatpak run --command=python3 {FLATPAK_APP}' did not run; update the GIMP Flatpak (flatpak update {FLATPAK_APP}), then run: {repair}"
        )
    venv = envs_root(flatpak) / f"venv-py{version}"
    python = venv / "bin" / "python"
    system_torch = sandbox_succeeds("python3", "-c", "import torch, torchvision, numpy, PIL")
    if not python.exists():
        _create_venv(venv, version, system_torch, repair)
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
        cmd = flatpak_cmd(*pip_install(python, *(choice.pip_args if choice else ()), HERE))
        if common.run(cmd, env=clean_env()).returncode != 0:
            raise InstallError(
                f"pip inside the GIMP Flatpak could not install stylecore (see above); check your network, then run: {repair}"
            )
    remove_stale_flatpak_envs(flatpak, keep=venv)
    return python, version


def _create_venv(venv: Path, version: str, system_torch: bool, repair: str) -> None:
    say(f"creating the Flatpak worker environment {venv} with the sandbox's Python {version}")
    # The runtime's own torch (a runtime extension, say) is reused rather than downloaded again.
    base = ["-m", "venv", *(["--system-site-packages"] if system_torch else [])]
    r = common.run(flatpak_cmd("python3", *base, venv), capture_output=True, env=clean_env())
    if r.returncode != 0 and "ensurepip" in (r.stdout + r.stderr):
        say("the sandbox's Python has no ensurepip; creating the environment without pip")
        r = common.run(flatpak_cmd("python3", *base, "--without-pip", venv), capture_output=True, env=clean_env())
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise InstallError(f"the sandbox's Python could not create {venv}: {last}; run: {repair}")
    (venv / MARKER).write_text("made by stylecore's install.py for the GIMP Flatpak\n")


def install_stylecore_copy(venv: Path, version: str) -> None:
    """stylecore is pure Python: a copy in site-packages makes `python -m stylecore` work without pip."""
    target = site_packages(venv, version) / "stylecore"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(HERE / "stylecore", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def bootstrap_pip(venv: Path, version: str, repair: str) -> None:
    """Puts pip (pure Python, any version) into a venv made without ensurepip, using this Python's pip."""
    say("installing pip into the Flatpak environment (the runtime's Python ships none)")
    cmd = pip_install(Path(sys.executable), "--target", site_packages(venv, version), "pip")
    if common.run(cmd, env=clean_env()).returncode != 0:
        raise InstallError(
            f"could not install pip into {venv}: install pip for this Python ('{sys.executable} -m ensurepip'), then run: {repair}"
        )


def our_envs(flatpak: Flatpak) -> list[Path]:
    """The Flatpak worker environments install.py made (a link or a folder without its marker is not one)."""
    return [p for p in envs_root(flatpak).glob("venv-py*") if not p.is_symlink() and (p / MARKER).is_file()]


def remove_stale_flatpak_envs(flatpak: Flatpak, keep: Path) -> None:
    """After the runtime's Python moved (3.12 -> 3.13), the old environment is dead weight."""
    for old in our_envs(flatpak):
        if old != keep:
            shutil.rmtree(old)
            say(f"removed the environment for the runtime's previous Python: {old}")


def ensure_flatpak_weights(python: Path, args: argparse.Namespace) -> None:
    """Weights in the sandbox's cache (~/.var/app/org.gimp.GIMP/cache/stylecore), where its worker looks.

    Copied from --weights and --instant or the host cache when it has them, so they are downloaded at most once.
    """
    weights = Path(args.weights).resolve() if args.weights else host_weights_file()
    instant = Path(args.instant).resolve() if args.instant else host_instant_folder()
    for cmd in fetch_commands(flatpak_cmd(python), weights, instant):
        r = common.run([str(c) for c in cmd], capture_output=True, env=clean_env())
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            raise InstallError(
                f"weights could not be placed in the Flatpak's cache (see above); run: {repair_command(args)} --weights FILE --instant FILE"
            )
        say(f"weights ready inside the Flatpak: {' '.join(r.stdout.split())}")
