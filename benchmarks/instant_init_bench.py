"""Issue 16, lever 4: balanced's optimisation started from the instant picture against from the photo.

    nice -n 10 .venv/bin/python benchmarks/instant_init_bench.py [--size 512] [--pairs 2]

Scores each result with the independent judge (benchmarks/judge.py: LPIPS-AlexNet content distance
and AlexNet Gram style distance, lower is better on both), beside the instant picture itself, and
prints wall and CPU seconds. Real VGG16 weights; the first bench pairs of quality_bench.PAIRS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import judge  # noqa: E402
from benchmarks.quality_bench import BENCH, PAIRS, machine, photo_at  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--strength", type=float, default=70.0)
    parser.add_argument("--save", type=Path, default=None, help="folder to write each result into, to compare by eye")
    args = parser.parse_args()
    from stylecore import Stylizer
    from stylecore.engine.optimize import coarse_to_fine
    from stylecore.engine.options import StyleOptions

    engine = Stylizer(device="cpu")
    print(f"machine: {machine('cpu')}")
    print(f"balanced, strength {args.strength:g}, {args.size} px long side; judge: content LPIPS / style Gram (lower is better)")
    print(f"{'pair':34s} {'start':9s} {'content':>8s} {'style':>7s} {'wall s':>7s} {'CPU s':>7s}")
    for pair in PAIRS[: args.pairs]:
        photo = photo_at(pair.photo, args.size)
        painting = BENCH / pair.painting
        runs = [("instant", "photo", "instant only"), ("balanced", "photo", "photo"), ("balanced", "instant", "instant")]
        for preset, init, label in runs:
            options = StyleOptions(strength=args.strength if preset == "balanced" else 100.0, preset=preset)
            report = coarse_to_fine.Reporter(None, None, [], time.perf_counter())
            t, cpu = time.perf_counter(), time.process_time()
            out = engine.run(photo, [(painting, 1.0)], options, report, init=init)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            image = out.to_pil()
            content = judge.content_distance(image, photo)
            style = judge.style_distance(image, BENCH / pair.painting)
            print(f"{pair.name:34s} {label:12s} {content:8.3f} {style:7.3f} {seconds:7.1f} {cpu:7.1f}", flush=True)
            if args.save:
                image.save(args.save / f"{Path(pair.photo).stem}-{label.replace(' ', '-')}.png")


if __name__ == "__main__":
    main()
