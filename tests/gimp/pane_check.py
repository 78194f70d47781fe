"""Runs inside the GIMP root under Xvfb: the dialog's preview pane (preview.py) with a real worker, no GIMP.

    python3 pane_check.py PLUGIN_DIR CONTENT STYLE RESULT_JSON

A stand-in procedure config (a GObject with the dialog's properties) drives the pane the way the dialog
does. Checks: each preview shows the instant picture first, and the time from a change to it; the first preview finishes; a strength change cancels the running preview and paints a new
one; a burst of changes starts one preview, not one per change; the main loop never stalls while the
worker runs; stop() hands back the warm worker, which then runs the final job without loading again.
"""

import json
import os
import sys
import time

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, GObject, Gtk  # noqa: E402

PLUGIN_DIR, CONTENT, STYLE, RESULT = sys.argv[1:5]
sys.path.insert(0, PLUGIN_DIR)
import job  # noqa: E402
import preview  # noqa: E402
import session as plugin_session  # noqa: E402
from PIL import Image  # noqa: E402  (the check may use Pillow; the pane itself does not)

from stylecore.protocol import messages  # noqa: E402  (beside the plug-in, as install.py puts it)


class Config(GObject.Object):
    strength = GObject.Property(type=float, default=70.0)
    seamless = GObject.Property(type=bool, default=False)
    quality = GObject.Property(type=str, default="balanced")


def read_pixels():
    img = Image.open(CONTENT).convert("RGBA")
    k = job.PREVIEW_SIDE / max(img.size)
    img = img.resize((round(img.width * k), round(img.height * k)), Image.BOX)
    data = bytes(img.tobytes())
    import array

    floats = array.array("f", [b / 255.0 for b in data])
    return img.width, img.height, floats.tobytes()


def build(rid, content, output):
    options = {"strength": config.get_property("strength"), "seamless": config.get_property("seamless")}
    options["preset"] = config.get_property("quality")
    workdir = session.spawn().workdir
    return job.build(rid, content, [(STYLE, 1.0)], options, output, workdir, preview=True)


R = {"events": [], "sent": [], "max_gap": 0.0}
config = Config()


class SpySession(plugin_session.Session):
    """The plug-in's session, with the requests its worker was sent recorded (what the pane sent, with which settings)."""

    def spawn(self):
        fresh = self.worker is None
        worker = super().spawn()
        if fresh:
            send = worker.send

            def spy(request, payload=None):
                if request.get("op") == "stylize":
                    options = request["options"]
                    R["sent"].append(
                        {
                            "id": request["id"],
                            "strength": options.get("strength"),
                            "preset": options.get("preset"),
                            "images": "images" in request,
                        }
                    )
                return send(request, payload)

            worker.send = spy
        return worker


session = SpySession(os.path.join(PLUGIN_DIR, "stylecore-worker.json"))


window = Gtk.Window(title="Style Transfer")
box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL)
window.add(box)
pane = preview.PreviewPane(box, config, session, read_pixels, build)
window.show_all()
on_event = pane._on_event


def spy_event(event):
    """Records each event (a client.Event) the pane gets, then hands it on."""
    if event.kind != messages.PROGRESS:
        R["events"].append(
            {"id": event.id, "event": event.kind, **{k: event.get(k) for k in ("width", "height", "step", "stage")}}
        )
    changed = R.get("changed_at")
    if changed and event.kind == messages.IMAGE and event.id != R["first_result"]["id"] and "first_image_after" not in R:
        R["first_image_after"] = {"seconds": time.monotonic() - changed, "stage": event.get("stage")}
    return on_event(event)


pane._on_event = spy_event
last_tick = [None]


def tick():
    """A 20 ms heartbeat: the longest gap between beats shows whether the main loop ever stalled."""
    now = time.monotonic()
    if last_tick[0] is not None:
        R["max_gap"] = max(R["max_gap"], now - last_tick[0])
    last_tick[0] = now
    return True


GLib.timeout_add(20, tick)
stage = ["first"]


def results(rid_filter=None):
    return [e for e in R["events"] if e["event"] == "result" and (rid_filter is None or e["id"] == rid_filter)]


def step():
    if pane.worker is not None and pane._timer is None and pane._current is None and pane.message.get_text():
        R["failed"] = pane.message.get_text()  # the pane gave up and said why: no need to wait for the timeout
        Gtk.main_quit()
        return False
    if stage[0] == "first" and results():
        R["first_result"] = results()[0]
        R["changed_at"] = time.monotonic()
        config.set_property("strength", 30.0)  # one change: the picture must update
        stage[0] = "second"
    elif stage[0] == "second" and any(e["event"] == "image" for e in R["events"] if e["id"] != R["first_result"]["id"]):
        R["sent_before_burst"] = len(R["sent"])
        for value in (31.0, 32.0, 33.0, 34.0, 35.0):  # a slider drag: one preview for the lot
            config.set_property("strength", value)
        stage[0] = "burst"
    elif stage[0] == "burst" and len(results()) >= 2:
        R["sent_after_burst"] = len(R["sent"])
        R["last_result"] = results()[-1]
        config.set_property("strength", 50.0)  # then OK while a preview is running
        stage[0] = "ok"
        GLib.timeout_add(1500, finish)
        return False
    return True


def finish():
    R["max_gap_while_previewing"] = R["max_gap"]
    pane.stop()
    warm = session.worker
    worker = session.ready_worker()
    R["stopped_with_worker"] = warm is not None and worker is warm
    out = os.path.join(worker.workdir, "final.npy")
    event = worker.run(
        {
            "op": "stylize",
            "id": "final",
            "content": pane._content,
            "styles": [{"path": STYLE}],
            "options": {"preset": "draft", "working_size": 128},
            "output": out,
        }
    )
    R["final"] = {"event": event.kind, **{k: event.get(k) for k in ("width", "height", "weights_loads")}}
    worker.close()
    Gtk.main_quit()
    return False


def give_up():
    R["timed_out"] = True
    Gtk.main_quit()
    return False


GLib.timeout_add(100, step)
GLib.timeout_add(int(os.environ.get("PANE_CHECK_TIMEOUT", "900")) * 1000, give_up)
Gtk.main()
R["stage"], R["message"], R["progress"] = stage[0], pane.message.get_text(), pane.progress.get_text()
json.dump(R, open(RESULT, "w"))
