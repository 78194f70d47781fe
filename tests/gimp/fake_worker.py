"""A stand-in `stylecore` package speaking the worker protocol (docs/worker-protocol.md), for client tests without torch.

tests/test_plugin_helpers.py copies this file as `<dir>/stylecore/__main__.py`; a file `mode` beside it picks the
behaviour: ok (the result is the content, inverted), crash (dies before ready, as a broken environment does),
slow (never finishes a request, and ignores SIGTERM and stdin EOF while it works), noweights (an error event instead
of ready, as the real worker sends when it cannot load its weights).
"""

import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODE_FILE = os.path.join(HERE, "mode")
MODE = open(MODE_FILE).read().strip() if os.path.exists(MODE_FILE) else "ok"


def say(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def progress(rid: str, **fields) -> dict:
    """A progress event with every field of the real worker's (stylecore.protocol.progress.Progress)."""
    record = {"stage": "optimize", "width": 2, "height": 3, "elapsed": 0.0, "eta": None, "losses": {}, **fields}
    return {"id": rid, "event": "progress", **record}


def main() -> None:
    if MODE == "noweights":  # the real worker's way: one error event with id null, then exit 3
        say({"id": None, "event": "error", "kind": "WeightsUnavailable", "message": "no VGG16 weights in the cache; run install"})
        sys.exit(3)
    if MODE == "crash":
        sys.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'\n")
        sys.exit(1)
    try:
        import numpy  # noqa: F401

        numpy_state = "ok"
    except ImportError as exc:
        numpy_state = "hidden" if "hidden" in str(exc) else "absent"
    env = {k: os.environ.get(k) for k in ("PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "GI_TYPELIB_PATH", "KEEP_ME")}
    print("fake worker starting", file=sys.stderr, flush=True)
    say(
        {
            "event": "ready",
            "protocol": 3,  # messages.PROTOCOL (this stand-in imports nothing of stylecore)
            "version": "fake",
            "device": "cpu",
            "load_seconds": 0.0,
            "env": env,
            "numpy": numpy_state,
            "pid": os.getpid(),
            "instant": "ok",
        }
    )
    for line in sys.stdin:
        try:
            req = json.loads(line)
        except ValueError:
            say({"id": None, "event": "error", "kind": "BadRequest", "message": "not JSON"})
            continue
        if req.get("op") != "stylize":
            continue
        if MODE == "slow":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            say(progress(req["id"], done=0.1, scale=1, scales=2, step=1, steps=9))
            while True:
                time.sleep(0.2)
        if "bad" in req["styles"][0]["path"]:
            say(
                {
                    "id": req["id"],
                    "event": "error",
                    "kind": "BadInput",
                    "message": f"{req['styles'][0]['path']}: not an image\nfix it",
                }
            )
            continue
        with open(req["content"], "rb") as fh:
            raw = fh.read()
        header_len = 10 + int.from_bytes(raw[8:10], "little")
        import array

        pixels = array.array("f", raw[header_len:])
        for i in range(len(pixels)):
            if i % 4 != 3:
                pixels[i] = 1.0 - pixels[i]
        with open(req["output"], "wb") as fh:
            fh.write(raw[:header_len] + pixels.tobytes())
        say(progress(req["id"], done=1.0, scale=1, scales=1, step=1, steps=1))
        say({"id": req["id"], "event": "result", "path": req["output"], "width": 0, "height": 0, "seconds": 0.0})


main()
