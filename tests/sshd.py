"""A real OpenSSH server on 127.0.0.1 for the remote-worker tests and the transfer benchmark.

Throwaway host and user keys in a temporary folder, its own sshd_config (keys only, no PAM, no password),
the current user only. ``stop()`` ends the listener, every per-connection sshd and every command a session
started (found by a marker variable sshd puts into each session's environment), and fails if any survives.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from stylecore.protocol.ssh import Destination

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it must be started by absolute path
HOST = "127.0.0.1"
MARKER = "STYLECORE_TEST_SSHD"


def unavailable() -> str | None:
    """Why the fixture cannot run here, or None."""
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        return f"{SSHD} or ssh is missing: run as root 'apt-get install -y openssh-server openssh-client' (scripts/test.sh does)"
    if os.geteuid() != 0 and not os.path.isdir("/run/sshd"):
        return "sshd needs its privilege-separation folder /run/sshd, which only root can create"
    return None


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stylecore-test", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


class Sshd:
    def __init__(self, root: Path):
        self.root = root
        self.user = getpass.getuser()
        self.marker = f"{root}"
        self.host_key = keygen(root / "host_ed25519")
        self.user_key = keygen(root / "id")
        (root / "authorized_keys").write_text(self.user_key + "\n")
        self.known_hosts = root / "known_hosts"
        self.log = root / "sshd.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    # -- client side --------------------------------------------------------------------------------
    @property
    def destination(self) -> Destination:
        return Destination(host=HOST, user=self.user, port=self.port)

    def options(self, *, identity: Path | None = None, known_hosts: Path | None = None) -> list[str]:
        """The ``-o`` values a client needs: this server's known_hosts and the throwaway user key (all on
        ssh.ALLOWED_OPTIONS, as a user's would have to be)."""
        return [
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            f"IdentityFile={identity or self.root / 'id'}",
            "IdentitiesOnly=yes",
        ]

    def known_hosts_line(self, public_key: str | None = None) -> str:
        key_type, key = (public_key or self.host_key).split()[:2]
        return f"[{HOST}]:{self.port} {key_type} {key}\n"

    # -- server side --------------------------------------------------------------------------------
    def start(self) -> Sshd:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for _attempt in range(3):
            self.port = free_port()
            config = self.root / "sshd_config"
            config.write_text(self._config())
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stderr=open(self.log, "ab")
            )
            if self._wait_ready():
                self.known_hosts.write_text(self.known_hosts_line())
                return self
            self.proc.kill()
            self.proc.wait()
        raise RuntimeError(f"sshd did not start; see {self.log}:\n{self.log.read_text()[-2000:]}")

    def _config(self) -> str:
        return "\n".join(
            [
                f"ListenAddress {HOST}:{self.port}",
                f"HostKey {self.root / 'host_ed25519'}",
                f"PidFile {self.root / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                f"AllowUsers {self.user}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "PrintMotd no",
                "LogLevel VERBOSE",
                f"SetEnv {MARKER}={self.marker}",
                "",
            ]
        )

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def session_pids(self) -> set[int]:
        """Per-connection sshd processes and everything their sessions started."""
        assert self.proc is not None
        return (_descendants(self.proc.pid) | _marked(MARKER, self.marker)) - {self.proc.pid}

    def kill_sessions(self) -> None:
        """Drop every connection at once, as a crashed server or a cut cable would (the listener stays)."""
        for pid in _descendants(self.proc.pid if self.proc else -1) - {self.proc.pid if self.proc else -1}:
            _signal(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None:
            return
        pids = self.session_pids()
        self.proc.terminate()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 5
        while (alive := {p for p in pids | _marked(MARKER, self.marker) if _alive(p)}) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in alive:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.1)
        left = {p for p in alive if _alive(p)}
        self.proc = None
        assert not left, f"processes left running after sshd stopped: {sorted(left)}"

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _processes() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _processes()
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found if root in parents else set()


def _marked(name: str, value: str) -> set[int]:
    needle = f"{name}={value}".encode() + b"\0"
    found = set()
    for pid in _processes():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes() + b"\0":
                found.add(pid)
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
