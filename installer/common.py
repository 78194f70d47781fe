"""What every installer step shares: the checkout's paths, messages, the one error type, running commands."""

from __future__ import annotations

import argparse
import errno
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


def error(msg: str) -> None:
    """The one error line (on stderr), whatever the message held: newlines and runs of spaces become one space."""
    print(f"install: error: {' '.join(msg.split())}", file=sys.stderr, flush=True)


# What to do about an OSError, by its errno: the fix half of the one line that os_error_line writes.
OS_FIXES = {
    errno.EACCES: "make it writable for you (chmod u+w), or choose another folder",
    errno.EPERM: "make it writable for you (chmod u+w), or choose another folder",
    errno.EROFS: "it is on a read-only file system; choose a folder on a writable one",
    errno.ENOTDIR: "a file stands where a folder is needed; move that file away",
    errno.EEXIST: "something is already there; move it away",
    errno.EISDIR: "a folder stands where a file is needed; move that folder away",
    errno.ENOSPC: "free some disk space",
}


def os_error_line(exc: OSError, repair: str) -> str:
    """Any OSError from any step as one line: the path, what the system said, what to do, the repair command."""
    where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    what = exc.strerror or str(exc) or exc.__class__.__name__
    fix = OS_FIXES.get(exc.errno or 0, "fix that, or choose another folder")
    return f"{where + ': ' if where else ''}{what}; {fix}; then run: {repair}"


def unwritable(folder: Path) -> str | None:
    """Why folder cannot be made or written to, with the fix (a file where a folder must be, a read-only folder),
    or None if it can. Looks at the nearest part of the path that exists, as mkdir(parents=True) would meet it."""
    existing = folder
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder (a file or a broken link stands there): move it away"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is read-only for you: make it writable (chmod u+w '{existing}')"
    return None


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
