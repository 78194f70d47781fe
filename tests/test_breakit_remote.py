"""Break-it tests for the remote path (issue 26): what a hostile or mistaken input does to `--remote`, the dialog's
"Run on" fields and `install.py --check --remote`.

- kind 2: ssh options that would run a program here, open a port or leave a process behind are refused, in one
  line, before ssh starts, by every entry point; the program they name never runs (a marker file would show it);
- kind 3b: a far end that never gets ready ends in one line within the client's ready timeout, and a login banner
  glued to the ready line does not hide the worker;
- kind 3c and 4: a pipe or a device given as an input to `--remote` is one line before ssh starts, in bounded time
  and memory (the local path's own input checks run first);
- kind 9: a port in other scripts' digits is one line (never a traceback, never port 22), and `--remote ''` is exit 2.

Each CLI run goes through an `ssh` on PATH that records that it was started before it runs the real one: "before
ssh starts" is then something the test sees, not something it assumes.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import resource
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stylecore.protocol import client, errors, messages, ssh
from stylecore.protocol.client import WorkerClient
from stylecore.protocol.errors import BadInput, RemoteFailure
from tests.sshd import free_port

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "gimp_plugin" / "style-transfer"
MEMORY_CAP = 2 << 30  # bytes of heap for a CLI run: far above what one needs, far below what /dev/zero would take
SECONDS = 120  # a CLI run that only checks its inputs takes seconds (importing torch); anything longer is a hang


def plugin_arguments():
    """The plug-in's arguments module, as GIMP's Python imports it."""
    sys.path.insert(0, str(PLUGIN_DIR))
    try:
        import arguments

        return arguments
    finally:
        sys.path.remove(str(PLUGIN_DIR))


# --- the world around a run: markers, a recording ssh, a far end -----------------------------------------------


@dataclass
class Markers:
    """A program and a shared library that each create a file when they run, and the ssh that records its starts."""

    folder: Path
    program: Path  # a script: ProxyCommand, LocalCommand, XAuthLocation run such a thing
    library: Path  # a shared library with a constructor (PKCS11Provider, SecurityKeyProvider load such a thing)
    ran: Path  # created by the program or the library
    ssh_log: Path  # one line per start of ssh
    env: dict[str, str]

    def program_ran(self) -> bool:
        return self.ran.exists()

    def ssh_starts(self) -> list[str]:
        return self.ssh_log.read_text().splitlines() if self.ssh_log.exists() else []


LIBRARY_SOURCE = """
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void ran(void) {{
    int fd = open("{ran}", O_CREAT | O_WRONLY, 0600);
    if (fd >= 0) close(fd);
}}
"""


@pytest.fixture
def markers(tmp_path) -> Markers:
    folder = tmp_path / "markers"
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    ran, ssh_log = folder / "RAN", folder / "ssh-starts"
    program = folder / "marker.sh"
    program.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(ran))}\n")
    program.chmod(0o755)
    library = folder / "libmarker.so"
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler:  # a library that would really run; without a compiler the refusal is still what is tested
        source = folder / "marker.c"
        source.write_text(LIBRARY_SOURCE.format(ran=ran))
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True, capture_output=True)
    else:
        shutil.copy(program, library)
    real = shutil.which("ssh")
    wrapper = bin_dir / "ssh"
    then = f'exec {shlex.quote(real)} "$@"' if real else "exit 255"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(ssh_log))}\n{then}\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "DISPLAY": ":0"}
    return Markers(folder, program, library, ran, ssh_log, env)


@dataclass
class FarEnd:
    destination: str
    options: list[str]


@pytest.fixture
def far_end(request) -> FarEnd:
    """The test sshd when it can run (so that, were an option passed on, ssh would get far enough to run its program),
    else a port on 127.0.0.1 where nothing listens."""
    try:
        server = request.getfixturevalue("sshd")
    except pytest.skip.Exception:
        return FarEnd(f"{getpass.getuser()}@127.0.0.1:{free_port()}", [])
    return FarEnd(str(server.destination), server.options())


def cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))


def run(argv: list[str], env: dict[str, str], timeout: float = SECONDS) -> tuple[subprocess.CompletedProcess, float]:
    """Runs argv under the memory cap; a run that outlives `timeout` fails the test (a hang), and is killed."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=cap_memory, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout:.0f} s: {shlex.join(argv)}")
    return done, time.monotonic() - started


