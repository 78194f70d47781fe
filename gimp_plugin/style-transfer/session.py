"""What one plug-in process owns: its warm worker (shared by the preview and the final run, through the one worker
client, stylecore/protocol/client.py), request ids, and the layers already written for the worker.

Standard library only. A worker on this computer gets pixels as float32 .npy files in its private folder
(measured faster than in-band); a worker over ssh gets them in-band.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from stylecore.protocol import client, messages, npy, pixels, ssh


class Session:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.target: ssh.Target | None = None  # where the next worker runs: None for this computer
        self.worker: client.WorkerClient | None = None
        self._serial = 0
        self._style_files: dict[object, str] = {}

    def run_on(self, target: ssh.Target | None) -> None:
        """Where workers run from now on; a worker elsewhere is closed."""
        if target != self.target:
            self.close()
            self.target = target

    def where(self) -> str:
        return messages.THIS_COMPUTER if self.target is None else str(self.target.destination)

    def spawn(self) -> client.WorkerClient:
        """The worker, launched if none is running; returns at once (it may still be loading). Raises StylecoreError."""
        if self.worker is None or not self.worker.alive():
            self.close()
            with contextlib.suppress(OSError):
                client.sweep_stale_workdirs()
            self._style_files.clear()
            self.worker = client.WorkerClient.for_config(self.config_path, self.target, log_folder=client.default_log_folder())
        return self.worker

    def ready_worker(self) -> client.WorkerClient:
        worker = self.spawn()
        worker.wait_ready()
        return worker

    def next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial}"

    def content(self, name: str, width: int, height: int, channels: int, data: bytes) -> messages.Source:
        """Float32 pixels for the worker: a .npy file in its private folder, or in-band pixels for a remote worker."""
        worker = self.spawn()
        if worker.remote:
            return pixels.Pixels(width, height, channels, "f32", data)
        path = os.path.join(worker.workdir, name)
        npy.write_npy(path, width, height, channels, data)
        return path

    def output(self, name: str) -> str | None:
        """The result's file in the worker's private folder, or None (in-band) for a remote worker."""
        worker = self.spawn()
        return None if worker.remote else os.path.join(worker.workdir, name)

    def style_file(self, key: object, write: Callable[[str], None]) -> str:
        """The worker-side file of a style layer, written once per worker (the preview and the final run share it)."""
        worker = self.spawn()
        if key not in self._style_files:
            path = os.path.join(worker.workdir, f"style-{len(self._style_files)}.npy")
            write(path)
            self._style_files[key] = path
        return self._style_files[key]

    def log_path(self) -> str | None:
        return self.worker.log_path if self.worker is not None else None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
