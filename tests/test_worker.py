"""`stylecore worker` spoken to over a pipe, as the GIMP dialog does (docs/worker-protocol.md)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylecore.protocol import errors, framing, messages

from .conftest import gradient_image

WAIT = 300  # seconds; generous: the machine is shared, and nothing here asserts a speed


class WorkerProcess:
    """A worker child with its stdout read by a thread, so a test can wait for an event with a timeout."""

    def __init__(self, tmp: Path, *args: str, memory_cap: int | None = None, wait: float = WAIT):
        """memory_cap: the child's address space (RLIMIT_AS), so a worker that grows without end fails its test, not
        the machine; wait: how long `until` waits for one event, so a worker that hangs fails its test too."""
        self.log = open(tmp / "worker.log", "w")
        self.wait = wait
        cmd = [sys.executable, "-u", "-m", "stylecore", "worker", "--device", "cpu", *args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, preexec_fn=_capped(memory_cap)
        )
        self.events: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        reader = framing.MessageReader(self.proc.stdout)  # strict: every stdout line must be one JSON object
        while message := reader.read():
            self.events.put(message.obj)
        self.events.put(None)

    def send(self, obj: dict | str, payload: bytes | None = None) -> None:
        if isinstance(obj, str):
            self.send_raw(obj.encode("utf-8", "surrogatepass") + b"\n")
        else:
            framing.write_message(self.proc.stdin, obj, payload)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: a line and a payload that need not agree. Written by a thread, so a worker that stops
        reading its stdin fails the test after `wait` instead of blocking it."""

        def write() -> None:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):  # the worker has gone: the next `until` says so
                pass

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(self.wait)
        assert not writer.is_alive(), f"the worker stopped reading its stdin; log:\n{self.log_text()[-3000:]}"

    def until(self, predicate) -> dict:
        """The first event that satisfies predicate; every event read on the way is kept in `seen`."""
        while True:
            event = self.events.get(timeout=self.wait)
            assert event is not None, f"worker exited early; log:\n{Path(self.log.name).read_text()[-3000:]}"
            self.seen.append(event)
            if predicate(event):
                return event

    def terminal(self, rid: str) -> dict:
        return self.until(lambda e: e.get("id") == rid and e["event"] in messages.TERMINAL_EVENTS)

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def close(self) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        code = self.proc.wait(timeout=WAIT)
        self.log.close()
        return code


def _capped(memory_cap: int | None):
    if memory_cap is None:
        return None

    def limit() -> None:  # in the child, before it runs Python
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))

    return limit


@pytest.fixture
def worker(tmp_path):
    w = WorkerProcess(tmp_path, "--random-weights")
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()
    w.log.close()


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """A GIMP-like RGBA content layer with a transparent band, and a style layer with alpha (to be ignored)."""
    rgba = np.dstack([gradient_image(48, 40), np.ones((40, 48), np.float32)])
    rgba[:8, :, 3] = 0.0
    rgba[8:16, :, 3] = 0.5
    np.save(tmp_path / "content.npy", rgba.astype(np.float32))
    style = np.dstack([np.random.default_rng(3).random((36, 36, 3)), np.zeros((36, 36))]).astype(np.float32)
    np.save(tmp_path / "style.npy", style)
    (tmp_path / "images").mkdir()
    return {"content": tmp_path / "content.npy", "style": tmp_path / "style.npy", "dir": tmp_path}


def request(rid: str, files: dict[str, Path], size: int = 64, preset: str = "draft", **extra) -> dict:
    req = {
        "op": "stylize",
        "id": rid,
        "content": str(files["content"]),
        "styles": [{"path": str(files["style"]), "weight": 1.0}],
        "options": {"strength": 70, "preset": preset, "working_size": size, "seed": 0},
        "output": str(files["dir"] / f"{rid}.npy"),
    }
    req.update(extra)
    return req