def stylecore_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stylecore", *args]


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"not one line: {text!r}"
    assert "Traceback" not in text
    return lines[0]


# --- kind 2: ssh options that run a program here, open a port or leave a process behind ---------------------------------


@dataclass(frozen=True)
class Danger:
    name: str
    options: tuple[str, ...]  # with {program}, {library}, {port}, {folder} to fill in

    def given(self, m: Markers, port: int) -> list[str]:
        return [o.format(program=m.program, library=m.library, port=port, folder=m.folder) for o in self.options]


DANGERS = [
    Danger("PKCS11Provider", ("PKCS11Provider={library}",)),  # loads and runs a library
    Danger("SecurityKeyProvider", ("SecurityKeyProvider={library}",)),
    Danger("XAuthLocation", ("ForwardX11=yes", "XAuthLocation={program}")),  # runs a program as "xauth"
    Danger("XAuthLocation alone", ("XAuthLocation={program}",)),
    Danger("ControlMaster", ("ControlMaster=yes", "ControlPath=/tmp/stylecore-test-{port}-%C")),  # an `ssh [mux]` left behind
    Danger("ControlPersist", ("ControlPersist=600",)),
    Danger("DynamicForward", ("DynamicForward=127.0.0.1:{port}",)),  # a listening port here
    Danger("LocalForward", ("LocalForward=127.0.0.1:{port} 127.0.0.1:22",)),
    Danger("RemoteForward", ("RemoteForward=127.0.0.1:{port} 127.0.0.1:22",)),
    Danger("ProxyCommand", ("ProxyCommand={program}",)),  # runs a program instead of connecting
    Danger("ProxyCommand, any spelling", ("proxycommand = {program}",)),
    Danger("LocalCommand", ("PermitLocalCommand=yes", "LocalCommand={program}")),
    Danger("KnownHostsCommand", ("KnownHostsCommand={program}",)),
]


def refused_line(line: str, given: list[str]) -> None:
    """The one line names an option that was given and says it is not passed on (or why its value is not taken)."""
    keys = [o.partition("=")[0].strip() for o in given]
    assert line.startswith(("SSH option", "stylecore: error: SSH option")) and any(key in line for key in keys), (line, keys)
    assert "not passed on" in line or "not KEY=VALUE" in line, line


@pytest.mark.parametrize("danger", DANGERS, ids=[d.name for d in DANGERS])
def test_a_dangerous_ssh_option_is_refused_by_the_cli_before_ssh_starts(
    danger, markers, far_end, tmp_path, content_png, style_png
):
    given = danger.given(markers, free_port())
    out = tmp_path / "out.png"
    argv = stylecore_cli(str(content_png), str(style_png), "-o", str(out), "--remote", far_end.destination)
    argv += ["--remote-command", "true"]  # the far end is this machine too: it must not run the marker
    for option in [*far_end.options, *given]:
        argv += ["--ssh-option", option]
    done, _seconds = run(argv, markers.env)
    assert not markers.program_ran(), "the program named in an ssh option ran"
    assert markers.ssh_starts() == [], "ssh was started with the option"
    assert done.returncode == errors.EXIT_BAD_INPUT, done.stderr
    refused_line(one_line(done.stderr), given)
    assert not out.exists()


@pytest.mark.parametrize("danger", DANGERS, ids=[d.name for d in DANGERS])
def test_a_dangerous_ssh_option_is_refused_by_the_dialogs_fields(danger, markers, far_end):
    arguments = plugin_arguments()
    given = danger.given(markers, free_port())
    given = [option.replace(" = ", "=") for option in given]  # the field splits on spaces (a forward's two words stay two)
    values = {"run-on": far_end.destination, "remote-command": "", "ssh-options": " ".join([*far_end.options, *given])}
    with pytest.raises(BadInput) as info:  # the procedure answers CALLING_ERROR before any worker starts
        arguments.run_on(values.get)
    refused_line(one_line(str(info.value)), given)
    assert not markers.program_ran()


