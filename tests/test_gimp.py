"""The plug-in in real GIMPs: 3.0.4 (Debian trixie root) and 3.2.x (forky root), installed through install.py itself.

In both, GIMP's own Python has numpy hidden (as in the Windows, macOS, Flatpak and AppImage GIMPs) while the
worker gets the real one. Needs root (debootstrap, chroot); each root is created once per machine by
scripts/gimp_root.sh. Tests share one GIMP batch per topic to keep the run short.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from stylecore.protocol import client

from .conftest import bench
from .gimp import harness as h

pytestmark = [
    pytest.mark.gimp,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real-GIMP tests need root for debootstrap and chroot"),
]
FAST = '"quality": "draft", "working-size": 96'
SUCCESS, ERROR, CALLING_ERROR = 3, 0, 1
OLD_LOG = "stylecore-gimp-worker.log"
VICTIM_TEXT = "not the plug-in's to touch\n"


@pytest.fixture(scope="module", params=h.DISTS)
def gimp(request, real_weights_available):
    from stylecore.models import instant_weights, vgg_weights

    g = h.Gimp(request.param)
    g.prepare(vgg_weights.cache_path("vgg16"), instant_weights.verify().transform.parent)
    from PIL import Image

    Image.open(bench("tubingen.jpg")).convert("RGB").resize((256, 192), Image.LANCZOS).save(g.dir / "content.jpg", quality=95)
    shutil.copy(bench("starry_night.jpg"), g.dir / "style.jpg")
    (g.dir / "corrupt.jpg").write_bytes(bench("starry_night.jpg").read_bytes()[:2000])
    (g.dir / "victim.txt").write_text(VICTIM_TEXT)  # the old fixed log path, planted as a symlink by "another user"
    (g.tmp / OLD_LOG).symlink_to(g.dir / "victim.txt")
    yield g
    g.teardown()


def test_instant_quality_through_the_pdb_and_its_one_line_without_the_network(gimp):
    d = gimp.dir
    cached = gimp.home / ".cache" / "stylecore" / "instant"
    assert cached.is_dir(), "install.py --instant put the network in the worker's cache:\n" + gimp.install_log[-2000:]
    r = gimp.run_batch(
        f'''
img = load("{d}/content.jpg")
src = img.get_layers()[0]
before = pixels(src)
R["run"] = stylise(img, src, "{d}/style.jpg", quality="instant")
R["layers"] = describe(img)
a = pixels(img.get_layers()[0])
R["mean_diff"] = sum(abs(a[i] - before[i]) for i in range(0, len(a), 97) if i % 4 != 3) / len(range(0, len(a), 97))
''',
        name="instant",
    )
    assert r["run"][0] == SUCCESS, r["run"]
    new, src = r["layers"]
    assert (new["w"], new["h"]) == (src["w"], src["h"]) == (256, 192) and r["mean_diff"] > 10, r
    print(f"{gimp.dist}: instant through the PDB, 256x192, {r['seconds'][0]} s (worker start included)")
    hidden = cached.with_name("instant-hidden")
    cached.rename(hidden)
    try:
        r = gimp.run_batch(
            f'''
img = load("{d}/content.jpg")
R["run"] = stylise(img, img.get_layers()[0], "{d}/style.jpg", quality="instant")
R["layers"] = len(img.get_layers())
''',
            name="instant-missing",
        )
    finally:
        hidden.rename(cached)
    status, message = r["run"]
    assert status == ERROR and r["layers"] == 1, r
    assert "instant network" in message and "install.py" in message and "\n" not in message.strip(), message


# The procedure's arguments as stylecore 0.1 registered them; positional scripts rely on this order.
ARGUMENTS_0_1 = (
    "style-file",
    "strength",
    "preserve-colors",
    "quality",
    "working-size",
    "style-scale",
    "seed",
    "device",
    "style-file-2",
    "style-blend",
    "seamless",
    "style-layer",
)


def test_plugin_in_real_gimp(gimp):
    d = gimp.dir
    r = gimp.run_batch(f'''
R["registered"] = PROC is not None
R["menu"] = list(PROC.get_menu_paths())
R["label"] = PROC.get_menu_label()
R["args"] = [a.name for a in PROC.get_arguments()]

img = load("{d}/content.jpg")
src = img.get_layers()[0]
src.set_offsets(7, 5)
before = pixels(src)
R["run"] = stylise(img, src, "{d}/style.jpg", **{{{FAST}}})
R["layers"] = describe(img)
R["unchanged"] = pixels(src) == before
new = img.get_layers()[0]
a, b = pixels(new), before
R["mean_diff"] = sum(abs(a[i] - b[i]) for i in range(0, len(a), 97) if i % 4 != 3) / len(range(0, len(a), 97))

# a selection limits the effect and masks the new layer
img2 = load("{d}/content.jpg")
src2 = img2.get_layers()[0]
Gimp.Image.select_rectangle(img2, Gimp.ChannelOps.REPLACE, 40, 20, 120, 80)
R["sel_run"] = stylise(img2, src2, "{d}/style.jpg", **{{{FAST}}})
R["sel_layers"] = describe(img2)

# alpha passes through; 16-bit and greyscale images work
img3 = load("{d}/content.jpg")
src3 = img3.get_layers()[0]
src3.add_alpha()
Gimp.Image.select_rectangle(img3, Gimp.ChannelOps.REPLACE, 0, 0, 50, 192)
src3.edit_clear()
Gimp.Selection.none(img3)
img3.convert_precision(Gimp.Precision.U16_NON_LINEAR)
src3 = img3.get_layers()[0]
R["a16_run"] = stylise(img3, src3, "{d}/style.jpg", **{{{FAST}}})
p_new, p_src = pixels(img3.get_layers()[0]), pixels(src3)
R["alpha_same"] = p_new[3::4] == p_src[3::4]
R["alpha_has_transparent"] = min(p_src[3::4]) == 0

img4 = load("{d}/content.jpg")
img4.convert_grayscale()
R["grey_run"] = stylise(img4, img4.get_layers()[0], "{d}/style.jpg", **{{{FAST}}})
R["grey_layers"] = len(img4.get_layers())

# bad style files: an error status with a message, and no new layer
img5 = load("{d}/content.jpg")
R["missing"] = stylise(img5, img5.get_layers()[0], "{d}/nope.jpg", **{{{FAST}}})
R["corrupt"] = stylise(img5, img5.get_layers()[0], "{d}/corrupt.jpg", **{{{FAST}}})
R["none"] = stylise(img5, img5.get_layers()[0], None, **{{{FAST}}})
R["bad_layers"] = len(img5.get_layers())

# seamless: the new layer's right edge runs on into its left one
img6 = load("{d}/content.jpg")
R["seam_run"] = stylise(img6, img6.get_layers()[0], "{d}/style.jpg", seamless=True, **{{{FAST}}})
R["seam_new"], R["seam_src"] = wrap_jump(img6.get_layers()[0]), wrap_jump(img6.get_layers()[1])

# full precision: a 32-bit float image gets a float result, not values on the 8-bit grid; the style comes from a
# layer of another open image, and wins over style-file (a corrupt file here)
simg = load("{d}/style.jpg")
img7 = load("{d}/content.jpg")
img7.convert_precision(Gimp.Precision.FLOAT_NON_LINEAR)
R["float_run"] = stylise(img7, img7.get_layers()[0], "{d}/corrupt.jpg", style_layer=simg.get_layers()[0], **{{{FAST}}})
R["float_precision"] = img7.get_precision() == Gimp.Precision.FLOAT_NON_LINEAR
R["float_layers"] = describe(img7)
vals = [v for i, v in enumerate(floats(img7.get_layers()[0])) if i % 4 != 3]
R["float_off_grid"] = sum(abs(v * 255 - round(v * 255)) > 0.01 for v in vals) / len(vals)
vals_src = [v for i, v in enumerate(floats(img7.get_layers()[1])) if i % 4 != 3]
R["float_src_off_grid"] = sum(abs(v * 255 - round(v * 255)) > 0.01 for v in vals_src) / len(vals_src)

# a layer of an indexed image is refused as a style, before any worker starts
iimg = load("{d}/style.jpg")
iimg.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
R["indexed_run"] = stylise(img7, img7.get_layers()[-1], None, style_layer=iimg.get_layers()[0], **{{{FAST}}})
R["after_indexed"] = len(img7.get_layers())

# tiny and thin layers: a result of the same size, or a one-line message and no new layer
R["tiny"] = {{}}
for w, hh in [(1, 1), (8, 8), (2, 300)]:
    timg, tlayer = blank(w, hh)
    status, message = stylise(timg, tlayer, "{d}/style.jpg", **{{{FAST}}})
    R["tiny"][f"{{w}}x{{hh}}"] = [status, message, describe(timg)]
''')
    assert r["gimp_has_numpy"] is False, "numpy must be hidden from GIMP's Python in these tests"
    assert r["registered"] and r["menu"] == ["<Image>/Filters"] and r["label"] == "_Style Transfer..."
    assert {"style-file", "strength", "preserve-colors", "quality", "seed", "seamless", "style-layer"} <= set(r["args"])
    first = r["args"].index("style-file")  # after GIMP's own run-mode, image and drawables
    assert r["args"][first : first + len(ARGUMENTS_0_1)] == list(ARGUMENTS_0_1)  # new ones only at the end: scripts keep working

    assert r["run"][0] == SUCCESS, r["run"]
    assert len(r["layers"]) == 2
    new, src = r["layers"]
    assert new["name"] == "Style: style" and (new["w"], new["h"]) == (src["w"], src["h"]) == (256, 192)
    assert new["offsets"] == src["offsets"] == [7, 5]
    assert r["unchanged"], "the source layer's pixels changed"
    assert r["mean_diff"] > 10, r["mean_diff"]  # visibly repainted: 19.5 measured; a mere blur is ~5

    assert r["sel_run"][0] == SUCCESS, r["sel_run"]
    sel_new = r["sel_layers"][0]
    assert (sel_new["w"], sel_new["h"], sel_new["offsets"], sel_new["mask"]) == (120, 80, [40, 20], True)

    assert r["a16_run"][0] == SUCCESS, r["a16_run"]
    assert r["alpha_has_transparent"] and r["alpha_same"]
    assert r["grey_run"][0] == SUCCESS and r["grey_layers"] == 2, r["grey_run"]

    # GIMP itself refuses a file argument that does not exist (a calling error naming the argument)
    assert r["missing"][0] != SUCCESS and "style-file" in r["missing"][1], r["missing"]
    for key, words, code in [("corrupt", "corrupt.jpg", ERROR), ("none", "no style image", CALLING_ERROR)]:
        status, message = r[key]
        assert status == code and message and words in message, (key, r[key])
        assert "\n" not in message.strip()
    assert r["bad_layers"] == 1

    assert r["seam_run"][0] == SUCCESS, r["seam_run"]
    (across, inside), (src_across, src_inside) = r["seam_new"], r["seam_src"]
    assert src_across > 3 * src_inside, r["seam_src"]  # the photo's own edges do not meet
    assert across < 1.5 * inside, r["seam_new"]

    for size, (status, message, layers) in r["tiny"].items():
        w, hh = map(int, size.split("x"))
        if status == SUCCESS:
            assert len(layers) == 2 and (layers[0]["w"], layers[0]["h"]) == (w, hh), (size, layers)
        else:
            assert status in (ERROR, CALLING_ERROR) and message and "\n" not in message.strip() and len(layers) == 1, (
                size,
                status,
                message,
            )

    status, message = r["indexed_run"]
    assert status == CALLING_ERROR and "indexed" in message and "\n" not in message.strip(), r["indexed_run"]
    assert r["after_indexed"] == 2

    # nothing left behind, nothing shared: no temp files; per-run private logs; the old log path untouched
    assert gimp.leftovers(keep=(OLD_LOG,)) == [], gimp.leftovers(keep=(OLD_LOG,))
    assert (gimp.tmp / OLD_LOG).is_symlink() and (d / "victim.txt").read_text() == VICTIM_TEXT
    logs = gimp.logs()
    assert 1 <= len(logs) <= 5 and all(p.stat().st_mode & 0o777 == 0o600 for p in logs), logs
    assert logs[0].parent.stat().st_mode & 0o777 == 0o700

    assert r["float_run"][0] == SUCCESS, r["float_run"]
    # named after the style image's file; GIMP 3.0.4 gives the plug-in no file for an image that python-fu-eval
    # opened, and then the layer's own name is used
    assert r["float_layers"][0]["name"] in ("Style: style", "Style: Background") and len(r["float_layers"]) == 2
    assert r["float_precision"], "the image should still be 32-bit float"
    assert r["float_src_off_grid"] == 0  # the source came from an 8-bit JPEG: all on the grid
    assert r["float_off_grid"] > 0.5, f"the result was quantised to 8 bits ({r['float_off_grid']:.3f} off the grid)"


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def test_killing_the_plugin_mid_run_leaves_nothing_and_gimp_usable(gimp):
    """GIMP's Cancel kills the plug-in process: the image stays as it was, no temp files remain, the next run works."""
    d = gimp.dir
    proc, out = gimp.start_batch(
        f'''
img = load("{d}/content.jpg")
src = img.get_layers()[0]
before = pixels(src)
R["killed"] = stylise(img, src, "{d}/style.jpg", **{{"quality": "balanced", "working-size": 512}})
R["after_kill"] = len(img.get_layers())
R["unchanged"] = pixels(src) == before
deadline = time.time() + 30
def ours():
    return [n for n in os.listdir("{gimp.tmp}") if n.startswith("stylecore") and n != "{OLD_LOG}"]
while time.time() < deadline and ours():
    time.sleep(0.2)
R["left_after_kill"] = ours()
R["next"] = stylise(img, src, "{d}/style.jpg", **{{{FAST}}})
R["after_next"] = len(img.get_layers())

# a worker environment that has gone (say the Flatpak runtime's Python moved): one line naming the repair
config = "{gimp.plugin}/stylecore-worker.json"
saved = open(config).read()
open(config, "w").write(json.dumps({{**json.loads(saved), "python": "/gone/bin/python3", "repair": "python3 /x/install.py"}}))
R["gone"] = stylise(img, src, "{d}/style.jpg", **{{{FAST}}})
open(config, "w").write(saved)
''',
        "kill",
    )
    plugin_path = str(gimp.plugin / "style-transfer.py")
    plugin = worker = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and worker is None:  # wait until the worker has the content file
        pids = subprocess.run(["pgrep", "-f", plugin_path], capture_output=True, text=True).stdout.split()
        if pids:
            plugin = int(pids[0])
            content = list(gimp.tmp.glob(f"{client.WORKDIR_PREFIX}*/content-*.npy"))
            family = _descendants(plugin)
            if content and len(family) >= 2:
                worker = family
        time.sleep(0.3)
    assert worker, "the plug-in never got its worker going"
    time.sleep(2)  # mid-run
    os.kill(plugin, 9)
    stdout, stderr = proc.communicate(timeout=1500)
    r = gimp.result(out, proc.returncode, stdout, stderr)
    assert r["killed"][0] != SUCCESS, r["killed"]
    assert r["after_kill"] == 1 and r["unchanged"]
    assert r["left_after_kill"] == [], r["left_after_kill"]
    assert not [p for p in worker if _alive(p)], "the worker outlived the plug-in"
    assert r["next"][0] == SUCCESS and r["after_next"] == 2, r["next"]
    status, message = r["gone"]
    assert status == ERROR and message.endswith("run: python3 /x/install.py") and "\n" not in message, r["gone"]
    assert gimp.leftovers(keep=(OLD_LOG,)) == [], gimp.leftovers(keep=(OLD_LOG,))


