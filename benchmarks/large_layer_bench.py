"""Large layers (issue 27): what the GIMP preview shows against what OK paints on a 12 MP and a 24 MP layer.

    .venv/bin/python benchmarks/large_layer_bench.py                        # instant, draft, balanced at 12 and 24 MP
    .venv/bin/python benchmarks/large_layer_bench.py --presets instant --sizes 12
    .venv/bin/python benchmarks/large_layer_bench.py --best                  # best too (slow: the layer's own size)

The layers: tubingen.jpg (1024x768) enlarged with Lanczos to 4000x3000 (12 MP) and 5664x4248 (24 MP), sharpened
as a camera sharpens (unsharp mask, radius 2, 80 %) and given a camera's grain (seeded Gaussian noise in luminance,
2 % of full scale), so that a layer has detail at 100 % for the result to keep. The painting is starry_night.jpg.

Per preset and size, as the plug-in does it: the preview is the layer shrunk to job.PREVIEW_SIDE (box filter, as GIMP
reads a scaled layer) painted with job.preview_options; OK paints the whole layer with the preset at its defaults.
The result is shrunk to the preview's size the same way and judged against the preview by the independent judge
(benchmarks/judge.py): style Fa (Frobenius, the painting's aspect kept) and F (the result's exact size) of both
against the painting, and LPIPS between them; the targets are style within +0.1 of the preview's and LPIPS at most
0.2. Also the time and seconds per megapixel, the peak memory during the run (RSS sampled every 10 ms, and what the
process held before it), and the detail at 100 %: the high-frequency energy of the result's luminance (what a 5x5 box
blur takes away) as a share of the photo's, beside the same for the result shrunk to its working size and enlarged
back bicubically (what enlarging alone gives), and the preview's time in a warm engine. Each case runs in its own process, so its memory is its own.
A crop sheet at 100 % goes to docs/large-layer-crops.jpg: per preset and size, photo | preview enlarged | result.
Prints, never asserts: the machine is shared (the load average is printed beside each case).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "gimp_plugin" / "style-transfer"))

from benchmarks import machine  # noqa: E402

BENCH = REPO / "benchmarks" / "images"  # credits: CREDITS.md there
PHOTO, PAINTING = BENCH / "tubingen.jpg", BENCH / "starry_night.jpg"
SIZES = {12: (4000, 3000), 24: (5664, 4248)}  # megapixels: (width, height), the photo's 4:3
PRESETS = ("instant", "draft", "balanced")
GRAIN = 0.02  # the camera grain's standard deviation, of full scale
CROP = (0.66, 0.40, 480, 360)  # the 100 % crop: centre as fractions of the layer (windows and roofs), width, height
SHEET = REPO / "docs" / "large-layer-crops.jpg"
STYLE_MARGIN, LPIPS_MAX = 0.1, 0.2  # the issue's targets


def layer(width: int, height: int) -> np.ndarray:
    """The test layer: the photo enlarged, sharpened and grained (see the module's docstring); HxWx3 float32."""
    big = Image.open(PHOTO).convert("RGB").resize((width, height), Image.LANCZOS)
    rgb = np.asarray(big.filter(ImageFilter.UnsharpMask(radius=2, percent=80, threshold=0)), np.float32) / 255
    rgb += np.random.default_rng(0).normal(0, GRAIN, (height, width, 1)).astype(np.float32)
    return np.clip(rgb, 0, 1, out=rgb)


def shrunk(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """The picture at `long_side` by a box filter, as GIMP reads a layer for the preview."""
    height, width = rgb.shape[:2]
    k = long_side / max(width, height)
    size = (max(1, round(width * k)), max(1, round(height * k)))
    return np.asarray(to_image(rgb).resize(size, Image.BOX), np.float32) / 255


def to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))


def detail(rgb: np.ndarray) -> float:
    """Mean squared high-frequency luminance: the picture less its 5x5 box blur."""
    grey = rgb @ np.asarray([0.299, 0.587, 0.114], np.float32)
    padded = np.pad(grey, 2, mode="edge")
    blur = sum(padded[dy : dy + grey.shape[0], dx : dx + grey.shape[1]] for dy in range(5) for dx in range(5)) / 25
    return float(np.mean((grey - blur) ** 2))


def enlarged_alone(result: np.ndarray, preset: str) -> np.ndarray:
    """The result shrunk to its preset's working size and enlarged back bicubically: an enlargement without detail."""
    from stylecore.engine import resize
    from stylecore.protocol import presets

    height, width = result.shape[:2]
    side = presets.get_preset(preset).working_size  # instant's too: it paints at one working size
    t = resize.to_tensor(result)
    small = resize.bicubic(t, *resize.fit((width, height), min(side or max(width, height), max(width, height))))
    return resize.to_numpy(resize.bicubic(small, width, height))


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    cx, cy, w, h = CROP
    x0, y0 = round(cx * width - w / 2), round(cy * height - h / 2)
    return x0, y0, x0 + w, y0 + h


