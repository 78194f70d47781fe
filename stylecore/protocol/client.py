"""A worker on another machine, started over ssh and spoken to with in-band pixels (CLI and `install.py --check`).

Standard library only. The process is started by host.spawn_worker (the one spawn helper); ssh's stderr goes
to an unnamed temporary file, so each failure becomes one line by ssh.explain_failure and nothing is left on
disk. Closing our end (or dying) closes ssh's stdin, the far worker's stdin with it, and it exits.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stylecore.protocol import errors, framing, host, messages, ssh

READY_SECONDS = 600  # a far end that installs nothing still loads torch and the weights: minutes on a cold disk


class RemoteFailure(Exception):
    """The remote worker cannot be used or stopped; the message is one line naming the fix."""

    def __init__(self, message: str, code: int = errors.EXIT_REMOTE):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """Where the worker runs: an SSH destination, its worker command and extra `ssh -o` options."""

    destination: ssh.Destination
    command: str = ssh.DEFAULT_COMMAND
    options: tuple[str, ...] = ()

    @classmethod
    def parse(cls, destination: str, command: str | None = None, options: Sequence[str] = ()) -> Target:
        try:
            checked = tuple(ssh.parse_ssh_option(o) for o in options)
            return cls(ssh.parse_destination(destination), (command or "").strip() or ssh.DEFAULT_COMMAND, checked)
        except ssh.RemoteError as exc:
            raise RemoteFailure(str(exc)) from None

    def argv(self) -> list[str]:
        return ssh.ssh_argv(self.destination, self.command, options=self.options)


Handler = Callable[[dict[str, Any], "bytes | None"], None]


class Connection:
    """One remote worker: ssh's process, its stderr, and the messages read from it (on the calling thread)."""

    def __init__(self, target: Target):
        self.target = target
        self.stderr = tempfile.TemporaryFile()
        self.workdir = tempfile.mkdtemp(prefix="stylecore-ssh-")  # ssh's cwd only; it stays empty
        try:
            self.proc = host.spawn_worker(None, self.workdir, stderr=self.stderr, ssh=target.argv())
        except OSError as exc:
            self.close()
            raise RemoteFailure(f"cannot start ssh ({exc.strerror or exc}); install the OpenSSH client") from None
        assert self.proc.stdout is not None
        self.reader = framing.MessageReader(self.proc.stdout, skip_junk=True)
        self.ready: dict[str, Any] = {}
        self.send_lock = threading.Lock()

    def wait_ready(self) -> dict[str, Any]:
        """The far end's ready event, checked against this stylecore; RemoteFailure says why not."""
        message = self._read()
        if message is None:
            raise RemoteFailure(self.failure())
        if message.obj.get("event") == messages.ERROR:
            raise RemoteFailure(f"{self.target.destination}: the worker did not start ({message.obj.get('message')})")
        if message.obj.get("event") != messages.READY:
            raise RemoteFailure(f"{self.target.destination}: the remote command is not a stylecore worker; {_fix()}")
        problem = messages.ready_problem(message.obj, str(self.target.destination))
        if problem:
            raise RemoteFailure(problem)
        self.ready = message.obj
        return self.ready

    def send(self, obj: dict[str, Any], payload: bytes | None = None) -> None:
        try:
            with self.send_lock:
                assert self.proc.stdin is not None
                framing.write_message(self.proc.stdin, obj, payload)
        except (OSError, ValueError):
            raise RemoteFailure(self.failure()) from None

    def run(self, obj: dict[str, Any], payload: bytes | None, on_event: Handler | None = None) -> tuple[dict, bytes | None]:
        """Sends one request; returns its result event and payload, handing the others to on_event. Blocks."""
        self.send(obj, payload)
        while True:
            message = self._read()
            if message is None:
                raise RemoteFailure(self.failure())
            event = message.obj
            if event.get("id") != obj["id"]:
                continue
            kind = event.get("event")
            if kind == messages.RESULT:
                return event, message.payload
            if kind == messages.ERROR:
                code = event["code"] if isinstance(event.get("code"), int) else errors.EXIT_INTERNAL
                raise RemoteFailure(f"{self.target.destination}: {event.get('message') or event.get('kind')}", code)
            if kind == messages.CANCELLED:
                raise RemoteFailure("cancelled")
            if on_event is not None:
                on_event(event, message.payload)

    def cancel(self, rid: str) -> None:
        with contextlib.suppress(RemoteFailure):
            self.send(messages.cancel_request(rid))

    def _read(self) -> framing.Message | None:
        while True:
            try:
                return self.reader.read()
            except errors.BadRequest:  # a cut-off payload or an over-long line: the link is no longer usable
                return None

    def failure(self) -> str:
        """One line for a worker that stopped answering: ssh's own failure, or how the far command ended."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout=ssh.ALIVE_INTERVAL)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.stderr.seek(0)
        text = self.stderr.read()[-8000:].decode("utf-8", "replace")
        line = ssh.explain_failure(code, text, self.target.destination, ready=bool(self.ready))
        if line:
            return line
        last = " ".join((text.strip().splitlines() or [f"exit {code}"])[-1].split())
        return f"{self.target.destination}: the remote worker stopped ({last}); {_fix()}"

    def close(self) -> None:
        """EOF to the far worker (it exits), then ssh ends; nothing is left on either machine."""
        proc = getattr(self, "proc", None)
        if proc is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
            try:
                proc.wait(timeout=ssh.ALIVE_INTERVAL)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError, ValueError):
                proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fix() -> str:
    return f"run '{ssh.SETUP_HINT}' on that machine and pass the worker command it prints"
