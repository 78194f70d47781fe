"""Live-preview figures, measured through the worker protocol over a pipe as the GIMP dialog uses it.

    .venv/bin/python benchmarks/preview_bench.py                    # real weights, tubingen x starry_night
    .venv/bin/python benchmarks/preview_bench.py --full-size 1024   # the full-run comparison at 1024 px
    .venv/bin/python benchmarks/preview_bench.py --no-full          # without the full-run comparison

Prints, never asserts (the machine is shared): cold start (launch to the first progress event), warm
preview latency (a setting changed mid-preview to the first painted image, which is the instant picture the
preview asks for first, and to the optimisation's first image), time to the finished 320-px preview for the
preview schedule (balanced) and for the draft preset, instant's latency and peak memory per layer size
(benchmarks/instant_bench.py's table), and the full run in the warm worker against a fresh `python -m
stylecore` process. The requests are the plug-in's own (job.build). The dialog adds its debounce
to the change latency, and about 50 ms to convert each image for the screen.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stylecore.protocol import framing

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks" / "images"  # credits: CREDITS.md there
CONTENT, STYLE = BENCH / "tubingen.jpg", BENCH / "starry_night.jpg"
IMAGE_EVERY = 2
INSTANT_SIZES = [(320, 240), (512, 384), (1024, 768), (4096, 3072)]
sys.path.insert(0, str(REPO / "gimp_plugin" / "style-transfer"))
import job  # noqa: E402  (the plug-in's pure-logic module: its preview requests and debounce)

PREVIEW_SIDE = job.PREVIEW_SIDE
PREVIEW_SCHEDULE = job.PREVIEW_OPTIONS


def preview_request(rid: str, content: Path, out: Path, strength: float, images_dir: Path) -> dict:
    """The dialog's preview request: the instant picture first, then the balanced schedule at 320 px."""
    options = {"strength": strength, "seed": 0}
    return job.build(rid, str(content), [(str(STYLE), 1.0)], options, str(out), preview_dir=str(images_dir))[0]


class Worker:
    """`stylecore worker` on a pipe; every event is stamped with its arrival time."""

    def __init__(self, log: Path):
        self.launched = time.perf_counter()
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "stylecore", "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=REPO,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        reader = framing.MessageReader(self.proc.stdout)
        while message := reader.read():
            self.events.put((time.perf_counter(), message.obj))
        self.events.put((time.perf_counter(), None))

    def send(self, obj: dict) -> float:
        framing.write_message(self.proc.stdin, obj)
        return time.perf_counter()

    def until(self, predicate, timeout: float = 1800) -> tuple[float, dict]:
        while True:
            at, event = self.events.get(timeout=timeout)
            if event is None:
                raise SystemExit(f"the worker exited; see {self.log.name}")
            if event.get("event") == "error":
                raise SystemExit(f"worker error: {event}")
            if predicate(event):
                return at, event

    def cpu(self) -> float:
        """CPU seconds the worker has used (Linux): on a loaded machine, a figure the other users cannot stretch."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return float("nan")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        self.log.close()


def fitted(path: Path, long_side: int | None) -> np.ndarray:
    """The photo as the plug-in sends a layer: float32 R'G'B'A, at a given long side (None: as it is)."""
    img = Image.open(path).convert("RGBA")
    if long_side:
        k = long_side / max(img.size)
        img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


def request(rid: str, content: Path, out: Path, strength: float, images_dir: Path | None, **options) -> dict:
    req = {
        "op": "stylize",
        "id": rid,
        "content": str(content),
        "styles": [{"path": str(STYLE), "weight": 1.0}],
        "options": {"strength": strength, "seed": 0, **options},
        "output": str(out),
    }
    if images_dir:
        req["images"] = {"every": IMAGE_EVERY, "dir": str(images_dir)}
    return req


