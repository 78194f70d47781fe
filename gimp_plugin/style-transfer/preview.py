"""The Style Transfer dialog's live preview pane (GTK 3, as GIMP 3 uses; standard library and gi only).

It shows the layer (or the selection's box), downscaled to at most MAX_SIDE pixels, as the current
settings would paint it. The picture forms in the pane as the warm worker streams intermediate images.
A settings change cancels the running preview at once and starts a new one after DEBOUNCE_MS, so a
slider drag starts one preview, not dozens. The worker is read through GLib I/O watches on its stdout
descriptor, never with a blocking loop, so the dialog stays responsive. Starting the worker (seconds:
torch, weights) happens in a thread for the same reason. The worker stays warm for the final run:
`stop()` hands it back with no preview left running in it.
"""

from __future__ import annotations

import array
import json
import os
import threading
import time
from collections.abc import Callable

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402
from worker_client import read_npy, write_npy  # noqa: E402

MAX_SIDE = 320  # long side of the preview, in pixels
DEBOUNCE_MS = 400  # quiet time after the last change before a new preview starts
IMAGE_EVERY = 2  # an intermediate image every N evaluations (the first evaluation's too)
STOP_TIMEOUT = 30.0  # seconds stop() waits for a cancelled preview to end before it gives up on the worker
# The preview's own schedule: the balanced preset (the default quality) at 320 px, so the preview looks like what
# OK will paint. On 2 quiet CPU cores it finishes in about 6 s and shows its first image within 0.2 s of a change
# (benchmarks/preview_bench.py; draft would take 2.4 s). Brush size is relative to the picture, so the strokes look
# as they will at full size.
PREVIEW_OPTIONS = {"preset": "balanced", "working_size": MAX_SIDE}
# Settings that change the picture. Quality, working size and device change only how the final run gets there.
WATCHED = (
    "style-file",
    "style-file-2",
    "style-blend",
    "style-layer",
    "strength",
    "preserve-colors",
    "seamless",
    "style-scale",
    "seed",
)
TERMINAL = ("result", "error", "cancelled")


def layer_pixels(drawable, max_side: int = MAX_SIDE) -> tuple[int, int, bytes]:
    """The drawable inside the selection's box, downscaled by GEGL to at most max_side: (width, height, R'G'B'A float32)."""
    gi.require_version("Gegl", "0.4")
    from gi.repository import Gegl

    ok, x, y, w, h = drawable.mask_intersect()
    if not ok or w == 0 or h == 0:
        raise ValueError("the selection does not touch this layer; select part of the layer or Select > None")
    scale = min(1.0, max_side / max(w, h))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    rect = Gegl.Rectangle.new(round(x * scale), round(y * scale), sw, sh)
    raw = drawable.get_buffer().get(rect, scale, "R'G'B'A float", Gegl.AbyssPolicy.CLAMP)
    return sw, sh, bytes(raw)


def to_u8(data: bytes) -> bytes:
    """float32 in 0..1 to 8-bit for the screen (about 50 ms for 320x213 RGBA in CPython; NaN becomes 0)."""
    values = array.array("f")
    values.frombytes(data)
    return bytes([0 if not v > 0.0 else 255 if v >= 1.0 else int(v * 255.0 + 0.5) for v in values])