@pytest.mark.parametrize("danger", DANGERS, ids=[d.name for d in DANGERS])
def test_a_dangerous_ssh_option_is_refused_by_install_check_remote(danger, markers, far_end):
    given = danger.given(markers, free_port())
    argv = [sys.executable, str(REPO / "install.py"), "--check", "--remote", far_end.destination]
    argv += ["--remote-command", "true"]  # the far end is this machine too: it must not run the marker
    for option in [*far_end.options, *given]:
        argv += ["--ssh-option", option]
    done, _seconds = run(argv, markers.env)
    assert not markers.program_ran(), "the program named in an ssh option ran"
    assert markers.ssh_starts() == [] and "starting the worker" not in done.stdout, "ssh was started with the option"
    assert done.returncode == 1, done.stdout + done.stderr
    problems = [line for line in done.stdout.splitlines() if "PROBLEM:" in line]
    assert len(problems) == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    refused_line(problems[0].split("PROBLEM: ", 1)[1], given)


def test_an_option_hidden_in_an_allowed_options_value_never_runs(markers, far_end, tmp_path, content_png, style_png):
    """A path option's value with a second option after a space: ssh itself refuses the extra word; nothing runs."""
    out = tmp_path / "out.png"
    argv = stylecore_cli(str(content_png), str(style_png), "-o", str(out), "--remote", far_end.destination)
    argv += ["--remote-command", "true", "--ssh-option", f"IdentityFile=/nonexistent ProxyCommand={markers.program}"]
    for option in far_end.options:
        argv += ["--ssh-option", option]
    done, _seconds = run(argv, markers.env)
    assert done.returncode in (errors.EXIT_BAD_INPUT, errors.EXIT_REMOTE), done.stderr
    one_line(done.stderr)
    assert not markers.program_ran() and not out.exists()


# --- kind 9: ports in other digits, an empty destination -----------------------------------------------------------


@pytest.mark.parametrize("destination", ["host:\u00b2", "host:\u0662\u0662", "me@[::1]:\u0662\u0662", "host:\uff12\uff12"])
def test_a_port_in_other_digits_is_one_line_never_a_traceback_or_port_22(destination, markers, tmp_path, content_png, style_png):
    with pytest.raises(BadInput, match="must be a number 1..65535") as info:
        ssh.parse_destination(destination)
    one_line(str(info.value))
    with pytest.raises(BadInput, match="must be a number 1..65535"):  # the dialog's "Run on"
        plugin_arguments().run_on({"run-on": destination, "remote-command": "", "ssh-options": ""}.get)
    out = tmp_path / "out.png"
    done, _seconds = run(stylecore_cli(str(content_png), str(style_png), "-o", str(out), "--remote", destination), markers.env)
    assert done.returncode == errors.EXIT_BAD_INPUT and "must be a number 1..65535" in one_line(done.stderr), done.stderr
    assert markers.ssh_starts() == [] and not out.exists()


@pytest.mark.parametrize("option", ["Port=\u0662\u0662", "Port=\u00b2", "ConnectTimeout=\u0665", "ConnectionAttempts=\uff13"])
def test_a_number_option_in_other_digits_is_refused(option):
    with pytest.raises(BadInput, match="is not a value it takes") as info:
        ssh.parse_ssh_option(option)
    one_line(str(info.value))


@pytest.mark.parametrize("destination", ["", " "])
def test_an_empty_remote_is_exit_2_never_a_local_run(destination, markers, tmp_path, content_png, style_png):
    out = tmp_path / "out.png"
    argv = stylecore_cli(str(content_png), str(style_png), "-o", str(out), "--remote", destination)
    done, _seconds = run(argv, markers.env)
    assert done.returncode == errors.EXIT_BAD_INPUT, done.stderr
    assert "no SSH destination" in one_line(done.stderr)
    assert markers.ssh_starts() == [] and not out.exists(), "nothing runs, here or there"


# --- kinds 3c and 4: a pipe or a device as an input to --remote --------------------------------------------------


@pytest.mark.parametrize("role", ["content", "style"])
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "folder"])
def test_a_pipe_or_a_device_as_an_input_is_one_line_before_ssh(kind, role, markers, tmp_path, content_png, style_png):
    if kind == "fifo":
        odd = tmp_path / "photo.png"
        os.mkfifo(odd)  # no writer ever comes: reading it would wait for ever
    elif kind == "folder":
        odd = tmp_path / "photo.png"
        odd.mkdir()
    else:
        odd = Path(kind)  # endless: read whole, it grows until memory runs out
    content, style = (odd, style_png) if role == "content" else (content_png, odd)
    out = tmp_path / "out.png"
    argv = stylecore_cli(str(content), str(style), "-o", str(out), "--remote", f"me@127.0.0.1:{free_port()}")
    done, seconds = run(argv, markers.env)
    assert done.returncode == errors.EXIT_BAD_INPUT, done.stderr
    line = one_line(done.stderr)
    assert str(odd) in line and ("not a regular file" in line or "is a folder" in line), line
    assert markers.ssh_starts() == [], "ssh started before the inputs were checked"
    assert not out.exists()


