"""In-band pixel transfer figures (issue 18): which payload format, and what a layer costs over a pipe and over SSH.

    nice -n 10 .venv/bin/python benchmarks/transfer_bench.py                      # 1, 6 and 24 MP
    .venv/bin/python benchmarks/transfer_bench.py --sizes 1 6 --no-candidates     # quicker

Layers are the tubingen photo enlarged with bicubic filtering to 1, 6 and 24 megapixels (RGB): u8 from the
8-bit pixels, u16/f16/f32 from a float enlargement, so their values lie off the 8-bit grid as a developed raw
photo's do. An enlarged photo is smoother than one shot at that size, so its bytes are a lower bound.

1. Candidates: encode and decode CPU time and bytes for each codec, and the total at 100 Mbit/s
   (encode + bytes on the wire + decode), which is how stylecore.protocol.pixels' default was chosen.
2. Transfers with the default: the payload through a local pipe and through the loopback SSH of the test
   sshd (tests/sshd.py) to a far end that reads it and answers, plus the estimate at 100 Mbit/s.
Prints, never asserts (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import describe  # noqa: E402
from stylecore.images.arrays import from_array, from_float32  # noqa: E402
from stylecore.protocol import pixels  # noqa: E402
from stylecore.protocol.ssh import ssh_argv  # noqa: E402
from tests.sshd import Sshd, unavailable  # noqa: E402

PHOTO = REPO / "benchmarks" / "images" / "tubingen.jpg"  # credits: CREDITS.md there
LINK = 100e6 / 8  # bytes per second of a 100 Mbit/s home network
CHOSEN = "zlib-1 shuffle+up"
CANDIDATES = {
    "none": dict(codec="none"),
    "zlib-1": dict(codec="zlib", level=1, shuffle=False, up=False),
    "zlib-1 shuffle": dict(codec="zlib", level=1, shuffle=True, up=False),
    CHOSEN: dict(codec="zlib", level=1, shuffle=True, up=True),
    "zlib-6 shuffle+up": dict(codec="zlib", level=6, shuffle=True, up=True),
    "lzma-0 shuffle+up": dict(codec="lzma", level=0, shuffle=True, up=True),
}
SLOW = ("zlib-6 shuffle+up", "lzma-0 shuffle+up")  # left out at 24 MP: they lose at 1 and 6 MP already
assert CANDIDATES[CHOSEN] == dict(codec=pixels.CODEC, level=pixels.LEVEL, shuffle=pixels.SHUFFLE, up=pixels.UP)

# The far end: announce itself, then read a header line and the payload it announces, and answer with its length.
RECEIVER = (
    "import json, sys\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "header = json.loads(sys.stdin.buffer.readline())\n"
    "got = len(sys.stdin.buffer.read(header['bytes']))\n"
    "sys.stdout.write(f'{got}\\n'); sys.stdout.flush()\n"
)


def layer(megapixels: float, sample: str) -> pixels.Pixels:
    photo = Image.open(PHOTO).convert("RGB")
    width = round((megapixels * 1e6 * photo.width / photo.height) ** 0.5)
    size = (width, round(megapixels * 1e6 / width))
    if sample == "u8":
        return from_array(np.asarray(photo.resize(size, Image.BICUBIC)))
    channels = [np.asarray(c.convert("F").resize(size, Image.BICUBIC)) / 255.0 for c in photo.split()]
    return from_float32(np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32), sample)


def measure(image: pixels.Pixels, settings: dict) -> tuple[dict, bytes, float, float]:
    """The descriptor, the payload, and encode and decode CPU seconds (checked byte-exact)."""
    start = time.process_time()
    descriptor, payload = pixels.encode(image, **settings)
    encoded = time.process_time()
    back = pixels.decode(descriptor, payload)
    decoded = time.process_time()
    assert back.data == image.data, "round trip not exact"
    return descriptor, payload, encoded - start, decoded - encoded


def mb(n: float) -> str:
    return f"{n / 1e6:7.1f} MB"


def candidates(sizes: list[float]) -> None:
    print("\n1. Candidates (CPU seconds; total = encode + bytes at 100 Mbit/s + decode)")
    for megapixels in sizes:
        for sample in pixels.SAMPLES:
            image = layer(megapixels, sample)
            for name, settings in CANDIDATES.items():
                if megapixels >= 24 and name in SLOW:
                    continue
                _, payload, enc, dec = measure(image, settings)
                total = enc + len(payload) / LINK + dec
                mark = "  <- default" if name == CHOSEN else ""
                print(
                    f"{megapixels:4g} MP {sample:3} {name:18} {mb(image.nbytes)} -> {mb(len(payload))} "
                    f"({len(payload) / image.nbytes:4.0%})  enc {enc:5.2f} s  dec {dec:5.2f} s  total {total:6.2f} s{mark}",
                    flush=True,
                )


def send(argv: list[str], header: dict, payload: bytes) -> tuple[float, float]:
    """Seconds from start to the far end's ready line, and from the first byte sent to its answer."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    assert proc.stdout.readline() == b"ready\n"
    ready = time.perf_counter()
    proc.stdin.write(json.dumps(header).encode() + b"\n")
    proc.stdin.write(payload)
    proc.stdin.flush()
    answer = proc.stdout.readline()
    done = time.perf_counter()
    proc.stdin.close()
    proc.wait(timeout=60)
    assert int(answer) == len(payload), answer
    return ready - started, done - ready


