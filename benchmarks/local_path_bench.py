"""The local plug-in's two ways to move a layer to the worker and its result back: .npy files or in-band, codec none.

Both sides as they run: the plug-in's stdlib code (stylecore.protocol.npy's write_npy/read_npy, or
messages.build_request and the MessageReader) and the worker's (reading.load of the .npy and StyledImage.save, or parse_request and the
inline result). The engine is left out: a stand-in worker returns the content as the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from stylecore.protocol import framing, messages, npy, pixels  # noqa: E402

ECHO = """
import sys, numpy as np
from stylecore.protocol import framing, messages
from stylecore.images import reading
from stylecore.frontends import worker
from stylecore.images.result import StyledImage
out = framing.claim_stdout()
reader = framing.MessageReader(0)
while (m := reader.read()) is not None:
    req = messages.parse_request(m.obj, m.payload)
    pic = reading.load(worker.source_of(req.content), "content")
    result = StyledImage(pic.rgb, pic.alpha, pic.bits)
    if req.inline:
        d, p = worker.inline_pixels(result.rgba(), req.codec)
        framing.write_message(out, {"id": req.id, "event": "result", "pixels": d}, p)
    else:
        result.save(req.output)
        framing.write_message(out, {"id": req.id, "event": "result", "path": req.output})
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("megapixels", nargs="?", type=float, default=6.0, help="layer size (default 6)")
    megapixels = parser.parse_args().megapixels
    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 / width)
    rgba = np.random.default_rng(0).random((height, width, 4), dtype=np.float32)
    data = rgba.tobytes()
    proc = subprocess.Popen([sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    reader = framing.MessageReader(proc.stdout)
    folder = tempfile.mkdtemp()
    style = os.path.join(folder, "style.npy")
    np.save(style, rgba[:64, :64, :3])
    print(f"local_path_bench: {width}x{height} RGBA float32 ({len(data) / 1e6:.0f} MB), content in and result back")
    for round_ in range(3):
        started = time.perf_counter()
        content, output = os.path.join(folder, "content.npy"), os.path.join(folder, "result.npy")
        npy.write_npy(content, width, height, 4, data)
        framing.write_message(proc.stdin, messages.build_request(f"f{round_}", content, [(style, 1.0)], {}, output)[0])
        reader.read()
        npy.read_npy(output)
        files = time.perf_counter() - started
        started = time.perf_counter()
        layer = pixels.Pixels(width, height, 4, "f32", data)
        obj, payload = messages.build_request(f"i{round_}", layer, [(style, 1.0)], {}, None, codec="none")
        framing.write_message(proc.stdin, obj, payload)
        message = reader.read()
        assert message is not None and message.payload is not None
        pixels.decode(message.obj["pixels"], message.payload)
        inline = time.perf_counter() - started
        print(f"  round {round_ + 1}: .npy files {files:5.2f} s   in-band (codec none) {inline:5.2f} s")
    proc.stdin.close()
    proc.wait()
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
