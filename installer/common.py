"""What every installer step shares: the checkout's paths, messages, the one error type, running commands."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stylecore.protocol import host

HERE = Path(__file__).resolve().parents[1]  # the stylecore checkout
PLUGIN_NAME = "style-transfer"
PLUGIN_SOURCE = HERE / "gimp_plugin" / PLUGIN_NAME
MARKER = ".installed-by-stylecore"


class InstallError(Exception):
    """A step failed; the message is one line that says what to do (main prints it and exits 1)."""


def say(msg: str) -> None:
    print(f"install: {msg}", flush=True)


def run(cmd: Sequence[object], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], text=True, **kw)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This shell's environment cleaned by the plug-in's own rule, so children see what the worker will."""
    env = host.worker_environment(os.environ)
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


def python_version_of(cmd: Sequence[object], env: Mapping[str, str] | None = None) -> str | None:
    """X.Y of the interpreter that cmd starts, or None if it does not run."""
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


def this_python_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"
