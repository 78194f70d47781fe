"""The guard: starts the worker, waits for it, and removes its private folder whatever ends it.

    python -I -u guard.py PARENT_PID WORKDIR -- WORKER_ARGV...

PARENT_PID 0: the guard's parent is a launcher (`flatpak run` from install.py --check), not the plug-in.

Standard library only and run as a script (never imported as part of the engine), with the worker's own
interpreter. GIMP's Cancel kills the plug-in, so no `finally` of the plug-in runs: the guard owns WORKDIR.
The worker keeps the plug-in's stdin and stdout (it ends at stdin EOF, which the kernel delivers when the
plug-in dies); on Linux the guard also asks for SIGTERM when its parent dies, then stops the worker, and
kills it if it has not ended GRACE seconds later.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

GRACE = 10.0  # seconds a worker has to end after SIGTERM before it is killed
CREATE_NO_WINDOW = 0x08000000  # subprocess.CREATE_NO_WINDOW, which exists only on Windows builds of Python
USAGE = "usage: guard.py PARENT_PID WORKDIR -- WORKER_ARGV..."


def ask_for_death_signal() -> None:
    """PR_SET_PDEATHSIG: SIGTERM to this process when its parent thread ends (Linux only, best effort)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except Exception:  # a libc without prctl: stdin EOF still ends the worker
        pass


def parse(argv: Sequence[str]) -> tuple[int, str, list[str]]:
    if len(argv) < 4 or argv[2] != "--" or not argv[0].isdigit():
        raise SystemExit(USAGE)
    return int(argv[0]), argv[1], list(argv[3:])


def supervise(parent: int, workdir: str, command: list[str]) -> int:
    """Runs command with this process's stdin/stdout/stderr; returns its exit status (0 if it was stopped)."""
    stopping: list[float] = []
    child: subprocess.Popen[bytes] | None = None

    def on_term(*_: object) -> None:
        stopping.append(time.monotonic())
        if child is not None and child.poll() is None:
            child.terminate()

    try:
        ask_for_death_signal()
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, on_term)
        if parent and os.name == "posix" and os.getppid() != parent:
            return 0  # the parent died before the death signal was armed: nothing to run for
        kw: dict[str, object] = {"creationflags": CREATE_NO_WINDOW} if os.name == "nt" else {}
        if sys.platform.startswith("linux"):
            kw["preexec_fn"] = ask_for_death_signal
        # cwd: `-m` puts it first on the worker's sys.path, so only the private folder is safe there.
        child = subprocess.Popen(command, stdin=0, stdout=1, stderr=2, cwd=workdir, **kw)  # type: ignore[call-overload]
        null = os.open(os.devnull, os.O_RDWR)  # the worker alone holds the pipes, so its end is the plug-in's EOF
        os.dup2(null, 0)
        os.dup2(null, 1)
        while child.poll() is None:
            if stopping and time.monotonic() - stopping[0] > GRACE:
                child.kill()
            try:
                child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        return child.returncode if child.returncode > 0 else 0
    finally:
        os.chdir(os.path.dirname(os.path.abspath(workdir)))  # the folder is the worker's cwd: leave it first
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parent, workdir, command = parse(sys.argv[1:] if argv is None else argv)
    return supervise(parent, workdir, command)


if __name__ == "__main__":
    sys.exit(main())