def pixbuf_from_float(width: int, height: int, channels: int, data: bytes) -> GdkPixbuf.Pixbuf:
    if channels not in (3, 4):
        raise ValueError(f"{channels}-channel pixels cannot be shown")
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(to_u8(data)), GdkPixbuf.Colorspace.RGB, channels == 4, 8, width, height, width * channels
    )


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Pipe:
    """Complete JSON lines from a descriptor, read only when data is there (an I/O watch on POSIX)."""

    def __init__(self, fd: int, on_event: Callable[[dict], None], on_eof: Callable[[], None]):
        self.fd, self.on_event, self.on_eof = fd, on_event, on_eof
        self.pending = b""
        self.source: int | None = None

    def watch(self) -> None:
        if os.name == "nt":  # GLib watches pipes only on POSIX: poll the pipe's byte count instead
            self.source = GLib.timeout_add(40, self._poll)
        else:
            self.source = GLib.io_add_watch(
                self.fd, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR, self._ready
            )

    def unwatch(self) -> None:
        if self.source is not None:
            GLib.source_remove(self.source)
            self.source = None

    def _ready(self, _fd, _condition) -> bool:
        if self.read_available():
            return True
        self.source = None
        self.on_eof()
        return False

    def _poll(self) -> bool:
        return self._ready(self.fd, None) if self.bytes_waiting() else True

    def bytes_waiting(self) -> int:
        if os.name != "nt":
            import select

            return 1 if select.select([self.fd], [], [], 0)[0] else 0
        import ctypes
        import msvcrt

        avail = ctypes.c_ulong(0)
        handle = msvcrt.get_osfhandle(self.fd)
        if not ctypes.windll.kernel32.PeekNamedPipe(handle, None, 0, None, ctypes.byref(avail), None):
            return 1  # broken pipe: let the read see EOF
        return avail.value

    def read_available(self) -> bool:
        """Reads what is there without blocking and dispatches whole lines; False at end of file."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            return False
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.on_event(event)
        return True


class PreviewPane:
    """The preview frame: picture, progress and a "Preview" toggle (on by default).

    box: a Gtk.Box to pack the pane into. config: the procedure config (its notify signal drives updates).
    worker_factory(): a started worker_client.Worker; it runs in a thread. read_preview_pixels(): (w, h,
    R'G'B'A float32 bytes) of the layer at preview size. build_request(worker, request_id, content, output):
    the stylize request for the current settings, as for the final run; the pane sets its own schedule and
    intermediate images.
    """

    def __init__(self, box: Gtk.Box, config, worker_factory: Callable, read_preview_pixels: Callable, build_request: Callable):
        self.config, self._factory, self._build = config, worker_factory, build_request
        self.worker = None
        self._loaded = None  # set by the start thread
        self._pipe: _Pipe | None = None
        self._timer: int | None = None
        self._serial = 0
        self._current: str | None = None  # the request whose events the pane shows
        self._pending: set[str] = set()  # requests sent that have not ended yet
        self._content: str | None = None
        self._started_at = 0.0
        self._stopped = False
        self._start_done = threading.Event()
        self._build_widgets()
        box.pack_start(self.widget, False, False, 0)
        self.widget.show_all()
        self.message.hide()
        try:
            self._pixels = read_preview_pixels()
        except Exception as exc:
            self._pixels = None
            self._say(f"No preview: {one_line(exc)}")
            return
        self._original = pixbuf_from_float(self._pixels[0], self._pixels[1], 4, self._pixels[2])
        self.picture.set_from_pixbuf(self._original)
        self._handler = config.connect("notify", self._on_setting)
        self.toggle.connect("toggled", self._on_toggled)
        self.progress.set_text("Starting the style-transfer engine…")
        threading.Thread(target=self._load_worker, name="stylecore-start", daemon=True).start()

    def _build_widgets(self) -> None:
        self.widget = Gtk.Frame(label="Preview")
        inner = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        inner.set_border_width(6)
        self.picture = Gtk.Image()
        self.picture.set_size_request(MAX_SIDE, MAX_SIDE * 2 // 3)
        self.progress = Gtk.ProgressBar(show_text=True)
        self.message = Gtk.Label(wrap=True, xalign=0.0, max_width_chars=40, selectable=True)
        self.toggle = Gtk.CheckButton.new_with_mnemonic("_Preview")
        self.toggle.set_active(True)
        for child in (self.picture, self.progress, self.message, self.toggle):
            inner.pack_start(child, False, False, 0)
        self.widget.add(inner)

    # -- worker start-up (thread, then the main loop) ------------------------------------------------
    def _load_worker(self) -> None:
        """Starts the worker, then parks: Linux ties a child's parent-death signal to the thread that forked it,
        so this thread must live as long as the plug-in does (it is a daemon: it ends with the process)."""
        try:
            self._loaded = self._factory()
        except Exception as exc:  # PluginError: one line that names the repair command
            GLib.idle_add(self._say, f"No preview: {one_line(exc)}")
            return
        finally:
            self._start_done.set()
        GLib.idle_add(self._attach)
        threading.Event().wait()

    def _attach(self) -> bool:
        if self._stopped:
            return False
        self.worker = self._loaded
        w, h, data = self._pixels
        self._content = os.path.join(self.worker.workdir, "preview-content.npy")
        write_npy(self._content, w, h, 4, data)
        self._pipe = _Pipe(self.worker.stdout.fileno(), self._on_event, self._on_worker_gone)
        self._pipe.watch()
        self._restart(delay_ms=0)
        return False

    # -- settings ------------------------------------------------------------------------------------
    def _on_setting(self, _config, pspec) -> None:
        if pspec.name in WATCHED:
            self._restart()

    def _on_toggled(self, toggle: Gtk.CheckButton) -> None:
        if toggle.get_active():
            self._restart(delay_ms=0)
        else:
            self._cancel_current()
            self.picture.set_from_pixbuf(self._original)
            self.progress.set_fraction(0.0)
            self.progress.set_text("Preview off")

    def _cancel_current(self) -> None:
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        if self._current in self._pending and self.worker is not None:
            self.worker.cancel(self._current)
        self._current = None

    def _restart(self, delay_ms: int = DEBOUNCE_MS) -> None:
        """Cancels the running preview now (the CPU is free at once) and starts one when the settings settle."""
        self._cancel_current()
        if self.worker is None or not self.toggle.get_active() or self._stopped:
            return
        self.progress.set_text("Preview: waiting for the settings to settle…" if delay_ms else "Preview: starting…")
        self._timer = GLib.timeout_add(delay_ms, self._send_preview)

    def _send_preview(self) -> bool:
        self._timer = None
        self._serial += 1
        rid = f"preview-{self._serial}"
        try:
            request = self._build(self.worker, rid, self._content, os.path.join(self.worker.workdir, f"{rid}.npy"))
            request["options"].update(PREVIEW_OPTIONS)
            request["images"] = {"every": IMAGE_EVERY, "dir": self.worker.workdir}
            self.worker.send(request)
        except Exception as exc:  # no style chosen yet, a missing file, a dead worker: say so in the pane
            self._say(one_line(exc))
            self.progress.set_fraction(0.0)
            self.progress.set_text("No preview")
            return False
        self._current = rid
        self._pending.add(rid)
        self._started_at = time.monotonic()
        self._say("")
        self.progress.set_fraction(0.0)
        self.progress.set_text("Painting the preview…")
        return False

    # -- worker events -------------------------------------------------------------------------------
    def _on_event(self, event: dict) -> None:
        rid, kind = event.get("id"), event.get("event")
        if kind in TERMINAL:
            self._pending.discard(rid)
        if rid is None and kind == "error":
            self._say(one_line(event.get("message", "the worker refused a request")))
            return
        if rid != self._current or self._stopped:
            if kind == "result":
                self._remove(event.get("path"))
            return
        if kind == "progress":
            done = min(1.0, max(0.0, float(event.get("done") or 0.0)))
            self.progress.set_fraction(done)
            self.progress.set_text(f"Painting the preview… {done * 100:.0f} %")
        elif kind == "image":
            self._show(event.get("path"))
        elif kind == "result":
            self._show(event.get("path"))
            self._remove(event.get("path"))
            self.progress.set_fraction(1.0)
            self.progress.set_text(f"Preview ready ({time.monotonic() - self._started_at:.1f} s)")
            self._current = None
        elif kind == "error":
            self.progress.set_fraction(0.0)
            self.progress.set_text("No preview")
            self._say(one_line(event.get("message", "the preview failed")))
            self._current = None

    def _show(self, path: str | None) -> None:
        try:
            w, h, c, data = read_npy(path or "")
            pixbuf = pixbuf_from_float(w, h, c, data)
        except (OSError, ValueError):  # an intermediate image already replaced by a newer one: skip it
            return
        size = (self._original.get_width(), self._original.get_height())
        if (w, h) != size:
            pixbuf = pixbuf.scale_simple(size[0], size[1], GdkPixbuf.InterpType.BILINEAR)
        self.picture.set_from_pixbuf(pixbuf)

    @staticmethod
    def _remove(path: str | None) -> None:
        if path:
            try:
                os.unlink(path)
            except OSError:
                pass

    def _on_worker_gone(self) -> None:
        details = self.worker.details() if self.worker is not None else ""
        self._pending.clear()
        self._current = None
        self.progress.set_text("No preview")
        self._say(f"The style-transfer engine stopped; {details}")

    def _say(self, text: str) -> bool:
        self.message.set_text(text)
        self.message.set_visible(bool(text))
        return False

    # -- hand-over -----------------------------------------------------------------------------------
    def stop(self):
        """Ends the preview and returns the warm worker (None if it never started), ready for the final run.

        Blocks until a running preview has answered its cancel (well under a second), so the worker's
        output holds nothing of the preview when the final run starts reading it.
        """
        if self._stopped:
            return self.worker
        self._stopped = True
        if self._pixels is not None:
            self.config.disconnect(self._handler)
            self._start_done.wait()
        self._cancel_current()
        if self._pipe is not None:
            self._pipe.unwatch()
        worker = self.worker or self._loaded
        if worker is not None and self._pending:
            for rid in list(self._pending):
                worker.cancel(rid)
            if not self._drain(worker):
                worker.close()
                worker = None
        self.worker = worker
        return worker

    def _drain(self, worker) -> bool:
        """Reads until every preview sent has ended; False if the worker died or took too long."""
        pipe = self._pipe or _Pipe(worker.stdout.fileno(), self._on_event, lambda: None)
        pipe.on_event = lambda event: self._pending.discard(event.get("id")) if event.get("event") in TERMINAL else None
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._pending and time.monotonic() < deadline:
            if not pipe.bytes_waiting():
                time.sleep(0.02)
            elif not pipe.read_available():
                return False
        return not self._pending and not pipe.pending
