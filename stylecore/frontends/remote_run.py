"""`stylecore CONTENT STYLE -o OUT --remote [user@]host[:port]`: the same run on a worker reached over ssh.

Every input is checked here as a local run checks it, before ssh starts. Image files then travel as their own
bytes (the far end decodes them, as it would its own), float32 .npy as in-band pixels; the result comes back
in-band at full precision and is saved here like a local result.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

import numpy as np

from stylecore.images import arrays, reading
from stylecore.images.result import StyledImage
from stylecore.protocol import messages, option_table, pixels, ssh
from stylecore.protocol.client import WorkerClient
from stylecore.protocol.errors import EXIT_OK, BadInput, Cancelled, RemoteFailure, StylecoreError
from stylecore.protocol.progress import Progress

REQUEST_ID = "cli"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote", metavar="[USER@]HOST[:PORT]", default=None, help="run on the worker of another machine, over ssh")
    p.add_argument(
        "--ssh-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"passed to ssh as -o KEY=VALUE (repeatable; one of {', '.join(n for n, _ in ssh.ALLOWED_OPTIONS.values())})",
    )
    p.add_argument("--remote-command", default=None, help=f"the far end's worker command (what '{ssh.SETUP_HINT}' prints)")


def source(path: str, role: str) -> messages.Source:
    """The input as it travels, checked here first with the local path's own checks (headers only), so a file that is
    not an image, too big, a pipe or a device is one line before ssh starts: a .npy as pixels, else its own bytes."""
    if not path.lower().endswith(".npy"):
        reading.check(path, role)
        return messages.EncodedFile.read(path, role)
    picture = reading.load(path, role)
    rgba = picture.rgb if picture.alpha is None else np.dstack([picture.rgb, picture.alpha])
    return arrays.from_array(np.ascontiguousarray(rgba, dtype=np.float32))


def run(args: argparse.Namespace, reporter: Callable[[Progress], None], cancel: threading.Event, save: Callable) -> int:
    """Sends the run to args.remote, reports its progress, and hands the result to save(StyledImage)."""
    target = ssh.Target.parse(args.remote, args.remote_command, args.ssh_option)  # BadInput: one line, exit 2
    weights = args.style_weights or [1.0] * len(args.styles)
    if len(weights) != len(args.styles):
        raise BadInput(f"{len(weights)} --style-weights for {len(args.styles)} styles; give one per style")
    options = {o.name: getattr(args, o.name) for o in option_table.OPTIONS if hasattr(args, o.name)}
    content = source(args.content, "content image")
    styles = [(source(s, "style image"), w) for s, w in zip(args.styles, weights)]
    obj, payload = messages.build_request(REQUEST_ID, content, styles, options, None)
    try:
        with WorkerClient(target) as worker:
            worker.wait_ready()

            def cancel_when_asked() -> None:
                cancel.wait()
                worker.cancel(REQUEST_ID)

            threading.Thread(target=cancel_when_asked, daemon=True).start()
            result = worker.run(
                obj, payload, lambda event: reporter(event.progress()) if event.kind == messages.PROGRESS else None
            )
    except StylecoreError:
        if cancel.is_set():
            raise Cancelled() from None
        raise
    try:
        width, height, channels, data = result.pixels()
    except ValueError as exc:
        raise RemoteFailure(f"{target.destination}: the result did not arrive whole ({exc}); run again") from None
    rgba = arrays.to_array(pixels.Pixels(width, height, channels, "f32", data)).astype(np.float32)
    alpha = rgba[..., 3].copy() if result.get("alpha") and channels == 4 else None
    bits = result.get("bits")
    save(StyledImage(rgba[..., :3].copy(), alpha, bits if type(bits) is int and 0 < bits <= 32 else 8))
    return EXIT_OK
