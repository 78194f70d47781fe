"""`stylecore CONTENT STYLE -o OUT --remote [user@]host[:port]`: the same run on a worker reached over ssh.

Image files travel as their own bytes (the far end decodes them), float32 .npy as in-band pixels; the result comes
back in-band at full precision and is saved here like a local result.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np

from stylecore.images import arrays
from stylecore.images.result import StyledImage
from stylecore.protocol import errors, messages, option_table, pixels
from stylecore.protocol.client import Connection, RemoteFailure, Target
from stylecore.protocol.errors import EXIT_OK, BadInput, Cancelled, StylecoreError
from stylecore.protocol.progress import Progress

PROGRESS_FIELDS = tuple(f.name for f in dataclasses.fields(Progress))


class RemoteRunFailed(StylecoreError):
    """The remote run failed: ssh, the far worker, or its result; one line."""

    def __init__(self, message: str, code: int = errors.EXIT_REMOTE):
        super().__init__(message)
        self.exit_code = code


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote", metavar="[USER@]HOST[:PORT]", default=None, help="run on the worker of another machine, over ssh")
    p.add_argument(
        "--ssh-option", action="append", default=[], metavar="KEY=VALUE", help="passed to ssh as -o KEY=VALUE (repeatable)"
    )
    p.add_argument("--remote-command", default=None, help="the far end's worker command (what 'install.py --no-plugin' prints)")


def source(path: str) -> messages.Source:
    """A float32 .npy as pixels, any other file as its bytes; read whole here, before ssh starts."""
    try:
        if path.lower().endswith(".npy"):
            return arrays.from_array(np.ascontiguousarray(np.load(path, allow_pickle=False), dtype=np.float32))
        return messages.EncodedFile(Path(path).name, Path(path).read_bytes())
    except (OSError, ValueError, pixels.PayloadError) as exc:
        raise BadInput(f"{path}: cannot be read ({exc}); check the path") from None


def run(args: argparse.Namespace, reporter: Any, cancel: threading.Event, save: Any) -> int:
    """Sends the run to args.remote, reports its progress, and hands the result to save(StyledImage)."""
    try:
        target = Target.parse(args.remote, args.remote_command, args.ssh_option)
    except RemoteFailure as exc:
        raise BadInput(str(exc)) from None
    weights = args.style_weights or [1.0] * len(args.styles)
    if len(weights) != len(args.styles):
        raise BadInput(f"{len(weights)} --style-weights for {len(args.styles)} styles; give one per style")
    options = {o.name: getattr(args, o.name) for o in option_table.OPTIONS if hasattr(args, o.name)}
    try:
        obj, payload = messages.build_request(
            "cli", source(args.content), [(source(s), w) for s, w in zip(args.styles, weights)], options, None
        )
    except errors.BadRequest as exc:
        raise BadInput(str(exc)) from None
    try:
        with Connection(target) as conn:
            conn.wait_ready()

            def cancel_when_asked() -> None:
                cancel.wait()
                conn.cancel("cli")

            threading.Thread(target=cancel_when_asked, daemon=True).start()

            def on_event(event: dict, _payload: bytes | None) -> None:
                if event.get("event") == messages.PROGRESS:
                    reporter(Progress(**{k: event[k] for k in PROGRESS_FIELDS if k in event}))

            result, data = conn.run(obj, payload, on_event)
    except RemoteFailure as exc:
        if cancel.is_set():
            raise Cancelled() from None
        raise RemoteRunFailed(str(exc), exc.code) from None
    try:
        rgba = arrays.to_array(pixels.decode(result["pixels"], data or b"")).astype(np.float32)
    except (KeyError, pixels.PayloadError) as exc:
        raise RemoteRunFailed(f"{target.destination}: the result did not arrive whole ({exc}); run again") from None
    save(StyledImage(rgba[..., :3].copy(), rgba[..., 3].copy() if result.get("alpha") else None, int(result.get("bits", 8))))
    return EXIT_OK
