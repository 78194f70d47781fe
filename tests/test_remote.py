"""stylecore/protocol/ssh.py: destinations, the ssh command line, and each ssh failure as one line, through a real sshd."""

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from stylecore.images.arrays import from_array, to_array
from stylecore.protocol import pixels, ssh
from stylecore.protocol.errors import BadInput
from stylecore.protocol.ssh import Destination
from tests.sshd import free_port, keygen

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gpu-box", Destination("gpu-box")),
        ("me@gpu-box", Destination("gpu-box", "me")),
        ("me@192.168.1.20:2222", Destination("192.168.1.20", "me", 2222)),
        ("[::1]:2222", Destination("::1", None, 2222)),
        ("me@[fe80::1%eth0]", Destination("fe80::1%eth0", "me")),
        ("::1", Destination("::1")),
        ("first.last@host.example.org:22", Destination("host.example.org", "first.last", 22)),
    ],
)
def test_destinations(text, expected):
    assert ssh.parse_destination(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no SSH destination"),
        ("-oProxyCommand=touch /tmp/x", "starts with '-'"),
        ("me@-oProxyCommand=x", "is not a host name"),
        ("host:0", "port '0' must be a number 1..65535"),
        ("host:65536", "must be a number"),
        ("host:", "port '' must be"),
        ("host:ssh", "port 'ssh' must be"),
        ("[::1", "write an IPv6 address as"),
        ("[::1]2222", "write an IPv6 address as"),
        ("[gpu]:22", "is not an IPv6 address"),
        ("my user@host", "is not a user name"),
        ("host name", "is not a host name"),
        ("-me@host", "starts with '-'"),
    ],
)
def test_bad_destinations_are_one_line(text, message):
    one_bad_input_line(ssh.parse_destination, text, message)


def test_destination_round_trips_as_text():
    for text in ("me@gpu:2222", "me@[::1]:2222", "gpu"):
        assert str(ssh.parse_destination(text)) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("IdentityFile", "is not KEY=VALUE"),
        ("=x", "is not KEY=VALUE"),
        ("-oProxyCommand=x", "is not KEY=VALUE"),
        ("Port=22 -oX=y", "Port: '22 -oX=y' is not a value it takes"),  # no second option hidden in a value
        ("ProxyCommand=nc %h %p", "SSH option ProxyCommand is not passed on"),
        ("localcommand=id", "SSH option localcommand is not passed on"),
        ("Tunnel=yes", "is not passed on"),  # not on the allowlist: refused whether or not it is known to be harmful
        ("IdentityFile=/x\n-oProxyCommand=y", "control character"),
        ("IdentityFile=-oProxyCommand=y", "IdentityFile: '-oProxyCommand=y' is not a value it takes"),
        ("ConnectTimeout=0", "is not a value it takes"),
        ("StrictHostKeyChecking=maybe", "is not a value it takes"),
        ("ProxyJump=me@jump.example.org,-oProxyCommand=x", "is not a value it takes"),
    ],
)
def test_ssh_options_are_checked(text, message):
    one_bad_input_line(ssh.parse_ssh_option, text, message)


def one_bad_input_line(parse, text, message):
    with pytest.raises(BadInput, match=message) as info:
        parse(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, passed",
    [
        ("IdentityFile=~/.ssh/gpu_ed25519", "IdentityFile=~/.ssh/gpu_ed25519"),
        ("identityfile = ~/k", "IdentityFile=~/k"),  # ssh's keys are case-insensitive: passed on as the allowlist spells them
        ("Port=2222", "Port=2222"),
        ("ProxyJump=me@jump.example.org:2222", "ProxyJump=me@jump.example.org:2222"),
        ("StrictHostKeyChecking=accept-new", "StrictHostKeyChecking=accept-new"),
        ("ConnectTimeout=5", "ConnectTimeout=5"),
    ],
)
def test_the_options_a_user_needs_are_passed_on(text, passed):
    assert ssh.parse_ssh_option(text) == passed