def transfers(sizes: list[float], server: Sshd | None) -> None:
    print(f"\n2. Transfers with the default ({CHOSEN}); wall seconds; pipe = local worker, ssh = loopback SSH")
    local = [sys.executable, "-c", RECEIVER]
    over_ssh = ssh_argv(server.destination, ["python3", "-c", RECEIVER], options=server.options()) if server else None
    if over_ssh:
        setup, _ = send(over_ssh, {"bytes": 0}, b"")
        print(f"ssh connection set-up (start to the far end's first line): {setup:.2f} s")
    for megapixels in sizes:
        for sample in ("u8", "f32"):
            image = layer(megapixels, sample)
            descriptor, payload, enc, dec = measure(image, CANDIDATES[CHOSEN])
            _, raw_pipe = send(local, {"bytes": image.nbytes}, image.data)
            _, pipe = send(local, {"pixels": descriptor, "bytes": len(payload)}, payload)
            line = (
                f"{megapixels:4g} MP {sample:3} {mb(image.nbytes)} raw -> {mb(len(payload))}  enc {enc:5.2f} s  dec {dec:5.2f} s  "
                f"pipe {pipe:5.2f} s (raw bytes {raw_pipe:5.2f} s)"
            )
            if over_ssh:
                _, ssh = send(over_ssh, {"pixels": descriptor, "bytes": len(payload)}, payload)
                line += f"  ssh {ssh:5.2f} s ({len(payload) / ssh / 1e6:5.0f} MB/s, +{ssh - pipe:5.2f} s over the pipe)"
            wire = len(payload) / LINK
            line += f"  | 100 Mbit/s: {wire:5.1f} s on the wire, {enc + wire + dec:5.1f} s with enc+dec (raw {image.nbytes / LINK:5.1f} s)"
            print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 6, 24], help="layer sizes in megapixels")
    parser.add_argument("--no-candidates", action="store_true", help="only the transfers with the default format")
    args = parser.parse_args()
    print(f"transfer_bench: {describe()}")
    print(f"layers: {PHOTO.name} enlarged to {', '.join(f'{s:g}' for s in args.sizes)} MP, RGB")
    if not args.no_candidates:
        candidates(args.sizes)
    reason = unavailable()
    if reason:
        print(f"no loopback SSH figures: {reason}")
        transfers(args.sizes, None)
        return
    with tempfile.TemporaryDirectory(prefix="stylecore-sshd-") as folder, Sshd(Path(folder)) as server:
        transfers(args.sizes, server)


if __name__ == "__main__":
    main()
