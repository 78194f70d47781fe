"""stylecore/guard.py, the process that owns the worker's private folder: run for real, with a stand-in worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stylecore.protocol import host

# A worker that ignores SIGTERM and stdin EOF, the worst case the guard must still end.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
PARENT = textwrap.dedent("""
    import json, subprocess, sys
    guard, workdir, worker = sys.argv[1:4]
    proc = subprocess.Popen([sys.executable, "-I", "-u", guard, str(__import__("os").getpid()), workdir, "--",
                             sys.executable, "-c", worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdout.readline()
    print(json.dumps({"guard": proc.pid}), flush=True)
    sys.stdin.readline()
""")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def until(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def workdir_with_files(tmp_path: Path) -> Path:
    workdir = tmp_path / "stylecore-gimp-1-x"
    workdir.mkdir()
    (workdir / "content.npy").write_bytes(b"pixels")
    return workdir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal and /proc are Linux only")
def test_parent_killed_stops_the_worker_and_removes_the_folder(tmp_path):
    workdir = workdir_with_files(tmp_path)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(host.GUARD), str(workdir), STUBBORN], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    guard = json.loads(parent.stdout.readline())["guard"]
    assert until(lambda: children(guard)), "the guard started no worker"
    worker = children(guard)[0]
    parent.kill()  # as GIMP's Cancel kills the plug-in: no cleanup of the parent's runs
    parent.wait()
    assert until(lambda: not alive(worker) and not alive(guard), hostenv_grace()), "the worker outlived its plug-in"
    assert not workdir.exists(), "the worker's folder outlived the plug-in"


def hostenv_grace() -> float:
    from stylecore.protocol import guard

    return guard.GRACE + 15


def test_worker_that_exits_leaves_no_folder_and_its_status_is_passed_on(tmp_path):
    workdir = workdir_with_files(tmp_path)
    cmd = [sys.executable, "-I", "-u", str(host.GUARD), str(os.getpid()), str(workdir), "--"]
    r = subprocess.run(
        [*cmd, sys.executable, "-c", "import os, sys; print(os.getcwd()); sys.exit(3)"], capture_output=True, text=True
    )
    assert r.returncode == 3 and r.stdout.strip() == str(workdir)  # the worker runs in its private folder
    assert not workdir.exists()
    workdir = workdir_with_files(tmp_path)
    r = subprocess.run([*cmd, sys.executable, "-c", "import sys; sys.stdin.read()"], input="", capture_output=True, text=True)
    assert r.returncode == 0 and not workdir.exists()  # stdin EOF ends the worker, and the folder goes with it


def test_guard_refuses_a_command_line_it_does_not_understand(tmp_path):
    r = subprocess.run([sys.executable, "-I", str(host.GUARD), "x", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0 and "usage: guard.py PARENT_PID WORKDIR -- WORKER_ARGV" in r.stderr
    assert tmp_path.exists()  # nothing removed on a bad call


@pytest.mark.skipif(os.name != "posix", reason="the POSIX signal path")
def test_sigterm_to_the_guard_stops_a_stubborn_worker_within_the_grace(tmp_path):
    workdir = workdir_with_files(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-u", str(host.GUARD), str(os.getpid()), str(workdir), "--", sys.executable, "-c", STUBBORN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout.readline() == b"up\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=hostenv_grace()) == 0 and time.monotonic() - started < hostenv_grace()
    assert not workdir.exists()
