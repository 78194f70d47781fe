"""The instant preset's figures: warm latency and peak memory per layer size, and the runtime options tried.

    nice -n 5 .venv/bin/python benchmarks/instant_bench.py            # sizes and session options
    .venv/bin/python benchmarks/instant_bench.py --case 1024 768      # one size in this process (JSON)

Each size runs in a fresh process, so its peak RSS is its own: the engine is loaded (VGG16 on
random weights: only the instant network runs), a first run warms the sessions, then the layer is
painted through `Stylizer.stylize(preset="instant")`, as the API and CLI do. Prints, never asserts
(the machine is shared: the load average is printed beside the figures). tubingen x starry_night.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.preview_bench import CONTENT, STYLE, machine  # noqa: E402
from stylecore.models import instant_weights  # noqa: E402

SIZES = [(320, 240), (512, 384), (1024, 768), (4096, 3072), (6000, 4000)]
REPEATS = {320: 5, 512: 5, 1024: 5}  # warm runs per size (the best is reported); bigger sizes run once


def rss_mb() -> float:
    return float(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def photo(width: int, height: int) -> np.ndarray:
    from stylecore.engine import resize
    from stylecore.images import reading

    rgb = reading.load(CONTENT).rgb
    return resize.bicubic_array(rgb, width, height)


def case(width: int, height: int) -> dict[str, float]:
    from stylecore import Stylizer
    from stylecore.images import reading

    engine = Stylizer(device="cpu", random_weights=True)
    painting = reading.load(STYLE).rgb
    content = photo(width, height)
    warm = photo(1400, 1050) if width * height > 1024 * 1024 else content  # a tiled layer warms the tiled session
    engine.stylize(warm, painting, preset="instant")
    del warm
    loaded = rss_mb()
    times = []
    for _ in range(REPEATS.get(width, 1)):
        started = time.perf_counter()
        engine.stylize(content, painting, preset="instant")
        times.append(time.perf_counter() - started)
    return {"warm_s": min(times), "median_s": float(np.median(times)), "rss_loaded_mb": loaded, "rss_peak_mb": peak_mb()}


def options_table() -> list[str]:
    """The transform alone at 1024x768, for each session option tried, with its output against the published graph's."""
    from stylecore.engine.instant.network import InstantNetwork
    from stylecore.images import reading
    from stylecore.models import instant_weights

    files = instant_weights.verify()
    content = photo(1024, 768)
    reference = InstantNetwork(files, int8=True)
    numbers = reference.style_numbers(reading.load(STYLE).rgb)
    published = reference.whole(content, numbers)
    lines = []
    for int8 in (True, False):
        for level in ("basic", "extended", "all"):
            for threads in (1, 2):
                net = InstantNetwork(files, threads=threads, level=level, int8=int8)
                net.whole(content, numbers)
                times = []
                for _ in range(3):
                    started = time.perf_counter()
                    out = net.whole(content, numbers)
                    times.append(time.perf_counter() - started)
                diff = np.abs(out - published)
                lines.append(
                    f"  {'int8 (published)' if int8 else 'float32':17s} {level:9s} {threads} threads  "
                    f"{min(times):6.3f} s   vs published graph at 'all': mean {diff.mean():.4f}, p99 {np.percentile(diff, 99):.3f}"
                )
    # tubingen is 1024x768 itself, on the 8-bit grid the int8 input step absorbs: 1000x750 is resized, like most layers
    resized = photo(1000, 752)
    noisy = np.ascontiguousarray(resized + np.random.default_rng(0).normal(0, 1e-4, resized.shape).astype(np.float32))
    for int8 in (True, False):
        net = InstantNetwork(files, int8=int8)
        moved = np.abs(net.whole(noisy, numbers) - net.whole(resized, numbers)).mean()
        lines.append(f"  {'int8' if int8 else 'float32'}: output at 1000x752 moved by {moved:.4f} (mean) by input noise of 1e-4")
    return lines


def print_sizes(sizes: list[tuple[int, int]]) -> None:
    """The per-size table: each size in a fresh process (its own peak RSS), warm."""
    print(f"{'layer':>11s}  {'warm s':>7s}  {'median s':>8s}  {'RSS loaded MB':>13s}  {'peak RSS MB':>11s}  load")
    for width, height in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--case", str(width), str(height)], capture_output=True, text=True, cwd=REPO
        )
        if proc.returncode != 0:
            print(f"{width}x{height}: failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{width:>5d}x{height:<5d}  {r['warm_s']:7.3f}  {r['median_s']:8.3f}  {r['rss_loaded_mb']:13.0f}  "
            f"{r['rss_peak_mb']:11.0f}  {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"))
    parser.add_argument("--no-options", action="store_true", help="skip the session-option table")
    parser.add_argument("--no-sizes", action="store_true", help="skip the per-size figures")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(*args.case)))
        return
    onnxruntime = instant_weights.runtime()[0]  # telemetry off before the import, as the engine does it

    print(f"machine: {machine()}, onnxruntime {onnxruntime.__version__}")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("preset instant, tubingen x starry_night, warm (sessions loaded), best of 5 up to 1024 px, one run above")
    if not args.no_sizes:
        print_sizes(SIZES)
    if not args.no_options:
        print("session options, the transform alone at 1024x768 (best of 3):")
        for line in options_table():
            print(line)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
