"""install.py's Flatpak path and the plug-in in the Flatpak layout, simulated in real GIMPs 3.0.4 and 3.2.6.

A `flatpak` stand-in on PATH (tests/flatpak/flatpak) runs `flatpak run --command=X org.gimp.GIMP ...`
inside a Debian GIMP root (trixie: GIMP 3.0.4, Python 3.13; forky: GIMP 3.2.6, Python 3.14) with the
test HOME at the same path and Flatpak's XDG folders, so install.py has to build the worker
environment with the "sandbox's" own python3 (the host runs another) for the recorded interpreter to
exist where GIMP runs it. The roots' python3 has no ensurepip (Debian's without python3-venv) but has
torch: the venv is made with --system-site-packages and --without-pip, so nothing is downloaded.
Needs root (chroot).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import bench

pytestmark = [
    pytest.mark.gimp,
    pytest.mark.skipif(os.geteuid() != 0, reason="the real-GIMP tests need root for debootstrap and chroot"),
]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gimp_root.sh"
STANDIN = REPO / "tests" / "flatpak"
# A share of its own, so this never clobbers the one tests/test_gimp.py uses.
SHARE = Path(os.environ.get("STYLECORE_GIMP_SHARE", "/tmp/stylecore-gimp-share") + "-flatpak")
HOME = SHARE / "home"
APP_DIR = HOME / ".var" / "app" / "org.gimp.GIMP"
SUCCESS = 3
# Debian dist of the GIMP root -> (GIMP version the stand-in reports, the root's python3)
ROOTS = {"trixie": ("3.0.4", "3.13"), "forky": ("3.2.6", "3.14")}


@dataclass
class Sim:
    dist: str
    root: Path
    gimp_version: str
    python: str
    extra_path: str = ""

    @property
    def series(self) -> str:
        return self.gimp_version.rsplit(".", 1)[0]

    @property
    def gimp_dir(self) -> Path:
        return APP_DIR / "config" / "GIMP" / self.series

    def env(self) -> dict[str, str]:
        """The user's shell: the test HOME, the stand-in first on PATH, no XDG or GIMP overrides."""
        drop = (
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_CACHE_HOME",
            "GIMP3_DIRECTORY",
            "STYLECORE_CACHE",
            "PYTHONPATH",
            "VIRTUAL_ENV",
        )
        env = {k: v for k, v in os.environ.items() if k not in drop}
        path = ":".join(p for p in (self.extra_path, str(STANDIN), env.get("PATH", "/usr/bin:/bin")) if p)
        env.update(HOME=str(HOME), PATH=path)
        env.update(STYLECORE_FLATPAK_ROOT=str(self.root), STYLECORE_FLATPAK_VERSION=self.gimp_version)
        HOME.mkdir(parents=True, exist_ok=True)  # the stand-in reads these where the installer's clean environment lacks them
        (HOME / ".stylecore-flatpak-standin").write_text(
            f"STYLECORE_FLATPAK_ROOT={shlex.quote(str(self.root))}\nSTYLECORE_FLATPAK_VERSION={shlex.quote(self.gimp_version)}\n"
        )
        return env


def root_script(dist: str, *args: str) -> str:
    env = {**os.environ, "STYLECORE_GIMP_SHARE": str(SHARE), "STYLECORE_GIMP_DIST": dist}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


def install_py(sim: Sim, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SHARE / "repo" / "install.py"), *args]
    r = subprocess.run(cmd, env=sim.env(), capture_output=True, text=True, timeout=900)
    print(f"$ install.py {' '.join(args)}  (exit {r.returncode})\n{r.stdout}{r.stderr}")
    return r