def test_ssh_argv_shape():
    argv = ssh.ssh_argv(
        Destination("gpu", "me", 2222),
        ["/opt/sc/python", "-u", "-m", "stylecore", "worker"],
        options=["IdentityFile=~/k", "ConnectTimeout=5"],
    )
    assert argv[:4] == ["ssh", "-T", "-x", "-a"]  # no terminal, no X11 and no agent forwarding, whatever ssh_config says
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    # ssh keeps the first value it gets: the safety options come before anything the user passes ...
    fixed = [options.index(o) for o in ssh.FIXED_OPTIONS]
    assert {"ClearAllForwardings=yes", "PermitLocalCommand=no", "ControlMaster=no", "ControlPersist=no"} <= set(ssh.FIXED_OPTIONS)
    assert max(fixed) < options.index("IdentityFile=~/k")
    # ... and the user's own come before our defaults, which they may replace
    assert options.index("ConnectTimeout=5") < options.index(f"ConnectTimeout={ssh.CONNECT_TIMEOUT}")
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:] == ["me@gpu", "--", "/opt/sc/python -u -m stylecore worker"]
    assert ssh.ssh_argv(Destination("gpu"), "python3 -m stylecore worker")[-1] == "python3 -m stylecore worker"
    with pytest.raises(BadInput, match="no remote worker command"):
        ssh.ssh_argv(Destination("gpu"), " ")
    with pytest.raises(BadInput, match="SSH option ProxyCommand is not passed on"):  # the argv is never built around one
        ssh.ssh_argv(Destination("gpu"), "w", options=["ProxyCommand=nc %h %p"])


@pytest.mark.parametrize(
    "stderr, message",
    [
        ("ssh: Could not resolve hostname gpu: Name or service not known\r\n", "the host name 'gpu' is unknown"),
        ("ssh: connect to host gpu port 22: No route to host\r\n", "cannot be reached"),
        ("ssh: connect to host gpu port 22: Connection timed out\r\n", "cannot be reached"),
        ("kex_exchange_identification: read: Connection reset by peer\r\n", "ssh failed (kex_exchange_identification"),
    ],
)
def test_network_failures_that_need_a_network_are_classified_from_stderr(stderr, message):
    assert message in ssh.explain_failure(255, stderr, Destination("gpu"), ready=False)


def test_the_workers_own_exit_is_not_an_ssh_failure():
    assert ssh.explain_failure(0, "", Destination("gpu"), ready=True) is None
    assert ssh.explain_failure(2, "stylecore worker: bad input\n", Destination("gpu"), ready=True) is None


# -- through a real OpenSSH server on 127.0.0.1 -------------------------------------------------------------


def run_ssh(server, command, *, destination=None, timeout=60, **option_overrides):
    argv = ssh.ssh_argv(destination or server.destination, command, options=server.options(**option_overrides))
    return subprocess.run(argv, capture_output=True, timeout=timeout)


def explain(server, result, *, ready=False, destination=None):
    message = ssh.explain_failure(result.returncode, result.stderr.decode(), destination or server.destination, ready=ready)
    assert message is not None and "\n" not in message, message
    return message


def test_a_command_runs_through_the_test_sshd(sshd):
    result = run_ssh(sshd, "echo hello")
    assert (result.returncode, result.stdout) == (0, b"hello\n"), result.stderr


def test_refused_authentication(sshd, tmp_path):
    keygen(tmp_path / "stranger")
    result = run_ssh(sshd, "echo hello", identity=tmp_path / "stranger")
    assert result.returncode == 255
    message = explain(sshd, result)
    assert "the login was refused" in message and f"ssh-copy-id -p {sshd.port} {sshd.user}@127.0.0.1" in message


