"""The Style Transfer dialog's live preview pane (GTK 3, as GIMP 3 uses; standard library and gi only).

It shows the layer (or the selection's box), downscaled to at most job.PREVIEW_SIDE pixels, as the
current settings would paint it. Each preview asks the warm worker for the instant picture first (one pass,
a fraction of a second), then the optimisation's images replace it as they form; with Quality Instant the
instant picture is the whole preview. A settings change cancels the running preview at once and starts a new
one after DEBOUNCE_MS, so a slider drag starts a few previews, not dozens. Nothing here blocks the GTK thread: the worker is spawned without waiting
for it, and its events arrive from the client's one reader thread through GLib.idle_add. `stop()` only
cancels: the final run that follows skips the preview's late events.
"""

from __future__ import annotations

import array
import os
import time
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
import job  # noqa: E402
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402
from i18n import _  # noqa: E402
from job import DEBOUNCE_MS, INSTANT, PREVIEW_SIDE  # noqa: E402
from session import Session  # noqa: E402

from stylecore.protocol import messages  # noqa: E402
from stylecore.protocol.client import GONE, Event, WorkerClient, one_line  # noqa: E402

# Settings that change the picture. Quality matters only when the preview's own preset changes (job.preview_preset);
# working size and device change only how the final run gets there.
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


def to_u8(data: bytes) -> bytes:
    """float32 in 0..1 to 8-bit for the screen (NaN becomes 0)."""
    values = array.array("f")
    values.frombytes(data)
    return bytes([0 if not v > 0.0 else 255 if v >= 1.0 else int(v * 255.0 + 0.5) for v in values])


def pixbuf_from_float(width: int, height: int, channels: int, data: bytes) -> GdkPixbuf.Pixbuf:
    if channels not in (3, 4):
        raise ValueError(f"{channels}-channel pixels cannot be shown")
    return GdkPixbuf.Pixbuf.new_from_bytes(
        GLib.Bytes.new(to_u8(data)), GdkPixbuf.Colorspace.RGB, channels == 4, 8, width, height, width * channels
    )