def gimp_batch(sim: Sim, code: str, timeout: int = 1500) -> dict:  # as harness.run_batch: a loaded machine ran past 600 s
    """Runs Python inside gimp-console started through `flatpak run`, as the Flatpak GIMP would be."""
    out = SHARE / "result.json"
    out.unlink(missing_ok=True)
    script = SHARE / "batch.py"
    script.write_text(PRELUDE + code + f"\njson.dump(R, open({str(out)!r}, 'w'))\n")
    cmd = ["flatpak", "run", f"--env=GIMP3_DIRECTORY={sim.gimp_dir}", "--command=timeout", "org.gimp.GIMP", str(timeout),
           f"gimp-console-{sim.series}", "-i", "--batch-interpreter=python-fu-eval", "-b", f"exec(open({str(script)!r}).read())", "--quit"]  # fmt: skip
    r = subprocess.run(cmd, env=sim.env(), capture_output=True, text=True, timeout=timeout + 60)
    if not out.exists():
        raise AssertionError(f"GIMP batch produced no result (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-4000:]}")
    return json.loads(out.read_text())


PRELUDE = """
import json
import gi
gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio
R = {}
PROC = Gimp.get_pdb().lookup_procedure("python-fu-style-transfer")

def stylize(image, drawable, style, **props):
    cfg = PROC.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [drawable])
    cfg.set_property("style-file", Gio.File.new_for_path(style))
    for k, v in props.items():
        cfg.set_property(k, v)
    res = PROC.run(cfg)
    return int(res.index(0)), (res.index(1) if res.length() > 1 else None)

def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
"""


@pytest.fixture(params=sorted(ROOTS, reverse=True))
def sim(request, real_weights_available):
    from stylecore.models import instant_weights, vgg_weights

    dist = request.param
    root_script(dist, "provision")
    root = Path(root_script(dist, "path"))
    if SHARE.exists():
        root_script(dist, "umount")
        shutil.rmtree(SHARE)
    HOME.mkdir(parents=True)
    for part in ("install.py", "installer", "pyproject.toml", "README.md", "stylecore", "gimp_plugin"):
        src, dst = REPO / part, SHARE / "repo" / part
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    shutil.copy2(vgg_weights.cache_path("vgg16"), SHARE / "vgg_weights.npz")
    shutil.copytree(instant_weights.verify().transform.parent, SHARE / "instant")  # as a user passes --instant
    shutil.copy(bench("tubingen.jpg"), SHARE / "content.jpg")
    shutil.copy(bench("starry_night.jpg"), SHARE / "style.jpg")
    root_script(dist, "mount")
    yield Sim(dist, root, *ROOTS[dist])
    root_script(dist, "umount")


