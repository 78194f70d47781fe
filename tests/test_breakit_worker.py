"""Break-it: the worker against hostile and careless input (issue 26, kinds 3, 5, 6 and 9).

Each worker runs under a memory cap (RLIMIT_AS: what a healthy worker needs, measured, plus HEADROOM), so memory that
grows with what the input declares fails the test instead of the machine, and each wait for an event is bounded
(WAIT), so a hang fails the test too.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from stylecore.frontends import worker as worker_module
from stylecore.images.arrays import from_array
from stylecore.protocol import errors, framing, messages, pixels

from .conftest import gradient_image
from .test_worker import WorkerProcess, request

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")

HEADROOM = 1 << 30  # bytes of address space a worker gets beyond what a healthy one used
WAIT = 120  # seconds for one event: the machine is shared; an answer that never comes fails here


@pytest.fixture(scope="module")
def memory_cap(tmp_path_factory) -> int:
    """The address space of a healthy worker after one small run (torch reserves a few GB), plus HEADROOM."""
    tmp = tmp_path_factory.mktemp("healthy")
    files = _files(tmp)
    w = WorkerProcess(tmp, "--random-weights", wait=WAIT)
    try:
        w.until(lambda e: e["event"] == "ready")
        w.send(request("healthy", files))
        assert w.terminal("healthy")["event"] == "result"
        status = Path(f"/proc/{w.proc.pid}/status").read_text()
        peak = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmPeak:"))
        assert w.close() == 0
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    return peak + HEADROOM


def _files(folder: Path) -> dict[str, Path]:
    np.save(folder / "content.npy", gradient_image(48, 40))
    np.save(folder / "style.npy", np.random.default_rng(3).random((36, 36, 3)).astype(np.float32))
    return {"content": folder / "content.npy", "style": folder / "style.npy", "dir": folder}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return _files(tmp_path)


@pytest.fixture
def capped(tmp_path, memory_cap):
    w = WorkerProcess(tmp_path, "--random-weights", memory_cap=memory_cap, wait=WAIT)
    w.until(lambda e: e["event"] == "ready")
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()
    w.log.close()


def line(obj: dict, payload: bytes = b"", declared: int | None = None) -> bytes:
    """A request line whose "bytes" says `declared` (default: the truth), and its payload."""
    return json.dumps({**obj, "bytes": len(payload) if declared is None else declared}).encode() + b"\n" + payload


def carried(rid: str, files: dict[str, Path], content: dict, **extra) -> dict:
    """A request whose content travels in the payload (`content` is its {"pixels": ...} or {"file": ...})."""
    return {**request(rid, files), "content": content, **extra}


def small_pixels() -> tuple[dict, bytes]:
    return pixels.encode(from_array(gradient_image(12, 10)))


def zeros_zlib(n: int, chunk: int = 1_000_000) -> bytes:
    """A valid zlib stream of n zero bytes (n a multiple of chunk) in a second: one fully flushed block repeated."""
    c = zlib.compressobj(9)
    head = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    adler, zeros = 1, bytes(chunk)
    for _ in range(n // chunk):
        adler = zlib.adler32(zeros, adler)
    return head + block * (n // chunk - 1) + tail[:-4] + adler.to_bytes(4, "big")


def declares(width: int, height: int, payload: bytes, channels: int = 1) -> dict:
    return {
        "pixels": {"width": width, "height": height, "channels": channels, "sample": "u8", "byteorder": "little",
                   "codec": "zlib", "shuffle": False, "up": False, "bytes": len(payload)}
    }  # fmt: skip


def assert_refused(w: WorkerProcess, rid: str, *words: str, code: int = errors.EXIT_BAD_INPUT) -> dict:
    end = w.terminal(rid)
    assert end["event"] == "error" and end["code"] == code and "\n" not in end["message"], end
    for word in words:
        assert word in end["message"], end
    return end


def assert_serves_on(w: WorkerProcess, files: dict[str, Path]) -> None:
    """The next request is answered, the worker exits at EOF, and the log holds no traceback."""
    w.send(request("next", files))
    assert w.terminal("next")["event"] == "result"
    assert w.close() == 0
    assert "Traceback" not in w.log_text()


# --- kind 3: numbers too large for a float, and a reader thread that dies ----------------------------------------


@pytest.mark.parametrize(
    "where",
    ["descriptor bytes", "descriptor sample", "strength", "style weight"],
)
def test_numbers_too_large_for_a_float_and_odd_json_types_are_one_line(capped, files, where):
    """Failed before: a descriptor's "bytes" of 1 and 400 zeros raised OverflowError, a "sample" of [] TypeError, in the
    reader thread, which died: no answer, and later requests never answered."""
    huge = 10**400
    descriptor, payload = small_pixels()
    obj = carried("odd", files, {"pixels": descriptor})
    if where == "descriptor bytes":
        obj["content"] = {"pixels": {**descriptor, "bytes": huge}}
    elif where == "descriptor sample":
        obj["content"] = {"pixels": {**descriptor, "sample": []}}
    elif where == "strength":
        obj["options"] = {**obj["options"], "strength": huge}
    else:
        obj["styles"] = [{"path": str(files["style"]), "weight": huge}]
    capped.send_raw(line(obj, payload))
    assert_refused(capped, "odd")
    assert_serves_on(capped, files)


def test_a_reader_thread_that_dies_ends_the_worker_with_one_log_line(tmp_path):
    """Failed before: the reader died with a traceback and the worker waited for requests forever, past EOF too."""
    code = (
        "import sys\n"
        "from stylecore.protocol import framing\n"
        "from stylecore.frontends import worker\n"
        "def broken(self):\n"
        "    raise RuntimeError('the stream broke')\n"
        "framing.MessageReader._line = broken\n"
        "sys.exit(worker.main(['--device', 'cpu', '--random-weights']))\n"
    )
    log = tmp_path / "worker.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.wait(timeout=WAIT) == errors.EXIT_INTERNAL  # although its stdin stays open
        reader = framing.MessageReader(proc.stdout)
        events = []
        while (message := reader.read()) is not None:
            events.append(message.obj)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [e["event"] for e in events] == ["ready", "error"] and events[1]["code"] == errors.EXIT_INTERNAL
    text = log.read_text()
    assert "Traceback" not in text and len([x for x in text.splitlines() if "the stream broke" in x]) == 1, text


def test_an_error_event_is_made_in_one_place_from_any_exception():
    bad = worker_module.error_event(errors.BadInput("a.png: not\nan image"), "r1")
    assert bad == {"id": "r1", "event": "error", "kind": "BadInput", "code": 2, "message": "a.png: not an image"}
    bug = worker_module.error_event(KeyError("x"), None)
    assert bug["kind"] == "InternalError" and bug["code"] == errors.EXIT_INTERNAL and "KeyError" in bug["message"]
    far = worker_module.error_event(errors.WorkerFailed("gone", exit_code=6), "r2", event=messages.WARNING)
    assert far["event"] == "warning" and far["code"] == 6


# --- kind 5: memory bounded by our limits, not by what the input declares -----------------------------------------


@pytest.mark.parametrize("declared", [10**9, 100], ids=["1 GB declared", "fewer bytes declared than sent"])
def test_a_lying_byte_count_is_refused_before_buffering_and_the_next_request_is_read(capped, files, declared):
    """Failed before: "bytes": 1e9 with 264 real bytes made the worker wait for 1 GB, swallowing the next request; 100
    made the rest of the payload and the next request one junk line."""
    descriptor, payload = small_pixels()
    capped.send_raw(line(carried("liar", files, {"pixels": descriptor}), payload, declared))
    assert_refused(capped, "liar", "'bytes'")
    assert_serves_on(capped, files)


def test_a_payload_declaring_more_pixels_than_allowed_is_refused_before_decoding(capped, files):
    """1.6 MB of zlib that declares 40000x40000 (1.6 GB): failed before, decoding it in the reader thread ran out of
    memory under the cap and the worker hung."""
    payload = zeros_zlib(40000 * 40000)
    capped.send_raw(line(carried("huge", files, declares(40000, 40000, payload)), payload))
    assert_refused(capped, "huge", "40000x40000")
    assert_serves_on(capped, files)


def test_options_paths_and_sizes_are_checked_before_pixels_are_decoded(capped, files):
    """The payloads are cut short, so decoding one fails: the errors must name the option and the missing style.
    Failed before: both said the payload ended inside its zlib stream (it was decoded first)."""
    big = zlib.compress(bytes(8000 * 8000 * 3))[:5000]
    obj = carried("option", files, declares(8000, 8000, big, channels=3))
    obj["options"] = {**obj["options"], "strenght": 50}
    capped.send_raw(line(obj, big))
    assert_refused(capped, "option", "strenght")
    small = zlib.compress(bytes(1500 * 1500 * 3))[:2000]
    missing = str(files["dir"] / "missing-style.png")
    obj = carried("path", files, declares(1500, 1500, small, channels=3), styles=[{"path": missing, "weight": 1.0}])
    capped.send_raw(line(obj, small))
    assert_refused(capped, "path", missing)
    assert_serves_on(capped, files)


def test_a_refused_payload_is_skipped_exactly_even_when_it_holds_lines(capped, files):
    """A refused request's payload never becomes requests: a carried file that is itself a request line."""
    ghost = json.dumps(request("ghost", files)).encode() + b"\n"
    obj = carried("refused", files, {"file": {"name": "ghost.png", "bytes": len(ghost)}}, options={"seed": -1})
    capped.send_raw(line(obj, ghost))
    assert_refused(capped, "refused", "seed")
    assert_serves_on(capped, files)
    assert not any(e.get("id") == "ghost" for e in capped.seen)