def test_two_gimps_at_once_both_succeed(gimp):
    """Two GIMP instances with their own config folders run the plug-in at the same time."""
    cfg2 = gimp.dir / "gimpcfg2"
    shutil.rmtree(cfg2, ignore_errors=True)
    shutil.copytree(gimp.cfg / "plug-ins", cfg2 / "plug-ins", symlinks=True)
    d = gimp.dir
    code = f'''
img = load("{d}/content.jpg")
R["run"] = stylise(img, img.get_layers()[0], "{d}/style.jpg", **{{{FAST}}})
R["layers"] = len(img.get_layers())
'''
    runs = [gimp.start_batch(code, "one"), gimp.start_batch(code, "two", cfg=cfg2)]
    results = []
    for proc, out in runs:
        stdout, stderr = proc.communicate(timeout=1500)
        results.append(gimp.result(out, proc.returncode, stdout, stderr))
    for r in results:
        assert r["run"][0] == SUCCESS and r["layers"] == 2, r["run"]
    assert gimp.leftovers(keep=(OLD_LOG,)) == [], gimp.leftovers(keep=(OLD_LOG,))


def test_remote_run_in_real_gimp_makes_the_same_layer_as_a_local_run(gimp, sshd):
    """'Run on' the test sshd on 127.0.0.1 (chroot shares the network): the far end is this root's own worker, so
    the two runs differ only in the path the pixels take (in-band over ssh, or .npy files)."""
    import json

    config = json.loads((gimp.plugin / "stylecore-worker.json").read_text())
    keys = gimp.dir / "ssh"
    keys.mkdir(exist_ok=True)
    for name in ("id", "known_hosts"):
        shutil.copy(sshd.root / name, keys / name)
        os.chmod(keys / name, 0o600)
    env = " ".join(gimp.env(gimp=False)[2:]) + (f" PYTHONPATH={config['pythonpath']}" if config.get("pythonpath") else "")
    command = f"chroot {gimp.root} /usr/bin/env -i {env} {config['python']} -u -m stylecore worker"
    options = f"UserKnownHostsFile={keys}/known_hosts IdentityFile={keys}/id IdentitiesOnly=yes GlobalKnownHostsFile=/dev/null"
    remote = f'run_on="{sshd.destination}", remote_command="{command}"'
    d = gimp.dir
    r = gimp.run_batch(
        f'''
img = load("{d}/content.jpg")
img.convert_precision(Gimp.Precision.FLOAT_NON_LINEAR)
R["local"] = stylise(img, img.get_layers()[0], "{d}/style.jpg", seed=7, **{{{FAST}}})
local = floats(img.get_layers()[0])
img2 = load("{d}/content.jpg")
img2.convert_precision(Gimp.Precision.FLOAT_NON_LINEAR)
before = floats(img2.get_layers()[0])
R["remote"] = stylise(img2, img2.get_layers()[0], "{d}/style.jpg", seed=7, ssh_options="{options}", {remote}, **{{{FAST}}})
far = floats(img2.get_layers()[0])
R["layers"] = describe(img2)
R["unchanged"] = floats(img2.get_layers()[1]) == before
R["max_diff"] = max(abs(a - b) for a, b in zip(local, far))
R["off_grid"] = sum(abs(v * 255 - round(v * 255)) > 0.01 for i, v in enumerate(far) if i % 4 != 3) / (len(far) * 3 // 4)
img3 = load("{d}/content.jpg")
R["unknown_key"] = stylise(img3, img3.get_layers()[0], "{d}/style.jpg",
    ssh_options="UserKnownHostsFile=/dev/null GlobalKnownHostsFile=/dev/null IdentityFile={keys}/id", {remote}, **{{{FAST}}})
R["unknown_key_layers"] = len(img3.get_layers())
''',
        name="remote",
    )
    assert r["local"][0] == SUCCESS and r["remote"][0] == SUCCESS, r
    assert len(r["layers"]) == 2 and r["layers"][0]["name"] == "Style: style" and r["unchanged"]
    assert r["max_diff"] < 1e-3, r["max_diff"]  # the same seed, worker and device: float noise at most
    assert r["off_grid"] > 0.5  # the float layer came back at full precision
    assert r["unknown_key"][0] == ERROR and "host key is not known yet" in r["unknown_key"][1] and r["unknown_key_layers"] == 1
    assert gimp.leftovers(keep=(OLD_LOG,)) == [] and not sshd.session_pids()
