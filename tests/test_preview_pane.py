"""The dialog's preview pane (gimp_plugin/style-transfer/preview.py) with GTK 3 on Xvfb and a real worker.

Runs in the GIMP root that scripts/gimp_root.sh makes, with the plug-in and its worker installed there by
install.py, but without GIMP itself: tests/gimp/pane_check.py drives the pane with a stand-in procedure
config. The real dialog is exercised by scripts/dialog_screenshot.sh.
"""

import json
import os
import shutil

import pytest

from .conftest import bench
from .gimp import harness as h

pytestmark = [pytest.mark.gimp, pytest.mark.skipif(os.geteuid() != 0, reason="the GIMP root needs root (debootstrap, chroot)")]


@pytest.fixture(scope="module")
def root(real_weights_available):
    from stylecore.models import instant_weights, vgg_weights

    gimp = h.Gimp("trixie")
    gimp.prepare(vgg_weights.cache_path("vgg16"), instant_weights.verify().transform.parent)
    gimp.chroot("apt-get", "install", "-y", "-qq", "--no-install-recommends", "xvfb", "xauth", timeout=900)
    shutil.copy(bench("tubingen.jpg"), gimp.dir / "content.jpg")
    shutil.copy(bench("starry_night.jpg"), gimp.dir / "style.jpg")
    shutil.copy(h.REPO / "tests" / "gimp" / "pane_check.py", gimp.dir / "pane_check.py")
    yield gimp
    gimp.teardown()


def test_pane_repaints_on_a_change_debounces_a_drag_and_hands_over_the_warm_worker(root):
    out = root.dir / "pane.json"
    root.chroot(
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1200x900x24",
        "python3",
        root.dir / "pane_check.py",
        root.plugin,
        root.dir / "content.jpg",
        root.dir / "style.jpg",
        out,
        timeout=1500,
    )
    r = json.loads(out.read_text())
    assert not r.get("failed"), f"the pane said: {r['failed']}"
    assert not r.get("timed_out"), r
    assert r["first_result"]["width"] == 320 and r["first_result"]["height"] == 240  # the 1024x768 layer at <= 320 px
    assert r["sent"][-1]["id"] == "final"  # the check's own final run, after stop()
    r["sent"] = r["sent"][:-1]
    assert all(s["preset"] == "balanced" and s["images"] for s in r["sent"])  # job.PREVIEW_OPTIONS, with pictures
    images = [e for e in r["events"] if e["event"] == "image" and e["id"] == r["first_result"]["id"]]
    assert images[0]["stage"] == "instant" and images[0]["width"] == 320, "the instant picture comes first, at preview size"
    formed = [e for e in images if e["stage"] == "optimize"]
    assert formed and formed[0]["width"] < 320 and formed[-1]["width"] == 320, "then the optimisation's forms coarse to fine"
    after = r["first_image_after"]
    print(f"a strength change to the painted instant picture in the pane: {after['seconds']:.2f} s (debounce included)")
    assert after["stage"] == "instant", after
    assert [s["strength"] for s in r["sent"][:2]] == [70.0, 30.0], "the strength change started a preview with the new value"
    assert r["sent_after_burst"] - r["sent_before_burst"] == 1, "five changes in a burst sent one preview"
    assert r["sent"][2]["strength"] == 35.0, "... with the last value"
    superseded = {e["id"] for e in r["events"] if e["event"] == "cancelled"}
    assert r["sent"][1]["id"] in superseded, "the burst cancelled the running preview rather than let it finish"
    assert r["max_gap_while_previewing"] < 5.0, "the main loop kept running while the worker painted"
    assert r["stopped_with_worker"] and r["final"] == {"event": "result", "width": 320, "height": 240, "weights_loads": 1}