# --- kind 6: carried files: every Pillow failure is one BadInput line -----------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def dds_unknown_format() -> bytes:
    header = bytearray(124)
    struct.pack_into("<IIIIIII", header, 0, 124, 0x1007, 16, 16, 0, 0, 0)
    struct.pack_into("<II4s", header, 72, 32, 0x4, b"ABCD")  # DDPF_FOURCC with a four-cc nobody knows
    return b"DDS " + bytes(header) + bytes(1024)


@pytest.mark.parametrize(
    "name,data",
    [("huge.png", png_declaring(30000, 30000)), ("odd.dds", dds_unknown_format())],
)
def test_carried_files_pillow_cannot_read_are_one_bad_input_line(capped, files, name, data):
    """Failed before: DecompressionBombError and NotImplementedError were exit 70 with a traceback in the log."""
    capped.send_raw(line(carried("file", files, {"file": {"name": name, "bytes": len(data)}}), data))
    assert_refused(capped, "file", name)
    assert_serves_on(capped, files)


# --- kind 9: silent conflicts -------------------------------------------------------------------------------------


def test_inline_return_with_an_output_is_refused_in_one_line():
    """Failed before: the output was ignored without a word."""
    obj = {**request("r", {"content": "/t/c.npy", "style": "/t/s.npy", "dir": Path("/t")}), "return": "inline"}
    with pytest.raises(errors.BadRequest, match="'output'.*inline"):
        messages.parse_request(obj)
    with pytest.raises(errors.BadRequest, match="'dir'.*inline"):
        messages.parse_request({**obj, "output": None, "images": {"every": 1, "dir": "/t"}})
    assert messages.parse_request({**obj, "output": None}).inline