def test_preview_then_apply_in_one_worker_loads_the_engine_once(worker, files):
    ready = worker.until(lambda e: True)
    assert ready["event"] == "ready" and ready["protocol"] == messages.PROTOCOL == 3 and ready["weights_loads"] == 1
    images_dir = files["dir"] / "images"
    # every=1000: the first evaluation's image only, so its file stays until the request ends
    worker.send(request("preview-1", files, images={"every": 1000, "dir": str(images_dir)}))
    image = worker.until(lambda e: e["event"] == "image")
    state = np.load(image["path"])
    assert image["id"] == "preview-1" and state.dtype == np.float32 and state.shape == (image["height"], image["width"], 3)
    preview = worker.terminal("preview-1")
    assert preview["event"] == "result" and preview["weights_loads"] == 1
    assert list(images_dir.iterdir()) == [], "intermediate images are removed when their request ends"

    worker.send(request("apply-1", files, options={"strength": 40, "preset": "draft", "working_size": 64}))
    apply = worker.terminal("apply-1")
    assert apply["event"] == "result" and apply["weights_loads"] == 1, "the second run reused the loaded engine"
    content, out = np.load(files["content"]), np.load(apply["path"])
    assert out.dtype == np.float32 and out.shape == (40, 48, 4)
    np.testing.assert_array_equal(out[..., 3], content[..., 3])  # alpha passed through untouched
    assert np.abs(out[..., :3] - content[..., :3]).mean() > 0.01  # and the colour was repainted
    progress = [e for e in worker.seen if e["event"] == "progress" and e["id"] == "apply-1"]
    assert progress and {"stage", "scale", "scales", "step", "steps", "done", "elapsed", "eta"} <= set(progress[0])
    assert worker.close() == 0


@pytest.mark.real_weights
def test_apply_after_preview_never_reads_the_weights_again(real_weights_available, tmp_path, files):
    """Timing-free proof: the weights file is deleted once the worker is ready, and both runs still work."""
    from stylecore.models import vgg_weights

    copy = tmp_path / "vgg16-copy.npz"
    shutil.copy(vgg_weights.cache_path("vgg16"), copy)
    w = WorkerProcess(tmp_path, "--weights", str(copy))
    try:
        assert w.until(lambda e: True)["event"] == "ready"
        copy.unlink()
        for rid in ("preview", "apply"):
            w.send(request(rid, files))
            event = w.terminal(rid)
            assert event["event"] == "result" and event["weights_loads"] == 1, event
        assert w.close() == 0
    finally:
        if w.proc.poll() is None:
            w.proc.kill()


def test_cancel_stops_a_running_preview_and_the_next_request_works(worker, files):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("long", files, preset="balanced"))  # 60 evaluations
    worker.send(request("queued", files))
    worker.until(lambda e: e.get("id") == "long" and e["event"] == "progress")
    worker.send({"op": "cancel", "id": "queued"})  # dropped at once, while "long" is still running
    assert worker.until(lambda e: e.get("id") in ("long", "queued") and e["event"] != "progress") == {
        "id": "queued",
        "event": "cancelled",
    }
    worker.send({"op": "cancel", "id": "long"})
    assert worker.terminal("long")["event"] == "cancelled"
    last = [e for e in worker.seen if e.get("id") == "long" and e["event"] == "progress"][-1]
    assert last["step"] < last["steps"], "the run stopped before its end"
    assert not (files["dir"] / "long.npy").exists() and not (files["dir"] / "queued.npy").exists()
    worker.send({"op": "cancel", "id": "long"})  # late cancel of a finished id: ignored
    worker.send(request("after", files))
    assert worker.terminal("after")["event"] == "result"
    assert np.load(files["dir"] / "after.npy").shape == (40, 48, 4)


@pytest.mark.parametrize(
    "line,message",
    [
        ("this is not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"op": "dance", "id": "x"}', "unknown op"),
        ('{"op": "stylize", "id": "x"}', "'content'"),
        ('{"op": "cancel"}', "'id'"),
    ],
)
def test_malformed_requests_get_an_error_and_the_worker_keeps_serving(worker, files, line, message):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(line)
    error = worker.until(lambda e: e["event"] == "error")
    assert error["kind"] == "BadRequest" and message in error["message"] and "\n" not in error["message"]
    worker.send(request("fine", files))
    assert worker.terminal("fine")["event"] == "result"


def test_bad_requests_and_bad_files_name_the_problem_in_one_line(worker, files):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("opt", files, options={"strenght": 50}))
    assert "unknown option(s) strenght" in worker.until(lambda e: e["event"] == "error")["message"]
    missing = str(files["dir"] / "nope.npy")
    worker.send(request("missing", files, content=missing))
    error = worker.terminal("missing")
    assert error["event"] == "error" and error["kind"] == "BadInput" and missing in error["message"]
    worker.send(request("overwrite", files, output=str(files["content"])))
    assert "overwrite an input" in worker.terminal("overwrite")["message"]
    np.save(files["dir"] / "flat.npy", np.zeros((5, 5), np.int64))
    worker.send(request("dtype", files, content=str(files["dir"] / "flat.npy")))
    assert "expected float32 HxWxC" in worker.terminal("dtype")["message"]
    worker.send(request("ok", files))
    assert worker.terminal("ok")["event"] == "result"


