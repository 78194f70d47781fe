"""Drives a real GIMP 3 (Debian trixie, in the root scripts/gimp_root.sh makes) for the plug-in tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gimp_root.sh"
SHARE = Path(os.environ.get("STYLECORE_GIMP_SHARE", "/tmp/stylecore-gimp-share"))
HOME_IN_ROOT = "/tmp/gimphome"


def root_path() -> Path:
    return Path(subprocess.run(["bash", str(SCRIPT), "path"], capture_output=True, text=True, check=True).stdout.strip())


def chroot(*cmd, timeout=600, check=True) -> subprocess.CompletedProcess:
    env = ["/usr/bin/env", "-i", f"HOME={HOME_IN_ROOT}", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
           f"GIMP3_DIRECTORY={SHARE}/gimpcfg"]
    r = subprocess.run(["chroot", str(root_path()), *env, *map(str, cmd)], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def prepare(weights_file: Path) -> None:
    """Provisions the root, copies the checkout in, and installs through install.py itself."""
    subprocess.run(["bash", str(SCRIPT), "provision"], check=True)
    if SHARE.exists():
        subprocess.run(["bash", str(SCRIPT), "umount"], check=False)
        shutil.rmtree(SHARE)
    (SHARE / "gimpcfg").mkdir(parents=True)
    repo_copy = SHARE / "repo"
    for part in ("install.py", "pyproject.toml", "README.md", "stylecore", "gimp_plugin"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, repo_copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            repo_copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo_copy / part)
    shutil.copy2(weights_file, SHARE / "weights.npz")
    subprocess.run(["bash", str(SCRIPT), "mount"], check=True, env={**os.environ, "STYLECORE_GIMP_SHARE": str(SHARE)})
    chroot("python3", f"{SHARE}/repo/install.py", "--python", "/usr/bin/python3", "--gimp-dir", f"{SHARE}/gimpcfg",
           "--weights", f"{SHARE}/weights.npz", "--no-demo", "--yes")


def teardown() -> None:
    subprocess.run(["bash", str(SCRIPT), "umount"], check=False, env={**os.environ, "STYLECORE_GIMP_SHARE": str(SHARE)})


def run_batch(code: str, timeout: int = 600) -> dict:
    """Runs Python code inside gimp-console; the code fills the dict R, which comes back as JSON."""
    out = SHARE / "result.json"
    out.unlink(missing_ok=True)
    script = SHARE / "batch.py"
    script.write_text(BATCH_PRELUDE + code + f"\njson.dump(R, open({str(out)!r}, 'w'))\n")
    r = chroot("timeout", str(timeout), "gimp-console-3.0", "-i", "--batch-interpreter=python-fu-eval",
               "-b", f"exec(open({str(script)!r}).read())", "--quit", timeout=timeout + 30, check=False)
    if not out.exists():
        raise AssertionError(f"GIMP batch produced no result (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["_stderr"] = r.stderr
    return result


BATCH_PRELUDE = '''
import json
import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp, Gio, Gegl
R = {}
PDB = Gimp.get_pdb()
PROC = PDB.lookup_procedure("python-fu-style-transfer")

def pixels(drawable):
    buf = drawable.get_buffer()
    return bytes(buf.get(buf.get_extent(), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP))

def describe(image):
    return [dict(name=l.get_name(), w=l.get_width(), h=l.get_height(), offsets=list(l.get_offsets()[1:]),
                 mask=l.get_mask() is not None) for l in image.get_layers()]

def stylise(image, drawable, style, **props):
    cfg = PROC.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [drawable])
    cfg.set_property("style-file", Gio.File.new_for_path(style) if style else None)
    for k, v in props.items():
        cfg.set_property(k, v)
    res = PROC.run(cfg)
    return int(res.index(0)), (res.index(1) if res.length() > 1 else None)

def wrap_jump(drawable):
    """Mean RGB jump from the last column to the first, and between neighbouring columns inside."""
    p, w, h = pixels(drawable), drawable.get_width(), drawable.get_height()
    def jump(a, b):
        return sum(abs(p[(y * w + a) * 4 + c] - p[(y * w + b) * 4 + c]) for y in range(0, h, 3) for c in range(3))
    inside = sum(jump(x, x + 1) for x in range(5, w - 5, max(1, w // 16))) / len(range(5, w - 5, max(1, w // 16)))
    return jump(w - 1, 0), inside

def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
'''