def rss_mb() -> float:
    return float(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """The highest RSS seen while the block runs (sampled every 10 ms), and the RSS before it."""
    seen = {"before_mb": rss_mb(), "peak_mb": rss_mb()}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            seen["peak_mb"] = max(seen["peak_mb"], rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()
        seen["peak_mb"] = max(seen["peak_mb"], rss_mb())


def case(megapixels: int, preset: str, out: Path) -> dict[str, float]:
    """One preset on one layer: preview, full run, judge; the crops go to `out`."""
    import job

    from benchmarks import judge
    from stylecore import Stylizer

    photo = layer(*SIZES[megapixels])
    painting = np.asarray(Image.open(PAINTING).convert("RGB"), np.float32) / 255
    engine = Stylizer(device="cpu")
    preview_content = shrunk(photo, job.PREVIEW_SIDE)
    options = job.preview_options({"preset": preset})
    engine.stylize(shrunk(photo, 64), painting, **options)  # warm: weights read, sessions built, as in the dialog
    started = time.perf_counter()
    preview = engine.stylize(preview_content, painting, **options).rgb
    preview_seconds = time.perf_counter() - started
    with peak_rss() as memory:
        started = time.perf_counter()
        result = engine.stylize(photo, painting, preset=preset).rgb
        seconds = time.perf_counter() - started
    seen = shrunk(result, job.PREVIEW_SIDE)
    box = crop_box(photo.shape[1], photo.shape[0])
    enlarged_preview = to_image(preview).resize((photo.shape[1], photo.shape[0]), Image.BICUBIC)
    for name, picture in (("photo", to_image(photo)), ("preview", enlarged_preview), ("result", to_image(result))):
        picture.crop(box).save(out / f"{megapixels}-{preset}-{name}.png")
    del enlarged_preview
    return {
        "seconds": seconds,
        "per_mp": seconds / (photo.shape[0] * photo.shape[1] / 1e6),
        **memory,
        "preview_fa": judge.style_distance_frobenius(preview, painting, keep_aspect=True),
        "result_fa": judge.style_distance_frobenius(seen, painting, keep_aspect=True),
        "preview_f": judge.style_distance_frobenius(preview, painting),
        "result_f": judge.style_distance_frobenius(seen, painting),
        "photo_fa": judge.style_distance_frobenius(preview_content, painting, keep_aspect=True),
        "lpips": judge.lpips_tensors(judge._tensor(preview), judge._tensor(seen)),
        "detail": detail(result) / detail(photo),
        "blur_detail": detail(enlarged_alone(result, preset)) / detail(photo),
        "preview_seconds": preview_seconds,
        "load": os.getloadavg()[0],
    }


def line(megapixels: int, preset: str, r: dict[str, float]) -> str:
    ok_style = r["result_fa"] <= r["preview_fa"] + STYLE_MARGIN and r["result_f"] <= r["preview_f"] + STYLE_MARGIN
    verdict = "meets" if ok_style and r["lpips"] <= LPIPS_MAX else "MISSES"
    return (
        f"{megapixels:>3d} MP  {preset:8s}  Fa {r['preview_fa']:.3f} -> {r['result_fa']:.3f} (photo {r['photo_fa']:.3f})  "
        f"F {r['preview_f']:.3f} -> {r['result_f']:.3f}  LPIPS {r['lpips']:.3f}  {verdict}  "
        f"{r['seconds']:7.1f} s ({r['per_mp']:.2f} s/MP)  peak {r['peak_mb'] / 1024:.2f} GB (held before {r['before_mb'] / 1024:.2f})  "
        f"detail {r['detail']:.2f} (enlarged alone {r['blur_detail']:.2f})  preview {r['preview_seconds']:.1f} s  load {r['load']:.1f}"
    )


def sheet(cases: list[tuple[int, str]], folder: Path) -> None:
    """Rows of photo | preview enlarged | result, each at 100 %, labelled."""
    from PIL import ImageDraw

    w, h = CROP[2], CROP[3]
    canvas = Image.new("RGB", (3 * w, len(cases) * h), "white")
    draw = ImageDraw.Draw(canvas)
    for row, (megapixels, preset) in enumerate(cases):
        for col, name in enumerate(("photo", "preview", "result")):
            canvas.paste(Image.open(folder / f"{megapixels}-{preset}-{name}.png"), (col * w, row * h))
            label = f"{megapixels} MP {preset}: {name}" + (" enlarged" if name == "preview" else " at 100 %")
            draw.rectangle((col * w, row * h, col * w + 8 * len(label) + 8, row * h + 16), fill="black")
            draw.text((col * w + 4, row * h + 2), label, fill="white")
    canvas.save(SHEET, quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=sorted(SIZES), choices=sorted(SIZES), help="megapixels")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=(*PRESETS, "best"))
    ap.add_argument("--best", action="store_true", help="also the best preset (slow: it works at the layer's size)")
    ap.add_argument("--no-sheet", action="store_true", help="leave docs/large-layer-crops.jpg as it is")
    ap.add_argument("--case", nargs=3, metavar=("MP", "PRESET", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(int(args.case[0]), args.case[1], Path(args.case[2]))))
        return
    presets = [*args.presets, *(["best"] if args.best and "best" not in args.presets else [])]
    print(f"machine: {machine.describe()}")
    print(f"layers: {PHOTO.name} enlarged to {', '.join(f'{w}x{h}' for w, h in (SIZES[s] for s in args.sizes))}; "
          f"painting {PAINTING.name}; targets: style within +{STYLE_MARGIN} of the preview's, LPIPS <= {LPIPS_MAX}")  # fmt: skip
    done = []
    with tempfile.TemporaryDirectory(prefix="stylecore-large-") as tmp:
        for megapixels in args.sizes:
            for preset in presets:
                cmd = [sys.executable, __file__, "--case", str(megapixels), preset, tmp]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
                if proc.returncode != 0:
                    print(f"{megapixels:>3d} MP  {preset:8s}  failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                print(line(megapixels, preset, json.loads(proc.stdout.strip().splitlines()[-1])), flush=True)
                done.append((megapixels, preset))
        if done and not args.no_sheet:
            sheet(done, Path(tmp))
            print(f"crops at 100 %: {SHEET.relative_to(REPO)}")


if __name__ == "__main__":
    main()