def test_unknown_host_key(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = run_ssh(sshd, "echo hello", known_hosts=empty)
    assert result.returncode == 255 and result.stdout == b""
    assert f"its host key is not known yet; run 'ssh -p {sshd.port} {sshd.user}@127.0.0.1' once" in explain(sshd, result)


def test_changed_host_key(sshd, tmp_path):
    wrong = tmp_path / "known_hosts"
    wrong.write_text(sshd.known_hosts_line(keygen(tmp_path / "other_host")))
    result = run_ssh(sshd, "echo hello", known_hosts=wrong)
    assert result.returncode == 255 and result.stdout == b""
    assert "its host key has CHANGED" in explain(sshd, result) and "ssh-keygen -R 127.0.0.1" in explain(sshd, result)


def test_remote_command_missing(sshd):
    result = run_ssh(sshd, "/nonexistent/venv/bin/python -u -m stylecore worker")
    assert result.returncode == 127
    message = explain(sshd, result)
    assert "the remote worker command was not found there" in message and "python3 install.py --no-plugin" in message


def test_connection_refused(sshd):
    closed = Destination("127.0.0.1", sshd.user, free_port())
    result = run_ssh(sshd, "echo hello", destination=closed)
    assert "nothing accepts SSH connections there (connection refused)" in explain(sshd, result, destination=closed)


ECHO_LOOP = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


def test_dropped_connection_mid_run(sshd):
    argv = ssh.ssh_argv(sshd.destination, ["python3", "-c", ECHO_LOOP], options=sshd.options())
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b'{"event": "ready"}\n')
        proc.stdin.flush()
        assert proc.stdout.readline() == b'{"event": "ready"}\n'  # the far end is up: what fails now fails mid-run
        assert sshd.session_pids(), "no session process to kill"
        sshd.kill_sessions()
        assert proc.stdout.read() == b""
        returncode = proc.wait(timeout=30)
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert returncode == 255
    message = ssh.explain_failure(returncode, stderr, sshd.destination, ready=True)
    assert message.startswith(f"{sshd.destination}: the connection dropped mid-run"), message


def test_stop_leaves_nothing_running(sshd):
    argv = ssh.ssh_argv(sshd.destination, "sleep 600", options=sshd.options())
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not any(_cmdline(pid).startswith(b"sleep") for pid in sshd.session_pids()):
        assert time.monotonic() < deadline, "the remote sleep never started"
        time.sleep(0.1)
    pids = sshd.session_pids()
    sshd.stop()
    assert client.wait(timeout=30) == 255
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists() and b"Z" not in _state(pid)]


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return b"Z"


# The far end as the worker will be: read one header line and its payload, decode, encode again, send back.
# pixels.py is loaded as a plain module, so the far end's system python3 needs neither torch nor numpy.
ECHO_PIXELS = f"""
import json, sys
sys.path.insert(0, {str(REPO / "stylecore" / "protocol")!r})
import pixels
header = json.loads(sys.stdin.buffer.readline())
payload = sys.stdin.buffer.read(header["bytes"])
image = pixels.decode(header["pixels"], payload)
descriptor, out = pixels.encode(image)
sys.stdout.buffer.write(json.dumps({{"pixels": descriptor, "bytes": len(out)}}).encode() + b"\\n" + out)
"""


@pytest.mark.parametrize("sample", ["f32", "u16"])
def test_pixels_round_trip_through_ssh_byte_exact(sshd, sample):
    rng = np.random.default_rng(5)
    array = rng.random((123, 97, 4)).astype(np.float32)  # values off the 8-bit grid
    if sample == "u16":
        array = (array * 65535).astype(np.uint16)
    descriptor, payload = pixels.encode(from_array(array))
    header = json.dumps({"pixels": descriptor, "bytes": len(payload)}).encode() + b"\n"
    argv = ssh.ssh_argv(sshd.destination, ["python3", "-c", ECHO_PIXELS], options=sshd.options())
    result = subprocess.run(argv, input=header + payload, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    line, _, body = result.stdout.partition(b"\n")
    back = json.loads(line)
    assert back["bytes"] == len(body)
    received = to_array(pixels.decode(back["pixels"], body))
    assert received.dtype == array.dtype and received.tobytes() == array.tobytes()
