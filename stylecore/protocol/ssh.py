"""The worker on another machine over OpenSSH: destinations, the ssh command line, and ssh's failures in one line.

Standard library only (the GIMP plug-in imports it). ssh runs non-interactively (BatchMode) with the user's
own keys and known_hosts, so stylecore never sees or stores a password and no worker listens on a port.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import BadInput
from .host import WORKER_ARGS

SSH_EXIT = 255  # ssh's own failures; any other status is the remote command's
NOT_FOUND_EXIT = 127  # the remote shell could not find the command
ALIVE_INTERVAL = 15  # seconds between keep-alives, so a dead link ends the run within ALIVE_INTERVAL * ALIVE_COUNT
ALIVE_COUNT = 3
CONNECT_TIMEOUT = 20
SETUP_HINT = "python3 install.py --no-plugin"  # what prints the worker command on the GPU machine
DEFAULT_COMMAND = shlex.join(["python3", *WORKER_ARGS])  # the far end's worker when none is given: stylecore for python3

FIXED_OPTIONS = ("BatchMode=yes", "ClearAllForwardings=yes", "PermitLocalCommand=no", "ControlMaster=no", "ControlPersist=no")
_HOST = re.compile(r"[A-Za-z0-9_.%-]+")  # names, IPv4, ~/.ssh/config aliases
_HOST6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?")
_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]*")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_PORT = re.compile(r"[0-9]{1,5}")  # ASCII digits only: int() also reads other scripts' digits
_ALGORITHMS = re.compile(r"[+^-]?[A-Za-z0-9@.,_+-]+")


@dataclass(frozen=True)
class Destination:
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def login(self) -> str:
        """What ssh takes as its destination argument (the port goes in -p)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text

    @property
    def args(self) -> str:
        """The port and login as ssh, ssh-copy-id and scp-like tools take them on a command line."""
        return f"-p {self.port} {self.login}" if self.port else self.login

    def ssh_hint(self) -> str:
        """The interactive command that lets the user check the host key and the login by hand."""
        return f"ssh {self.args}"


def parse_destination(text: str) -> Destination:
    """``[user@]host[:port]``, with an IPv6 address as ``[v6]`` or ``[v6]:port`` (a bare v6 address has no port)."""
    raw = text.strip()
    if not raw:
        raise BadInput("no SSH destination; give [user@]host[:port], e.g. me@gpu-box or me@192.168.1.20:2222")
    if raw.startswith("-"):
        raise BadInput(f"SSH destination {raw!r} starts with '-'; give [user@]host[:port]")
    user, _, rest = raw.rpartition("@")
    port_text = ""
    if rest.startswith("["):
        host, bracket, port_part = rest[1:].partition("]")
        if not bracket or (port_part and not port_part.startswith(":")):
            raise BadInput(f"SSH destination {raw!r}: write an IPv6 address as [address] or [address]:port")
        port_text = port_part[1:]
        if not _HOST6.fullmatch(host):
            raise BadInput(f"SSH destination {raw!r}: {host!r} is not an IPv6 address")
    elif rest.count(":") > 1:
        host = rest  # a bare IPv6 address
        if not _HOST6.fullmatch(host):
            raise BadInput(f"SSH destination {raw!r}: {host!r} is not an IPv6 address; write [address]:port")
    else:
        host, _, port_text = rest.partition(":")
        if not host or host.startswith("-") or not _HOST.fullmatch(host):
            raise BadInput(f"SSH destination {raw!r}: {host!r} is not a host name or address; give [user@]host[:port]")
    if user and not _USER.fullmatch(user):
        raise BadInput(f"SSH destination {raw!r}: {user!r} is not a user name; give [user@]host[:port]")
    port = None
    if port_text or rest.endswith(":"):
        if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
            raise BadInput(f"SSH destination {raw!r}: port {port_text!r} must be a number 1..65535")
        port = int(port_text)
    return Destination(host=host, user=user or None, port=port)


