"""Drives a real GIMP 3 (3.0.4 in a Debian trixie root, 3.2.x in a forky root; scripts/gimp_root.sh makes them).

GIMP runs with PYTHONPATH pointing at a folder whose numpy raises ImportError, as in the Windows, macOS,
Flatpak and AppImage GIMPs whose own Python has no numpy; the worker must still get the real numpy, which
it does only if the plug-in cleans the environment it passes on. Each version has its own folder in the share
(HOME, TMPDIR, GIMP config), so nothing is shared with other users of the same root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gimp_root.sh"
SHARE = Path(os.environ.get("STYLECORE_GIMP_SHARE", "/tmp/stylecore-gimp-share"))
DISTS = ("trixie", "forky")
SERIES = {"trixie": "3.0", "forky": "3.2"}
NO_NUMPY = SHARE / "no-numpy"  # on GIMP's PYTHONPATH: `import numpy` fails there
# The instant runtime and what Debian's numpy, packaging and sympy leave missing; no deps, so Debian's numpy stays.
INSTANT_WHEELS = ("onnxruntime", "onnx", "protobuf", "ml_dtypes")


def _script(dist: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "STYLECORE_GIMP_DIST": dist, "STYLECORE_GIMP_SHARE": str(SHARE)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, check=check, env=env)


class Gimp:
    """One GIMP version: its root, its folder in the share, and batch runs of python-fu-eval code."""

    def __init__(self, dist: str) -> None:
        self.dist = dist
        self.series = SERIES[dist]
        self.dir = SHARE / dist
        self.root = Path(_script(dist, "path").stdout.strip())
        self.home = self.dir / "home"
        self.tmp = self.dir / "tmp"
        self.cfg = self.dir / "gimpcfg"
        self.plugin = self.cfg / "plug-ins" / "style-transfer"

    def env(self, cfg: Path | None = None, gimp: bool = True) -> list[str]:
        env = [
            "/usr/bin/env",
            "-i",
            f"HOME={self.home}",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "LANG=C.UTF-8",
            f"TMPDIR={self.tmp}",
            f"GIMP3_DIRECTORY={cfg or self.cfg}",
        ]
        return env + ([f"PYTHONPATH={NO_NUMPY}"] if gimp else [])

    def chroot(self, *cmd, timeout: int = 1500, check: bool = True, gimp: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run(
            ["chroot", str(self.root), *self.env(gimp=gimp), *map(str, cmd)], capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode != 0:
            raise AssertionError(f"{cmd[0]} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def prepare(self, weights_file: Path, instant_folder: Path | None = None) -> None:
        """Provisions the root, copies the checkout in, and installs through install.py itself (with the instant
        network and its runtime when instant_folder, a cache's instant/ folder, is given)."""
        _script(self.dist, "provision", check=True)
        _script(self.dist, "umount", check=False)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for d in (self.home, self.tmp, self.cfg):
            d.mkdir(parents=True)
        (NO_NUMPY / "numpy").mkdir(parents=True, exist_ok=True)
        (NO_NUMPY / "numpy" / "__init__.py").write_text("raise ImportError('numpy is hidden from GIMP by the tests')\n")
        repo_copy = self.dir / "repo"
        for part in ("install.py", "installer", "pyproject.toml", "README.md", "stylecore", "gimp_plugin"):
            src = REPO / part
            if src.is_dir():
                shutil.copytree(src, repo_copy / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                repo_copy.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, repo_copy / part)
        if not (SHARE / "weights.npz").exists():
            shutil.copy2(weights_file, SHARE / "weights.npz")
        if instant_folder is not None and not (SHARE / "instant").exists():
            shutil.copytree(instant_folder, SHARE / "instant")
        _script(self.dist, "mount", check=True)
        r = self.chroot(
            "python3",
            repo_copy / "install.py",
            "--python",
            "/usr/bin/python3",
            "--gimp-dir",
            self.cfg,
            "--weights",
            SHARE / "weights.npz",
            *(["--instant", SHARE / "instant"] if instant_folder is not None else []),
            "--no-demo",
        )
        self.install_log = r.stdout + r.stderr
        if instant_folder is not None:
            self.add_instant_runtime()

    def add_instant_runtime(self) -> None:
        """onnxruntime and onnx for the root's Python, which Debian does not package: PyPI's wheels for its version
        in the vendored engine folder (install.py vendors stylecore there, as the root's Python has no pip)."""
        version = self.chroot("python3", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')").stdout.strip()
        platforms = [
            arg for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64") for arg in ("--platform", p)
        ]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
             "--python-version", version, "--implementation", "cp", *platforms, "--target", self.plugin / "engine",
             *INSTANT_WHEELS],
            check=True, capture_output=True, text=True,
        )  # fmt: skip

    def teardown(self) -> None:
        _script(self.dist, "umount", check=False)

    def batch_command(self, code: str, name: str = "batch", cfg: Path | None = None, timeout: int = 1500) -> tuple[list, Path]:
        out = self.dir / f"{name}.json"
        out.unlink(missing_ok=True)
        script = self.dir / f"{name}.py"
        script.write_text(BATCH_PRELUDE + code + f"\njson.dump(R, open({str(out)!r}, 'w'))\n")
        cmd = [
            "chroot",
            str(self.root),
            *self.env(cfg),
            "timeout",
            str(timeout),
            "gimp-console",
            "-i",
            "--batch-interpreter=python-fu-eval",
            "-b",
            f"exec(open({str(script)!r}).read())",
            "--quit",
        ]
        return cmd, out

    def run_batch(self, code: str, name: str = "batch", cfg: Path | None = None, timeout: int = 1500) -> dict:
        """Runs Python code inside gimp-console; the code fills the dict R, which comes back as JSON."""
        cmd, out = self.batch_command(code, name, cfg, timeout)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        return self.result(out, r.returncode, r.stdout, r.stderr)

    def start_batch(self, code: str, name: str, cfg: Path | None = None, timeout: int = 1500) -> tuple[subprocess.Popen, Path]:
        cmd, out = self.batch_command(code, name, cfg, timeout)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out

    @staticmethod
    def result(out: Path, code: int, stdout: str, stderr: str) -> dict:
        if not out.exists():
            raise AssertionError(f"GIMP batch produced no result (exit {code}):\n{stdout[-3000:]}\n{stderr[-4000:]}")
        result = json.loads(out.read_text())
        result["_stderr"] = stderr
        return result

    def leftovers(self, keep: tuple[str, ...] = (), wait: float = 15.0) -> list[str]:
        """What the plug-in or its worker left in the temp folder, once a worker still shutting down has had its time."""
        deadline = time.monotonic() + wait
        while True:
            left = sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("stylecore") and p.name not in keep)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def logs(self) -> list[Path]:
        d = self.home / ".cache" / "stylecore" / "gimp-logs"
        return sorted(d.iterdir()) if d.exists() else []