def test_flatpak_install_check_plugin_and_python_change(sim):
    gimp_dir, py = sim.gimp_dir, sim.python
    r = install_py(sim, "--no-demo", "--weights", str(SHARE / "vgg_weights.npz"), "--instant", str(SHARE / "instant"))
    assert r.returncode == 0, r.stderr
    assert f"Flatpak GIMP {sim.gimp_version}, will be created): {gimp_dir}" in r.stdout
    assert f"sandbox's Python {py}" in r.stdout  # built by the root's python3, not the host's
    assert not (HOME / ".config").exists(), "nothing may go into the host's own GIMP folder"

    plugin = gimp_dir / "plug-ins" / "style-transfer"
    config_path = plugin / "stylecore-worker.json"
    cfg = json.loads(config_path.read_text())
    venv = APP_DIR / "data" / "stylecore" / f"venv-py{py}"
    repair = f"python3 {SHARE / 'repo' / 'install.py'}"
    assert cfg == {
        "python": str(venv / "bin" / "python"),
        "pythonpath": "",
        "python_version": py,
        "layout": "flatpak",
        "repair": repair,
    }
    assert os.access(plugin / "style-transfer.py", os.X_OK)
    assert (APP_DIR / "cache" / "stylecore" / "vgg16-features.npz").is_file()  # where the sandbox's worker looks

    r = install_py(sim, "--check")
    assert r.returncode == 0 and "all good" in r.stdout, r.stdout
    assert f"worker in the Flatpak sandbox: ok, {cfg['python']} (Python {py}" in r.stdout

    # In GIMP: the plug-in from the Flatpak folder makes a new layer; then the runtime's Python
    # "moves": the recorded interpreter is the one an older runtime (3.12) had.
    moved = {**cfg, "python": str(APP_DIR / "data" / "stylecore" / "venv-py3.12" / "bin" / "python"), "python_version": "3.12"}
    out = gimp_batch(sim, f"""
R["registered"] = PROC is not None
img = load("{SHARE}/content.jpg")
R["run"] = stylize(img, img.get_layers()[0], "{SHARE}/style.jpg", quality="draft", **{{"working-size": 96}})
R["layers"] = [l.get_name() for l in img.get_layers()]
open({str(config_path)!r}, "w").write({json.dumps(moved)!r})
img2 = load("{SHARE}/content.jpg")
R["moved"] = stylize(img2, img2.get_layers()[0], "{SHARE}/style.jpg", quality="draft", **{{"working-size": 96}})
R["moved_layers"] = len(img2.get_layers())
""")  # fmt: skip
    assert out["registered"], "GIMP did not register the plug-in from the Flatpak folder"
    assert out["run"][0] == SUCCESS, out["run"]
    assert len(out["layers"]) == 2 and out["layers"][0].startswith("Style"), out["layers"]
    status, message = out["moved"]
    assert status != SUCCESS and message and "install.py" in message and "\n" not in message.strip(), out["moved"]
    assert out["moved_layers"] == 1

    r = install_py(sim, "--check")
    assert r.returncode == 1
    assert f"runtime's Python is now {py}, but the worker was built for 3.12" in r.stdout, r.stdout
    assert f"run: {repair}" in r.stdout

    # The repair command it names repairs it; --uninstall then removes only what install.py made.
    assert install_py(sim, "--no-demo").returncode == 0
    assert json.loads(config_path.read_text())["python_version"] == py
    assert install_py(sim, "--check").returncode == 0
    (gimp_dir / "plug-ins" / "someone-elses").mkdir()
    r = install_py(sim, "--uninstall")
    assert r.returncode == 0 and not plugin.exists() and (gimp_dir / "plug-ins" / "someone-elses").is_dir()
    assert venv.is_dir() and "--remove-env deletes it" in r.stdout


def test_folder_shared_with_a_distro_gimp_gets_both_workers(sim):
    """Once the host's ~/.config/GIMP exists the Flatpak reads it too; with a distro GIMP 3 installed as well,
    the folder's worker "python" is a launcher that starts the sandbox's venv inside and the host's outside."""
    if sim.dist != "forky":
        pytest.skip("one GIMP version is enough for the launcher; the Flatpak ships 3.2")
    host_dir = HOME / ".config" / "GIMP" / sim.series
    host_dir.mkdir(parents=True)
    fake_bin = SHARE / "bin"
    fake_bin.mkdir()
    (fake_bin / f"gimp-{sim.series}").write_text("#!/bin/sh\nexit 0\n")  # a distro GIMP 3 on PATH
    (fake_bin / f"gimp-{sim.series}").chmod(0o755)
    sim.extra_path = str(fake_bin)
    # The host's worker: this test run's own Python (it has torch), with the engine vendored beside the plug-in.
    r = install_py(
        sim,
        "--no-demo",
        "--python",
        sys.executable,
        "--vendor",
        "--weights",
        str(SHARE / "vgg_weights.npz"),
        "--instant",
        str(SHARE / "instant"),
    )
    assert r.returncode == 0, r.stderr
    assert f"for both the Flatpak GIMP and the distro GIMP: {host_dir}" in r.stdout
    cfg = json.loads((host_dir / "plug-ins" / "style-transfer" / "stylecore-worker.json").read_text())
    assert cfg["python"].endswith("/stylecore-python") and cfg["layout"] == "flatpak" and cfg["python_version"] == sim.python

    r = install_py(sim, "--check")
    assert r.returncode == 0, r.stdout
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"worker in the Flatpak sandbox: ok, {cfg['python']} (Python {sim.python}" in r.stdout
    assert f"worker for the distro GIMP: ok, {cfg['python']} (Python {here}" in r.stdout