def _path(value: str) -> bool:
    """A file name ssh reads from an -o value: one word (ssh splits the value as a config line does)."""
    return not value.startswith("-") and not any(c.isspace() for c in value)


def _number(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: bool(re.fullmatch(r"[0-9]{1,6}", value)) and low <= int(value) <= high


def _one_of(*words: str) -> Callable[[str], bool]:
    return lambda value: value.lower() in words


def _jump(value: str) -> bool:
    """ProxyJump: `none`, or [user@]host[:port] hops separated by commas (never a command)."""
    if value.lower() == "none":
        return True
    try:
        return all(parse_destination(hop) for hop in value.split(","))
    except BadInput:
        return False


YES_NO = _one_of("yes", "no")
# The `ssh -o` options a user may pass, each with its value check. Anything else (ProxyCommand, LocalCommand,
# PKCS11Provider, SecurityKeyProvider, XAuthLocation, ControlMaster, the forwardings, ...) can run a program on this
# computer, open a port or leave a process behind: such options belong in ~/.ssh/config, which the user controls.
ALLOWED_OPTIONS: dict[str, tuple[str, Callable[[str], bool]]] = {
    key.lower(): (key, check)
    for key, check in (
        ("IdentityFile", _path),
        ("CertificateFile", _path),
        ("UserKnownHostsFile", _path),
        ("GlobalKnownHostsFile", _path),
        ("IdentityAgent", _path),
        ("IdentitiesOnly", YES_NO),
        ("User", lambda v: bool(_USER.fullmatch(v))),
        ("Port", _number(1, 65535)),
        ("HostName", lambda v: bool(_HOST.fullmatch(v) or _HOST6.fullmatch(v))),
        ("HostKeyAlias", lambda v: bool(_HOST.fullmatch(v))),
        ("ProxyJump", _jump),
        ("ConnectTimeout", _number(1, 3600)),
        ("ConnectionAttempts", _number(1, 100)),
        ("StrictHostKeyChecking", _one_of("yes", "accept-new", "no", "off")),
        ("CheckHostIP", YES_NO),
        ("Compression", YES_NO),
        ("AddressFamily", _one_of("any", "inet", "inet6")),
        ("LogLevel", _one_of("quiet", "fatal", "error", "info", "verbose", "debug", "debug1", "debug2", "debug3")),
        ("PreferredAuthentications", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("Ciphers", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("MACs", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("KexAlgorithms", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("HostKeyAlgorithms", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("PubkeyAcceptedAlgorithms", lambda v: bool(_ALGORITHMS.fullmatch(v))),
        ("GSSAPIAuthentication", YES_NO),
    )
}


def parse_ssh_option(text: str) -> str:
    """A ``KEY=VALUE`` for ``ssh -o``: a key from ALLOWED_OPTIONS with a value that passes its check."""
    key, equals, value = text.strip().partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not _KEY.fullmatch(key) or not value:
        raise BadInput(f"SSH option {text!r} is not KEY=VALUE (e.g. IdentityFile=~/.ssh/gpu_ed25519)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadInput(f"SSH option {key}: the value holds a control character; give it on one line")
    allowed = ALLOWED_OPTIONS.get(key.lower())
    if allowed is None:
        raise BadInput(
            f"SSH option {key} is not passed on: stylecore passes only options that cannot run a program here, open a port "
            "or leave a process behind (IdentityFile, UserKnownHostsFile, Port, User, ProxyJump, ConnectTimeout and a few "
            "more); set it for the host in ~/.ssh/config instead"
        )
    name, check = allowed
    if not check(value):
        raise BadInput(f"SSH option {name}: {value!r} is not a value it takes; see 'man ssh_config'")
    return f"{name}={value}"


def ssh_argv(
    destination: Destination, remote_command: str | Sequence[str], *, options: Sequence[str] = (), ssh: str = "ssh"
) -> list[str]:
    """The argv that runs ``remote_command`` on ``destination``, stdin and stdout carried, no terminal, no prompt.

    ssh keeps the first value it gets for each option: the fixed ones come first (no agent or X11 forwarding, no
    forwarded port, no local command, no lingering master connection, whatever ~/.ssh/config says), then the user's,
    then our defaults for keep-alives and the connect timeout, which the user's may replace.
    A sequence command is quoted for the remote shell; a string is passed as it is (the command install.py prints).
    """
    command = remote_command if isinstance(remote_command, str) else shlex.join(remote_command)
    if not command.strip():
        raise BadInput(f"no remote worker command; paste the one that '{SETUP_HINT}' prints on the GPU machine")
    defaults = (
        f"ServerAliveInterval={ALIVE_INTERVAL}",
        f"ServerAliveCountMax={ALIVE_COUNT}",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
    )
    argv = [ssh, "-T", "-x", "-a"]
    for option in (*FIXED_OPTIONS, *(parse_ssh_option(o) for o in options), *defaults):
        argv += ["-o", option]
    if destination.port:
        argv += ["-p", str(destination.port)]
    return argv + [destination.login, "--", command]


@dataclass(frozen=True)
class Target:
    """Where a worker runs over SSH: the destination, its worker command and the extra `ssh -o` options, all checked."""

    destination: Destination
    command: str = DEFAULT_COMMAND
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, destination: str, command: str | None = None, options: Sequence[str] = ()) -> Target:
        """Raises BadInput (one line naming the fix) for a destination or option that cannot be used."""
        checked = tuple(parse_ssh_option(o) for o in options)
        return cls(parse_destination(destination), (command or "").strip() or DEFAULT_COMMAND, checked)

    def argv(self) -> list[str]:
        return ssh_argv(self.destination, self.command, options=self.options)


def explain_failure(returncode: int, stderr: str, destination: Destination, *, ready: bool) -> str | None:
    """One line saying what went wrong and how to fix it, or None when ssh did not fail (the worker's own exit).

    ``ready`` is whether the remote worker's ready event had arrived: after it, ssh's failure is a dropped link.
    """
    text = stderr.replace("\r", "")
    where = str(destination)
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return (
            f"{where}: its host key has CHANGED since you last connected (a reinstalled machine, or someone in between); "
            f"if the change is expected, run 'ssh-keygen -R {destination.host}' and then '{destination.ssh_hint()}' once to accept the new key"
        )
    if "Host key verification failed" in text:
        return f"{where}: its host key is not known yet; run '{destination.ssh_hint()}' once in a terminal to check and accept it"
    if "Permission denied" in text:
        return (
            f"{where}: the login was refused (no key of yours is accepted there); "
            f"run 'ssh-copy-id {destination.args}' once, or name the key with --ssh-option IdentityFile=PATH"
        )
    if "Could not resolve hostname" in text:
        return f"{where}: the host name {destination.host!r} is unknown; check the spelling or use its IP address"
    if "Connection refused" in text and not ready:
        return f"{where}: nothing accepts SSH connections there (connection refused); start the SSH server or check the port"
    if any(s in text for s in ("No route to host", "Network is unreachable", "Connection timed out", "Operation timed out")):
        if not ready:
            return f"{where}: the host cannot be reached; check that it is on and on the network, and the address"
    missing = ("command not found", "No module named stylecore", "No module named 'stylecore'")
    if returncode == NOT_FOUND_EXIT or (returncode != 0 and any(s in text for s in missing)):
        return (
            f"{where}: the remote worker command was not found there ({_last_line(text) or f'exit {returncode}'}); install stylecore on that machine "
            f"('{SETUP_HINT}') and paste the worker command it prints"
        )
    if returncode != SSH_EXIT:
        return None
    last = _last_line(text)
    detail = f" ({last})" if last else ""
    if ready:
        return f"{where}: the connection dropped mid-run{detail}; check the network and run again"
    return f"{where}: ssh failed{detail}; try '{destination.ssh_hint()}' in a terminal to see why"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