BATCH_PRELUDE = '''
import json, os, struct, time
import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp, Gio, Gegl
R = {}
PDB = Gimp.get_pdb()
PROC = PDB.lookup_procedure("python-fu-style-transfer")
try:
    import numpy
    R["gimp_has_numpy"] = True
except ImportError:
    R["gimp_has_numpy"] = False

def pixels(drawable):
    buf = drawable.get_buffer()
    return bytes(buf.get(buf.get_extent(), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP))

def floats(drawable):
    buf = drawable.get_buffer()
    raw = bytes(buf.get(buf.get_extent(), 1.0, "R'G'B'A float", Gegl.AbyssPolicy.CLAMP))
    return struct.unpack(f"<{len(raw) // 4}f", raw)

def describe(image):
    return [dict(name=l.get_name(), w=l.get_width(), h=l.get_height(), offsets=list(l.get_offsets()[1:]),
                 mask=l.get_mask() is not None) for l in image.get_layers()]

def stylise(image, drawable, style, **props):
    cfg = PROC.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [drawable])
    cfg.set_property("style-file", Gio.File.new_for_path(style) if style else None)
    for k, v in props.items():
        cfg.set_property(k.replace("_", "-"), v)
    started = time.time()
    res = PROC.run(cfg)
    R.setdefault("seconds", []).append(round(time.time() - started, 1))
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

def blank(w, h):
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(img, "tiny", w, h, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' u8", bytes((x * 37 + y * 11) % 256 for y in range(h) for x in range(w * 3)))
    buf.flush()
    return img, layer
'''