def test_a_non_image_is_refused_before_ssh_starts(markers, tmp_path, style_png):
    """The local path's header check: a large file that is no image is one line here, never read and shipped first."""
    junk = tmp_path / "notes.png"
    with open(junk, "wb") as fh:
        fh.truncate(64 << 20)  # sparse: 64 MB of nothing, no disk used
    out = tmp_path / "out.png"
    argv = stylecore_cli(str(junk), str(style_png), "-o", str(out), "--remote", f"me@127.0.0.1:{free_port()}")
    done, _seconds = run(argv, markers.env)
    assert done.returncode == errors.EXIT_BAD_INPUT and "not an image file" in one_line(done.stderr), done.stderr
    assert markers.ssh_starts() == []


# --- kind 3b: a far end that never gets ready, a banner glued to the ready line ------------------------------------------


def test_a_far_end_that_never_gets_ready_ends_in_one_line_within_the_timeout(sshd, monkeypatch):
    # The CLI, the plug-in and install.py --check wait with the default, READY_SECONDS: finite, whatever the far end does.
    assert math.isfinite(client.READY_SECONDS)
    monkeypatch.setattr(client, "READY_SECONDS", 3.0)
    target = ssh.Target.parse(str(sshd.destination), "sleep 100000", sshd.options())
    started = time.monotonic()
    worker = WorkerClient(target)
    with pytest.raises(RemoteFailure) as info:
        worker.wait_ready()
    seconds = time.monotonic() - started
    message = one_line(str(info.value))
    assert str(sshd.destination) in message and "did not get ready within 3 s" in message, message
    assert seconds < 3 + 10, f"{seconds:.0f} s to give up"
    assert not worker.alive(), "ssh still runs after the client gave up"
    assert not os.path.exists(worker.workdir)


# A stand-in far end in the standard library: ready at once (with this stylecore's versions, as a far end must be), then
# a result for each stylize request; it needs neither torch nor a model, so a lost ready line fails in seconds.
STAND_IN = textwrap.dedent(f"""
    import json, sys
    def say(obj):
        sys.stdout.write(json.dumps(obj) + "\\n")
        sys.stdout.flush()
    say({{"event": "ready", "protocol": {messages.PROTOCOL}, "version": {messages.VERSION!r}, "device": "cpu", "gpu": None}})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "stylize":
            say({{"id": request["id"], "event": "progress", "done": 1.0}})
            say({{"id": request["id"], "event": "result", "width": 1, "height": 1}})
""")


@pytest.mark.parametrize(
    "banner",
    [
        pytest.param("Welcome to gpu-box\\n", id="banner-line"),
        pytest.param("Welcome to gpu-box", id="banner-glued-to-ready"),
    ],
)
def test_a_login_banner_before_the_ready_line_does_not_hide_the_worker(sshd, banner):
    command = f"printf {shlex.quote(banner)}; exec python3 -c {shlex.quote(STAND_IN)}"
    target = ssh.Target.parse(str(sshd.destination), command, sshd.options())
    with WorkerClient(target) as worker:
        ready = worker.wait_ready(timeout=30)
        assert ready["protocol"] == messages.PROTOCOL and ready["version"] == messages.VERSION
        request = {
            "op": "stylize",
            "id": "r1",
            "content": "c.png",
            "styles": [{"path": "s.png", "weight": 1.0}],
            "output": "o.png",
        }
        seen = []
        result = worker.run(request, on_event=seen.append)
        assert result.kind == messages.RESULT and result.id == "r1" and [e.kind for e in seen] == [messages.PROGRESS]


def test_the_stand_in_far_end_speaks_the_protocol():
    """The stand-in's ready line is one the client takes (else the banner test would test the stand-in)."""
    done = subprocess.run([sys.executable, "-c", STAND_IN], input="", capture_output=True, text=True, timeout=60)
    ready = json.loads(done.stdout.splitlines()[0])
    assert messages.ready_problem(ready, "gpu", same_version=True) is None
