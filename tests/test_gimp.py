"""The plug-in in a real GIMP 3.0.4 (Debian trixie root, installed through install.py itself).

Needs root (debootstrap, chroot); the root is created once per machine by scripts/gimp_root.sh.
"""

import os
import shutil
import subprocess
import threading
import time

import pytest

from .conftest import bench
from .gimp import harness as h

pytestmark = [pytest.mark.gimp,
              pytest.mark.skipif(os.geteuid() != 0, reason="the real-GIMP tests need root for debootstrap and chroot")]
FAST = '"quality": "draft", "working-size": 96'


@pytest.fixture(scope="module")
def gimp(real_weights_available):
    from stylecore import weights

    h.prepare(weights.cache_path("vgg16"))
    shutil.copy(bench("tubingen.jpg"), h.SHARE / "content.jpg")
    shutil.copy(bench("starry_night.jpg"), h.SHARE / "style.jpg")
    (h.SHARE / "corrupt.jpg").write_bytes(bench("starry_night.jpg").read_bytes()[:2000])
    yield h
    h.teardown()


def test_plugin_in_real_gimp(gimp):
    r = gimp.run_batch(f'''
R["registered"] = PROC is not None
R["menu"] = list(PROC.get_menu_paths())
R["label"] = PROC.get_menu_label()
R["args"] = [a.name for a in PROC.get_arguments()]

img = load("{h.SHARE}/content.jpg")
src = img.get_layers()[0]
src.set_offsets(7, 5)
before = pixels(src)
R["run"] = stylise(img, src, "{h.SHARE}/style.jpg", **{{{FAST}}})
R["layers"] = describe(img)
R["unchanged"] = pixels(src) == before
new = img.get_layers()[0]
a, b = pixels(new), before
R["mean_diff"] = sum(abs(a[i] - b[i]) for i in range(0, len(a), 97) if i % 4 != 3) / len(range(0, len(a), 97))

# a selection limits the effect and masks the new layer
img2 = load("{h.SHARE}/content.jpg")
src2 = img2.get_layers()[0]
Gimp.Image.select_rectangle(img2, Gimp.ChannelOps.REPLACE, 100, 50, 300, 200)
R["sel_run"] = stylise(img2, src2, "{h.SHARE}/style.jpg", **{{{FAST}}})
R["sel_layers"] = describe(img2)

# alpha passes through; 16-bit and greyscale images work
img3 = load("{h.SHARE}/content.jpg")
src3 = img3.get_layers()[0]
src3.add_alpha()
Gimp.Image.select_rectangle(img3, Gimp.ChannelOps.REPLACE, 0, 0, 200, 768)
src3.edit_clear()
Gimp.Selection.none(img3)
img3.convert_precision(Gimp.Precision.U16_NON_LINEAR)
src3 = img3.get_layers()[0]
R["a16_run"] = stylise(img3, src3, "{h.SHARE}/style.jpg", **{{{FAST}}})
p_new, p_src = pixels(img3.get_layers()[0]), pixels(src3)
R["alpha_same"] = p_new[3::4] == p_src[3::4]
R["alpha_has_transparent"] = min(p_src[3::4]) == 0

img4 = load("{h.SHARE}/content.jpg")
img4.convert_grayscale()
R["grey_run"] = stylise(img4, img4.get_layers()[0], "{h.SHARE}/style.jpg", **{{{FAST}}})
R["grey_layers"] = len(img4.get_layers())

# bad style files: an error status with a message, and no new layer
img5 = load("{h.SHARE}/content.jpg")
R["missing"] = stylise(img5, img5.get_layers()[0], "{h.SHARE}/nope.jpg", **{{{FAST}}})
R["corrupt"] = stylise(img5, img5.get_layers()[0], "{h.SHARE}/corrupt.jpg", **{{{FAST}}})
R["none"] = stylise(img5, img5.get_layers()[0], None, **{{{FAST}}})
R["bad_layers"] = len(img5.get_layers())

# seamless: the new layer's right edge runs on into its left one
img6 = load("{h.SHARE}/content.jpg")
R["seam_run"] = stylise(img6, img6.get_layers()[0], "{h.SHARE}/style.jpg", seamless=True, **{{{FAST}}})
R["seam_new"], R["seam_src"] = wrap_jump(img6.get_layers()[0]), wrap_jump(img6.get_layers()[1])
''')
    SUCCESS, ERROR = 3, 0
    assert r["registered"] and r["menu"] == ["<Image>/Filters"] and r["label"].startswith("Style Transfer")
    assert {"style-file", "strength", "preserve-colors", "quality", "seed", "seamless"} <= set(r["args"])
    assert r["args"][-1] == "seamless"  # new arguments only at the end: scripts that call it keep working

    assert r["run"][0] == SUCCESS, r["run"]
    assert len(r["layers"]) == 2
    new, src = r["layers"]
    assert new["name"] == "Style: style" and (new["w"], new["h"]) == (src["w"], src["h"]) == (1024, 768)
    assert new["offsets"] == src["offsets"] == [7, 5]
    assert r["unchanged"], "the source layer's pixels changed"
    assert r["mean_diff"] > 10, r["mean_diff"]  # visibly repainted: 19.5 measured; a mere blur is ~5

    assert r["sel_run"][0] == SUCCESS, r["sel_run"]
    sel_new = r["sel_layers"][0]
    assert (sel_new["w"], sel_new["h"], sel_new["offsets"], sel_new["mask"]) == (300, 200, [100, 50], True)

    assert r["a16_run"][0] == SUCCESS, r["a16_run"]
    assert r["alpha_has_transparent"] and r["alpha_same"]
    assert r["grey_run"][0] == SUCCESS and r["grey_layers"] == 2, r["grey_run"]

    # GIMP itself refuses a file argument that does not exist (a calling error naming the argument)
    assert r["missing"][0] != SUCCESS and "style-file" in r["missing"][1], r["missing"]
    for key, words in [("corrupt", "corrupt.jpg"), ("none", "no style image")]:
        status, message = r[key]
        assert status == ERROR and message and words in message, (key, r[key])
        assert "\n" not in message.strip()
    assert r["bad_layers"] == 1

    assert r["seam_run"][0] == SUCCESS, r["seam_run"]
    (across, inside), (src_across, src_inside) = r["seam_new"], r["seam_src"]
    assert src_across > 3 * src_inside, r["seam_src"]  # the photo's own edges do not meet
    assert across < 1.5 * inside, r["seam_new"]


def test_killing_the_worker_leaves_the_image_unchanged_and_gimp_usable(gimp):
    stop = threading.Event()

    def killer():  # kill the first worker as soon as it is running
        while not stop.is_set():
            found = subprocess.run(["pgrep", "-f", "python3 -u -m stylecore"], capture_output=True, text=True).stdout.split()
            if found:
                time.sleep(1)
                subprocess.run(["kill", "-9", found[0]])
                return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    r = gimp.run_batch(f'''
img = load("{h.SHARE}/content.jpg")
src = img.get_layers()[0]
before = pixels(src)
R["killed"] = stylise(img, src, "{h.SHARE}/style.jpg", **{{"quality": "balanced", "working-size": 512}})
R["after_kill"] = len(img.get_layers())
R["unchanged"] = pixels(src) == before
R["next"] = stylise(img, src, "{h.SHARE}/style.jpg", **{{{FAST}}})
R["after_next"] = len(img.get_layers())
''')
    stop.set()
    assert r["killed"][0] == 0 and "stopped" in r["killed"][1], r["killed"]
    assert r["after_kill"] == 1 and r["unchanged"]
    assert r["next"][0] == 3 and r["after_next"] == 2, r["next"]