@pytest.mark.parametrize(
    "duplicate",
    [
        request("p1", {"content": "c.npy", "style": "s.npy", "dir": Path("/t")}),  # well formed
        {"op": "stylize", "id": "p1", "options": {"seed": True}},  # and malformed: still not p1's end
        {"op": "dance", "id": "p1"},
    ],
)
def test_a_duplicate_id_is_rejected_without_ending_the_running_request(worker, files, duplicate):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("p1", files, preset="balanced"))
    worker.until(lambda e: e.get("id") == "p1" and e["event"] == "progress")
    worker.send(duplicate)
    rejected = worker.until(lambda e: e.get("id") == "p1" and e["event"] not in ("progress", "image"))
    assert (
        rejected["event"] == "rejected" and rejected["duplicate"] is True and "already queued or running" in rejected["message"]
    )
    worker.send({"op": "cancel", "id": "p1"})
    assert worker.terminal("p1")["event"] == "cancelled"
    assert [e["event"] for e in worker.seen if e.get("id") == "p1" and e["event"] in messages.TERMINAL_EVENTS] == ["cancelled"]


# Every rule's message is checked in tests/test_protocol.py; here, that the worker answers with it and runs nothing.
@pytest.mark.parametrize(
    "options,words",
    [({"seed": True}, "seed True is not a whole number"), ({"working_size": 10**40}, "is outside 64..8192")],
)
def test_options_of_the_wrong_json_type_get_an_error_and_no_run(worker, files, options, words):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("typed", files, options=options))
    error = worker.terminal("typed")
    assert error["event"] == "error" and error["kind"] == "BadRequest" and words in error["message"], error
    assert not any(e["event"] == "progress" for e in worker.seen)
    worker.send(request("fine", files))
    assert worker.terminal("fine")["event"] == "result"


@pytest.mark.parametrize(
    "field,value", [("content", "/tmp/a\x00b.npy"), ("output", "/tmp/\ud800.npy"), ("content", "/tmp/\udfff.png")]
)
def test_paths_no_file_system_can_hold_are_refused_in_one_line(worker, files, field, value):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("odd", files, **{field: value}))  # JSON escapes them: \u0000, \ud800
    error = worker.terminal("odd")
    assert error["event"] == "error" and error["kind"] == "BadRequest" and f"'{field}'" in error["message"], error
    worker.send(request("fine", files))
    assert worker.terminal("fine")["event"] == "result"
    assert "Traceback" not in worker.log_text()


def test_sigterm_mid_run_removes_the_intermediate_images_and_exits(worker, files):
    """The kernel's parent-death signal is SIGTERM (PR_SET_PDEATHSIG), so this is also the parent dying."""
    worker.until(lambda e: e["event"] == "ready")
    images_dir = files["dir"] / "images"
    worker.send(request("long", files, preset="balanced", images={"every": 1, "dir": str(images_dir)}))
    worker.until(lambda e: e.get("id") == "long" and e["event"] == "image")
    assert list(images_dir.iterdir())
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=WAIT) == errors.EXIT_CANCELLED
    assert list(images_dir.iterdir()) == [] and not (files["dir"] / "long.npy").exists()
    assert "Traceback" not in worker.log_text()


