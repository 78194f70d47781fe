"""Speed, memory and quality figures, with the classic baseline measured side by side.

    .venv/bin/python benchmarks/bench.py                 # 256 and 512 px, baseline at 256
    .venv/bin/python benchmarks/bench.py --sizes 256 512 1024 --baseline-sizes 256 512 --large 6000x4000

Each end-to-end run happens in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH = REPO / "benchmarks" / "images"  # credits: CREDITS.md there
PAIRS = [("tubingen.jpg", "starry_night.jpg"), ("tubingen.jpg", "the_scream.jpg"), ("tubingen.jpg", "shipwreck.jpg")]


def load_content(content: str, size: str):
    """The bench photo at a long side ('1024') or at an exact size ('6000x4000', cropped to its aspect)."""
    from PIL import Image

    img = Image.open(BENCH / content).convert("RGB")
    if "x" in size:
        w, h = map(int, size.split("x"))
        k = max(w / img.width, h / img.height)
        img = img.resize((max(w, round(img.width * k)), max(h, round(img.height * k))), Image.LANCZOS)
        left, top = (img.width - w) // 2, (img.height - h) // 2
        return img.crop((left, top, left + w, top + h))
    k = int(size) / max(img.size)
    return img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)


def child(kind: str, size: str, preset: str, content: str, style: str, out: str) -> None:
    from PIL import Image

    import stylecore
    from stylecore.models import vgg_weights

    img = load_content(content, size)
    records = []
    t = time.perf_counter()
    if kind == "stylecore":
        result = stylecore.stylize(img, BENCH / style, preset=preset, progress=records.append)
        evals = None
    else:
        from benchmarks import baseline

        result, evals = baseline.run(vgg_weights.load_cache(), img, Image.open(BENCH / style))
    seconds = time.perf_counter() - t
    result.save(out)
    rss = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "evals": evals, **steady_state(records)}))


def steady_state(records) -> dict:
    """Seconds per evaluation at the finest scale, from the engine's own progress records."""
    opt = [r for r in records if r.stage == "optimize"]
    if not opt:
        return {}
    last = [r for r in opt if r.scale == opt[-1].scale]
    gaps = sorted(b.elapsed - a.elapsed for a, b in zip(last, last[1:]) if b.step == a.step + 1)
    if not gaps:
        return {}
    return {"top_width": last[-1].width, "top_height": last[-1].height, "s_per_eval": gaps[len(gaps) // 2]}


def peak_rss_mb() -> float:
    """This process's own high-water mark: ru_maxrss would carry over the parent's across exec."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind, size, preset, content, style, outdir: Path) -> dict:
    out = outdir / f"{kind}-{preset}-{size}-{Path(content).stem}.png"  # lossless: JPEG's 8-px blocks would look like seams
    r = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(size), preset, content, style, str(out)], capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "out": out}


def bare_pass(height: int, width: int, bf16: bool, reps: int = 3) -> float:
    """Seconds for torchvision's VGG16 to relu5_1, forward plus input gradient, nothing else."""
    import torch
    import torchvision

    net = torchvision.models.vgg16().features[:26].eval().requires_grad_(False)
    net = net.to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, height, width).contiguous(memory_format=torch.channels_last).requires_grad_(True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = net(x)
        y.float().sum().backward()

    step()
    t = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t) / reps


def throughput_lines(size: int, engine: dict | None) -> list[str]:
    from stylecore.engine.device import runtime_for
    from stylecore.engine.optimize.vgg import flops_per_pass

    rt = runtime_for("auto")
    uses_bf16 = rt.autocast_dtype is not None
    h, w = (engine["top_height"], engine["top_width"]) if engine else (size, size)
    flops = 2 * flops_per_pass("vgg16", h, w, "relu5_1")
    fp32 = bare_pass(h, w, bf16=False)
    lines = [
        f"[{w}x{h}] one VGG16 pass to relu5_1, forward + input gradient: {flops / 1e9:.0f} GFLOP; "
        f"bare torch fp32 {fp32:.2f} s = {flops / fp32 / 1e9:.0f} GFLOP/s"
    ]
    if uses_bf16:
        bf = bare_pass(h, w, bf16=True)
        lines.append(f"[{w}x{h}] bare torch bf16 autocast {bf:.2f} s = {flops / bf / 1e9:.0f} GFLOP/s")
        reference = bf
    else:
        small = 2 * flops_per_pass("vgg16", 128, 128, "relu5_1")
        bf = bare_pass(128, 128, bf16=True, reps=1)
        lines.append(
            f"[128x128] bare torch bf16 autocast {bf:.2f} s = {small / bf / 1e9:.1f} GFLOP/s: this CPU has no "
            "native bf16 (no avx512_bf16/amx_bf16), so the engine stays in fp32"
        )
        reference = fp32
    if engine:
        s = engine["s_per_eval"]
        lines.append(
            f"[{w}x{h}] engine steady state (balanced, finest scale): {s:.2f} s/eval = {flops / s / 1e9:.0f} "
            f"GFLOP/s = {100 * reference / s:.0f} % of the bare {'bf16' if uses_bf16 else 'fp32'} pass"
        )
    return lines


def seam_ratio(path: Path, columns: list[int]) -> float:
    """Colour jump across each given column over the median jump of the 32 columns around it (1: no seam)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    jumps = np.abs(np.diff(a, axis=1)).mean(axis=(0, 2))
    return float(np.mean([jumps[c - 1] / np.median(jumps[c - 17 : c + 15]) for c in columns]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], *sys.argv[4:8])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--baseline-sizes", type=int, nargs="*", default=[256])
    p.add_argument("--presets", nargs="+", default=["draft", "balanced"])
    p.add_argument("--pairs", type=int, default=1, help="how many bench pairs to judge quality on")
    p.add_argument("--only-large", action="store_true", help="skip the sizes, run only --large")
    p.add_argument("--large", default=None, help="also one big layer, e.g. 6000x4000 (balanced preset)")
    p.add_argument("--out", default="/tmp/stylecore-bench")
    args = p.parse_args()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    from benchmarks import judge  # independent: LPIPS-AlexNet content, AlexNet Gram style (benchmarks/judge.py)

    print(
        f"machine: {subprocess.run(['uname', '-srm'], capture_output=True, text=True).stdout.strip()}, "
        f"{__import__('os').cpu_count()} logical CPUs"
    )
    for size in [] if args.only_large else args.sizes:
        for content, style in PAIRS[: args.pairs]:
            rows = {}
            for preset in args.presets:
                rows[preset] = measure("stylecore", size, preset, content, style, outdir)
            if size in args.baseline_sizes:
                rows["baseline"] = measure("baseline", size, "classic", content, style, outdir)
            if "balanced" in rows and size == max(args.sizes) and content == PAIRS[0][0]:
                for line in throughput_lines(size, rows["balanced"]):
                    print(line, flush=True)
            for name, r in rows.items():
                sd = judge.style_distance(r["out"], BENCH / style)
                cd = judge.content_distance(r["out"], load_content(content, str(size)))
                ratio = (
                    f"  {rows['baseline']['seconds'] / r['seconds']:.1f}x faster than baseline"
                    if "baseline" in rows and name != "baseline"
                    else ""
                )
                print(
                    f"[{size}px {Path(content).stem} x {Path(style).stem}] {name:9s} {r['seconds']:7.1f} s  "
                    f"peak RSS {r['peak_rss_mb']:6.0f} MB  style dist {sd:.3f}  content dist {cd:.3f}{ratio}",
                    flush=True,
                )

    if args.large:
        large(args.large, outdir)


def large(size: str, outdir: Path) -> None:
    from benchmarks import judge
    from stylecore.engine.device import runtime_for, tile_side
    from stylecore.engine.optimize import vgg
    from stylecore.engine.tiling import make_grid
    from stylecore.protocol import presets

    content, style = PAIRS[0]
    r = measure("stylecore", size, "balanced", content, style, outdir)
    side = tile_side(runtime_for("auto"))
    cap = presets.PRESETS["balanced"].working_size
    w, h = map(int, size.split("x"))
    k = w / r["top_width"]
    grid = make_grid(r["top_width"], r["top_height"], side, vgg.HALO, vgg.ALIGN)
    cuts = [round(x * k) for x in sorted({t.x0 for t in grid.tiles}) if x > 0]  # tile edges, in output columns
    print(
        f"[{size} {Path(content).stem} x {Path(style).stem}] balanced {r['seconds']:7.1f} s  peak RSS "
        f"{r['peak_rss_mb']:6.0f} MB  optimised up to {r['top_width']}x{r['top_height']} (cap {cap}) in "
        f"{side}-px tiles  jump across tile edges {seam_ratio(r['out'], cuts) if cuts else float('nan'):.2f}x "
        f"the columns around them (1.00: no seam)  style dist {judge.style_distance(r['out'], BENCH / style):.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