def remove(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


class PreviewPane:
    """The preview frame: picture, progress and a "Preview" toggle (on by default).

    box: a Gtk.Box to pack the pane into. config: the procedure config (its notify signal drives updates).
    session: the plug-in's session.Session. read_pixels(): (w, h, R'G'B'A float32) at preview size.
    build_request(request_id, content, output): the preview's stylize request and its payload (job.build).
    """

    def __init__(self, box: Gtk.Box, config: Any, session: Session, read_pixels: Callable, build_request: Callable) -> None:
        self.config, self.session, self._build = config, session, build_request
        self.worker: WorkerClient | None = None
        self._content: object = None  # a .npy path, or in-band pixels for a remote worker
        self._timer: int | None = None
        self._current: str | None = None  # the request whose events the pane shows
        self._started_at = 0.0
        self._preset: object = None  # the preset the current preview paints with (job.preview_options)
        self._stopped = False
        self._handler = None
        self._build_widgets(box)
        try:
            self._pixels = read_pixels()
            worker = session.spawn()
        except Exception as exc:  # no layer to show, or no worker to start: the dialog still works
            self._say(_("No preview: {why}").format(why=one_line(exc)))
            return
        self._original = pixbuf_from_float(self._pixels[0], self._pixels[1], 4, self._pixels[2])
        self.picture.set_from_pixbuf(self._original)
        self._handler = config.connect("notify", self._on_setting)
        self.toggle.connect("toggled", self._on_toggled)
        self.progress.set_text(_("Starting the style-transfer engine…"))
        worker.listen(lambda event: GLib.idle_add(self._on_event, event))
        if worker.has_answered():  # ready (or failed) before we listened: that event went to the queue
            answered = {"message": worker.failure} if not worker.is_ready() else {}
            self._on_event(Event(messages.READY if worker.is_ready() else messages.ERROR, None, answered))

    def _build_widgets(self, box: Gtk.Box) -> None:
        self.widget = Gtk.Frame(label=_("Preview"))
        inner = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        inner.set_border_width(6)
        self.picture = Gtk.Image()
        self.picture.set_size_request(PREVIEW_SIDE, PREVIEW_SIDE * 2 // 3)
        self.progress = Gtk.ProgressBar(show_text=True)
        self.message = Gtk.Label(wrap=True, xalign=0.0, max_width_chars=40, selectable=True)
        self.toggle = Gtk.CheckButton.new_with_mnemonic(_("_Preview"))
        self.toggle.set_active(True)
        self.device = Gtk.Label(wrap=True, xalign=0.0, max_width_chars=40, selectable=True)
        for child in (self.picture, self.progress, self.message, self.device, self.toggle):
            inner.pack_start(child, False, False, 0)
        self.widget.add(inner)
        box.pack_start(self.widget, False, False, 0)
        self.widget.show_all()
        self.message.hide()

    # -- settings ------------------------------------------------------------------------------------
    def _on_setting(self, _config: Any, pspec: Any) -> None:
        if pspec.name in WATCHED:
            self._restart()
        elif pspec.name == "quality" and job.preview_preset(self.config.get_property("quality")) != self._preset:
            self._restart()

    def _on_toggled(self, toggle: Gtk.CheckButton) -> None:
        if toggle.get_active():
            self._restart(delay_ms=0)
        else:
            self._cancel_current()
            self.picture.set_from_pixbuf(self._original)
            self._show_progress(0.0, _("Preview off"))

    def _cancel_current(self) -> None:
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        if self._current is not None and self.worker is not None:
            self.worker.cancel(self._current)
        self._current = None

    def _restart(self, delay_ms: int = DEBOUNCE_MS) -> None:
        """Cancels the running preview now (the CPU is free at once) and starts one when the settings settle."""
        self._cancel_current()
        if self.worker is None or not self.toggle.get_active() or self._stopped:
            return
        self.progress.set_text(_("Preview: waiting for the settings to settle…") if delay_ms else _("Preview: starting…"))
        self._timer = GLib.timeout_add(delay_ms, self._send_preview)

    def _send_preview(self) -> bool:
        self._timer = None
        rid = self.session.next_id("preview-")
        try:
            request, payload = self._build(rid, self._content, self.session.output(f"{rid}.npy"))
            assert self.worker is not None, "a preview is sent only once the worker is attached"
            self.worker.send(request, payload)
        except Exception as exc:  # no style chosen yet, a bad setting, a dead worker: say so in the pane
            self._say(one_line(exc))
            self._show_progress(0.0, _("No preview"))
            return False
        self._current = rid
        self._preset = request["options"].get("preset")
        self._started_at = time.monotonic()
        self._say("")
        self._show_progress(0.0, _("Painting the preview…"))
        return False

    # -- worker events (on the GTK thread, through GLib.idle_add) ---------------------------------------------
    def _on_event(self, event: Event) -> bool:
        if self._stopped:
            if event.kind == messages.RESULT:
                remove(event.get("path"))
        elif event.kind == GONE:
            self._current = None
            details = self.worker.details() if self.worker is not None else ""
            self._show_progress(0.0, _("No preview"))
            self._say(_("The style-transfer engine stopped; {details}").format(details=details))
        elif event.kind == messages.READY and event.id is None:
            self._attach()
        elif event.id is None and event.kind == messages.ERROR:
            self._show_progress(0.0, _("No preview"))
            self._say(event.message)
        elif event.id != self._current:
            if event.kind == messages.RESULT:
                remove(event.get("path"))
        else:
            self._on_own_event(event)
        return False

    def _attach(self) -> None:
        if self.worker is not None:
            return
        self.worker = self.session.spawn()
        w, h, data = self._pixels
        self._content = self.session.content("preview-content.npy", w, h, 4, data)
        self.device.set_text(job.device_text(self.worker.ready, self.session.where()))
        self._restart(delay_ms=0)

    def _on_own_event(self, event: Event) -> None:
        kind = event.kind
        if kind == messages.PROGRESS:
            done = min(1.0, max(0.0, event.progress().done))
            self._show_progress(done, _("Painting the preview… {percent:.0f} %").format(percent=done * 100))
        elif kind == messages.IMAGE:
            self._show(event)
            if event.get("stage") == INSTANT and self._preset != INSTANT:
                seconds = time.monotonic() - self._started_at
                self._show_progress(0.0, _("Instant picture ({seconds:.1f} s); refining…").format(seconds=seconds))
        elif kind == messages.WARNING:  # no instant picture: the optimisation's images still come
            self._say(_("No instant picture: {why}").format(why=event.message))
        elif kind == messages.RESULT:
            self._show(event)
            remove(event.get("path"))
            self._show_progress(1.0, _("Preview ready ({seconds:.1f} s)").format(seconds=time.monotonic() - self._started_at))
            self._current = None
        elif kind in (messages.ERROR, messages.REJECTED):
            self._show_progress(0.0, _("No preview"))
            self._say(event.message)
            self._current = None

    def _show(self, event: Event) -> None:
        try:
            w, h, c, data = event.pixels()
            pixbuf = pixbuf_from_float(w, h, c, data)
        except (OSError, ValueError):  # an intermediate image already replaced by a newer one: skip it
            return
        size = (self._original.get_width(), self._original.get_height())
        if (w, h) != size:
            pixbuf = pixbuf.scale_simple(size[0], size[1], GdkPixbuf.InterpType.BILINEAR)
        self.picture.set_from_pixbuf(pixbuf)

    def _show_progress(self, fraction: float, text: str) -> None:
        self.progress.set_fraction(fraction)
        self.progress.set_text(text)

    def _say(self, text: str) -> bool:
        self.message.set_text(text)
        self.message.set_visible(bool(text))
        return False

    # -- hand-over -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ends the preview without waiting: cancels it and hands the worker's events back to the final run."""
        if self._stopped:
            return
        self._stopped = True
        if self._handler is not None:
            self.config.disconnect(self._handler)
        self._cancel_current()
        worker = self.worker or self.session.worker
        if worker is not None:
            worker.listen(None)
