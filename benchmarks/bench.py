"""Speed, memory and quality figures, with the classic baseline measured side by side.

    .venv/bin/python benchmarks/bench.py                 # 256 and 512 px, baseline at 256
    .venv/bin/python benchmarks/bench.py --sizes 256 512 1024 --baseline-sizes 256 512

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
BENCH = REPO.parent / "shared" / "bench" / "images"
PAIRS = [("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"), ("hoovertowernight.jpg", "shipwreck.jpg")]


def child(kind: str, size: int, preset: str, content: str, style: str, out: str) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import stylecore
    from stylecore import weights

    img = Image.open(BENCH / content).convert("RGB")
    k = size / max(img.size)
    img = img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)
    t = time.perf_counter()
    if kind == "stylecore":
        result = stylecore.stylize(img, BENCH / style, preset=preset)  # the preset's own working-size cap
        evals = None
    else:
        from benchmarks import baseline

        state = weights.load_cache()
        ct = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
        st = torch.from_numpy(np.asarray(Image.open(BENCH / style).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        x, evals = baseline.run(state, ct, st)
        result = Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    seconds = time.perf_counter() - t
    result.save(out)
    rss = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "evals": evals}))


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
    out = outdir / f"{kind}-{preset}-{size}-{Path(content).stem}.png"
    r = subprocess.run([sys.executable, __file__, "--child", kind, str(size), preset, content, style, str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "out": out}


def throughput(size: int) -> dict:
    import torch

    from stylecore import weights
    from stylecore.api import CONTENT_LAYERS, STYLE_LAYERS
    from stylecore.device import runtime_for
    from stylecore.losses import gram
    from stylecore.optimize import features_of, network_for
    from stylecore.vgg import flops_per_pass

    rt = runtime_for("auto")
    net = network_for(weights.load_cache(), STYLE_LAYERS + CONTENT_LAYERS, rt)
    x = torch.rand(1, 3, size, size, device=rt.device, requires_grad=True)

    def step():
        f = features_of(net, x, rt)
        sum(gram(v).sum() for v in f.values()).backward()

    step()
    n, t = 3, time.perf_counter()
    for _ in range(n):
        step()
    per = (time.perf_counter() - t) / n
    flops = 2 * flops_per_pass("vgg16", size, size, "relu5_1")
    return {"s_per_eval": per, "gflop": flops / 1e9, "gflops": flops / per / 1e9, "bf16": rt.autocast_dtype is not None}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), *sys.argv[4:8])
        return
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--baseline-sizes", type=int, nargs="*", default=[256])
    p.add_argument("--presets", nargs="+", default=["draft", "balanced"])
    p.add_argument("--pairs", type=int, default=1, help="how many bench pairs to judge quality on")
    p.add_argument("--out", default="/tmp/stylecore-bench")
    args = p.parse_args()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    from stylecore import quality, weights

    judge = quality.Judge(weights.load_cache())
    print(f"machine: {subprocess.run(['uname', '-srm'], capture_output=True, text=True).stdout.strip()}, "
          f"{__import__('os').cpu_count()} logical CPUs")
    for size in args.sizes:
        t = throughput(size)
        print(f"[{size}px] one VGG16 pass to relu5_1, forward + input gradient: {t['gflop']:.0f} GFLOP, "
              f"{t['s_per_eval']:.2f} s/eval, {t['gflops']:.0f} GFLOP/s (bf16 autocast: {t['bf16']})", flush=True)
    for size in args.sizes:
        for content, style in PAIRS[: args.pairs]:
            rows = {}
            for preset in args.presets:
                rows[preset] = measure("stylecore", size, preset, content, style, outdir)
            if size in args.baseline_sizes:
                rows["baseline"] = measure("baseline", size, "classic", content, style, outdir)
            for name, r in rows.items():
                sd = judge.style_distance(r["out"], BENCH / style)
                cd = judge.content_distance(r["out"], BENCH / content)
                ratio = f"  {rows['baseline']['seconds'] / r['seconds']:.1f}x faster than baseline" if "baseline" in rows and name != "baseline" else ""
                print(f"[{size}px {Path(content).stem} x {Path(style).stem}] {name:9s} {r['seconds']:7.1f} s  "
                      f"peak RSS {r['peak_rss_mb']:6.0f} MB  style dist {sd:.3f}  content dist {cd:.3f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