def is_terminal(rid: str):
    return lambda e: e.get("id") == rid and e["event"] in ("result", "cancelled")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or model
    import torch

    return (
        f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} logical CPUs, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, Python {platform.python_version()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full-size", type=int, default=512, help="long side of the full-run comparison (default 512)")
    ap.add_argument("--changes", type=int, default=3, help="setting changes measured in the warm worker (default 3)")
    ap.add_argument("--no-full", action="store_true", help="skip the full-run comparison")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stylecore-preview-bench-"))
    try:
        measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, tmp: Path) -> None:
    preview_npy, full_npy = tmp / "preview-content.npy", tmp / "full-content.npy"
    np.save(preview_npy, fitted(CONTENT, PREVIEW_SIDE))
    full = fitted(CONTENT, args.full_size)
    np.save(full_npy, full)
    Image.fromarray((full[..., :3] * 255 + 0.5).astype(np.uint8)).save(tmp / "full-content.png")
    print(
        f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f} (a shared machine: above "
        f"{os.cpu_count()} every figure below is stretched)"
    )
    print(
        f"images: {CONTENT.name} x {STYLE.name}; preview {PREVIEW_SIDE} px long side, the instant picture first, then "
        f"schedule {PREVIEW_SCHEDULE}, an image every {job.PREVIEW_IMAGES_EVERY} evaluations"
    )

    w = Worker(tmp / "worker.log")
    sent = w.send(preview_request("p0", preview_npy, tmp / "p0.npy", 70, tmp))  # queued while it loads
    ready_at, ready = w.until(lambda e: e["event"] == "ready")
    cpu_ready = w.cpu()
    instant_at, _ = w.until(lambda e: e.get("id") == "p0" and e["event"] == "image")  # the instant picture comes first
    first_at, _ = w.until(lambda e: e.get("id") == "p0" and e["event"] == "progress")
    image_at, _ = w.until(lambda e: e.get("id") == "p0" and e["event"] == "image")
    done_at, _ = w.until(is_terminal("p0"))
    cpu_cold = w.cpu() - cpu_ready
    print(
        f"cold start: launch -> ready {ready_at - w.launched:.2f} s (engine load {ready['load_seconds']:.2f} s); "
        f"launch -> the instant picture {instant_at - w.launched:.2f} s; -> first progress event {first_at - w.launched:.2f} s; "
        f"-> the optimisation's first image {image_at - w.launched:.2f} s; "
        f"-> finished preview {done_at - sent:.2f} s (worker CPU {cpu_cold:.1f} s after ready)"
    )

    # A slider moved while a preview is painting: cancel it, send the new settings, wait for the first pictures.
    latencies, optimised, finishes, cpus = [], [], [], []
    for i in range(args.changes):
        rid, nxt = f"c{i}", f"c{i}-new"
        w.send(preview_request(rid, preview_npy, tmp / f"{rid}.npy", 60 - 10 * i, tmp))
        w.until(lambda e, rid=rid: e.get("id") == rid and e["event"] == "image" and e["step"] >= 4)
        changed, cpu_changed = time.perf_counter(), w.cpu()
        w.send({"op": "cancel", "id": rid})
        w.send(preview_request(nxt, preview_npy, tmp / f"{nxt}.npy", 55 - 10 * i, tmp))
        at, event = w.until(lambda e, nxt=nxt: e.get("id") == nxt and e["event"] == "image")
        np.load(event["path"])  # the pane reads it too
        latencies.append(time.perf_counter() - changed)
        if event.get("stage") != "instant":
            raise SystemExit(f"the first image was not the instant picture: {event}; is the instant network installed?")
        at, event = w.until(lambda e, nxt=nxt: e.get("id") == nxt and e["event"] == "image" and e.get("stage") == "optimize")
        optimised.append(at - changed)
        end, result = w.until(is_terminal(nxt))
        finishes.append(end - changed)
        cpus.append(w.cpu() - cpu_changed)
    debounce = job.DEBOUNCE_MS / 1000
    first = statistics.median(latencies)
    print(
        f"warm preview, setting changed mid-preview -> the instant picture read: median {first:.2f} s over "
        f"{len(latencies)} changes ({', '.join(f'{x:.2f}' for x in latencies)}); with the dialog's {debounce:.2f} s "
        f"debounce: {first + debounce:.2f} s to the first painted image (target 0.5 s)"
    )
    print(
        f"  -> the optimisation's first image: median {statistics.median(optimised):.2f} s "
        f"({', '.join(f'{x:.2f}' for x in optimised)}), as the preview's first image was before the instant picture"
    )
    print(
        f"finished {PREVIEW_SIDE}-px preview (warm, {PREVIEW_SCHEDULE['preset']} schedule): median "
        f"{statistics.median(finishes):.2f} s ({', '.join(f'{x:.2f}' for x in finishes)}), "
        f"{result['width']}x{result['height']}, weights loads so far {result['weights_loads']}; worker CPU median "
        f"{statistics.median(cpus):.1f} s"
    )
    cpu_start = w.cpu()
    start = w.send(request("bal", preview_npy, tmp / "bal.npy", 70, tmp, preset="draft", working_size=PREVIEW_SIDE))
    end, _ = w.until(is_terminal("bal"))
    print(
        f"finished {PREVIEW_SIDE}-px preview (warm, draft preset, for comparison): {end - start:.2f} s "
        f"(worker CPU {w.cpu() - cpu_start:.1f} s)"
    )

    if args.no_full:
        w.close()
    else:
        full_run(w, full_npy, tmp)
    print(f"instant preset, warm, per layer size (benchmarks/instant_bench.py; load {os.getloadavg()[0]:.1f}):")
    sys.path.insert(0, str(REPO))
    from benchmarks.instant_bench import print_sizes

    print_sizes(INSTANT_SIZES)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def full_run(w: Worker, full_npy: Path, tmp: Path) -> None:
    """OK pressed: the full-size job in the same warm worker, against a fresh process doing the same job."""
    start = w.send(request("full", full_npy, tmp / "full.npy", 70, None, preset="balanced"))
    end, result = w.until(is_terminal("full"))
    warm = end - start
    w.close()
    out = tmp / "fresh.png"
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stylecore",
            str(tmp / "full-content.png"),
            str(STYLE),
            "-o",
            str(out),
            "-q",
            "--preset",
            "balanced",
            "--seed",
            "0",
            "--strength",
            "70",
        ],
        check=True,
        cwd=REPO,
    )
    fresh = time.perf_counter() - t
    print(
        f"full run {result['width']}x{result['height']} balanced: warm worker {warm:.2f} s (weights loads "
        f"{result['weights_loads']}), fresh 'python -m stylecore' process {fresh:.2f} s; saved {fresh - warm:.2f} s "
        f"({(fresh - warm) / fresh * 100:.0f} %)"
    )


if __name__ == "__main__":
    main()