def test_a_client_that_closes_stdout_early_does_not_crash_the_worker(tmp_path, files):
    log = tmp_path / "worker.log"
    cmd = [sys.executable, "-u", "-m", "stylecore", "worker", "--device", "cpu", "--random-weights"]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    try:
        assert framing.MessageReader(proc.stdout.fileno()).read().obj["event"] == "ready"
        proc.stdout.close()  # the reader has gone: every event now meets a broken pipe
        framing.write_message(proc.stdin, request("unheard", files))
        deadline = time.monotonic() + WAIT
        while "unheard: result" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (files["dir"] / "unheard.npy").exists()
        proc.stdin.close()
        assert proc.wait(timeout=WAIT) == 0
        assert "Traceback" not in log.read_text() and "Exception ignored" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stray_prints_cannot_corrupt_the_protocol(tmp_path):
    """Anything written to fd 1 after start-up (a library's print) lands in the log, not among the events."""
    code = (
        "import os; from stylecore.protocol import framing; s = framing.claim_stdout(); "
        "print('stray'); os.write(1, b'raw\\n'); framing.write_message(s, {'event': 'ok'})"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT, env=os.environ)
    assert r.stdout == '{"event": "ok"}\n' and "stray" in r.stderr and "raw" in r.stderr


@pytest.fixture
def big_files(files) -> dict[str, Path]:
    """A 200x160 content: big enough that the optimisation after the instant picture is still running when it is read."""
    np.save(files["dir"] / "content.npy", gradient_image(200, 160))
    return files


def preview_request(rid: str, files: dict[str, Path], **options) -> dict:
    images = {"every": 1000, "dir": str(files["dir"] / "images")}  # the instant picture, then the first evaluation's
    req = request(rid, files, size=200, preset="balanced", images=images, first="instant")
    req["options"].update(options)
    return req


@pytest.mark.real_weights
def test_a_preview_sends_the_instant_picture_before_the_optimisation_starts(worker, big_files):
    """The real instant network (from the cache), random VGG weights for the optimisation that follows."""
    from stylecore.models import instant_weights

    instant_weights.verify()
    worker.until(lambda e: e["event"] == "ready")
    worker.send(preview_request("p1", big_files))
    first = worker.until(lambda e: e.get("id") == "p1" and e["event"] in ("image", "progress", *messages.TERMINAL_EVENTS))
    assert first["event"] == "image" and first["stage"] == "instant", worker.seen
    picture = np.load(first["path"])  # read now: the optimisation has not begun its first evaluation
    assert picture.shape == (160, 200, 3) and (first["width"], first["height"]) == (200, 160)
    worker.send(messages.cancel_request("p1"))
    assert worker.terminal("p1")["event"] == "cancelled"
    worker.send(request("i1", big_files, size=200, preset="instant"))  # the same options as an instant run
    assert worker.terminal("i1")["event"] == "result"
    alone = np.load(big_files["dir"] / "i1.npy")[..., :3]
    assert np.abs(alone - picture).max() < 1e-5, "the first picture is the instant preset's, with the request's options"
    painted = np.abs(picture - gradient_image(200, 160)).mean()
    assert picture.std() > 0.02 and painted > 0.02, "a painted picture, not the photo"


def test_without_the_instant_network_a_preview_warns_with_the_repair_and_still_paints(worker, files):
    ready = worker.until(lambda e: e["event"] == "ready")
    assert "instant network" in ready["instant"] and "install.py" in ready["instant"], "ready says instant cannot run"
    worker.send(preview_request("p1", files, working_size=64))
    warning = worker.until(lambda e: e["event"] in ("warning", "image", *messages.TERMINAL_EVENTS))
    assert warning["event"] == "warning" and warning["kind"] == "WeightsUnavailable" and warning["code"] == 3
    assert "instant network" in warning["message"] and "python3 install.py" in warning["message"]
    assert "\n" not in warning["message"]
    assert worker.terminal("p1")["event"] == "result"
    images = [e for e in worker.seen if e["event"] == "image"]
    assert images and all(e["stage"] == "optimize" for e in images), "today's preview: the optimisation's images"


def test_an_instant_run_without_the_network_fails_in_one_line_and_never_runs_another_preset(worker, files):
    worker.until(lambda e: e["event"] == "ready")
    worker.send(request("i1", files, preset="instant", images={"every": 1, "dir": str(files["dir"] / "images")}))
    end = worker.terminal("i1")
    assert end["event"] == "error" and end["kind"] == "WeightsUnavailable" and end["code"] == 3
    assert "python3 install.py" in end["message"] and "\n" not in end["message"]
    assert not [e for e in worker.seen if e.get("id") == "i1" and e["event"] in ("image", "progress")]
    assert not (files["dir"] / "i1.npy").exists()
