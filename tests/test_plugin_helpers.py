"""The plug-in's pure helpers and the one worker client it uses, without GIMP (gi is stubbed; the worker is a protocol fake).

The plug-in's modules (arguments, job, session, i18n) are imported as GIMP's Python imports them, from the plug-in folder
with `stylecore.protocol` beside them; the client is stylecore/protocol/client.py, the same one the CLI's --remote uses.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "gimp_plugin" / "style-transfer"
FAKE_WORKER = Path(__file__).resolve().parent / "gimp" / "fake_worker.py"
sys.path.insert(0, str(PLUGIN_DIR))
import arguments  # noqa: E402
import job  # noqa: E402
import session as plugin_session  # noqa: E402

sys.path.remove(str(PLUGIN_DIR))

from stylecore.protocol import client, errors, host, messages, npy, option_table, presets  # noqa: E402
from stylecore.protocol.progress import Progress  # noqa: E402


class RecordingProcedure:
    """Stands in for Gimp.ImageProcedure: records each add_*_argument call."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, method):
        return lambda *args: self.calls.append((method, args))


def load_plugin_module():
    """Imports style-transfer.py with a stub `gi`, as a test would without GIMP; Gimp.main must not run."""
    repo = types.ModuleType("gi.repository")
    for name in ("Gegl", "GLib"):
        setattr(repo, name, types.SimpleNamespace())
    repo.GObject = types.SimpleNamespace(ParamFlags=types.SimpleNamespace(READWRITE="rw"))
    repo.Gimp = types.SimpleNamespace(
        PlugIn=type("PlugIn", (), {}),
        main=lambda *a: pytest.fail("Gimp.main ran on import"),
        FileChooserAction=types.SimpleNamespace(OPEN="open"),
        Choice=types.SimpleNamespace(new=RecordingProcedure),
    )
    gi = types.ModuleType("gi")
    gi.require_version = lambda *a: None
    gi.repository = repo
    saved = {k: sys.modules.get(k) for k in ("gi", "gi.repository")}
    sys.modules.update({"gi": gi, "gi.repository": repo})
    try:
        spec = importlib.util.spec_from_file_location("style_transfer_plugin", PLUGIN_DIR / "style-transfer.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return module


def config_getter(**values):
    """config.get_property for the procedure's defaults, with some values changed."""
    merged = {arg.name: arg.default for arg in arguments.arguments()} | values
    return lambda name: merged[name]


def progress(**fields) -> Progress:
    """A progress record as the worker's progress event carries it."""
    defaults = {"stage": "optimize", "width": 64, "height": 48, "done": 0.5, "elapsed": 1.0, "eta": None}
    return Progress.from_fields({**defaults, **fields})


def test_plugin_module_imports_without_gimp_and_builds_requests():
    plugin = load_plugin_module()
    assert plugin.PROC_NAME == "python-fu-style-transfer"
    options = arguments.options_from(config_getter(strength=55.0, **{"preserve-colors": True, "quality": "draft"}))
    request = job.build("r1", "/t/c.npy", [("/s/a.jpg", 0.75), ("/t/s.npy", 0.25)], options, "/t/o.npy")[0]
    parsed = messages.parse_request(json.loads(json.dumps(request)))  # what the worker reads
    assert parsed.styles == (("/s/a.jpg", 0.75), ("/t/s.npy", 0.25)) and parsed.output == "/t/o.npy"
    assert dict(parsed.options) == {**option_table.defaults(o for o in option_table.OPTIONS if o.gimp), "strength": 55.0,
                                    "preserve_colors": True, "preset": "draft"}  # fmt: skip
    assert "images" not in request
    preview = job.build("p1", "/t/c.npy", [("/s/a.jpg", 1.0)], options, "/t/p.npy", preview_dir="/t")[0]
    assert preview["options"] == {**request["options"], **job.PREVIEW_OPTIONS, "preset": "draft"}, "draft previews as draft"
    assert preview["images"]["dir"] == "/t"
    best = job.build("p0", "/t/c.npy", [("/s/a.jpg", 1.0)], {**options, "preset": "best"}, "/t/p.npy", preview_dir="/t")[0]
    assert best["options"]["preset"] == "balanced", "a slow preset previews as balanced"
    assert preview["images"]["every"] == job.PREVIEW_IMAGES_EVERY
    assert preview["first"] == "instant" and "first" not in request, "the preview paints the instant picture first"
    instant = arguments.options_from(config_getter(quality="instant"))
    alone = job.build("p2", "/t/c.npy", [("/s/a.jpg", 1.0)], instant, "/t/p.npy", preview_dir="/t")[0]
    assert alone["options"]["preset"] == "instant" and "first" not in alone, "Quality Instant: the instant picture is the preview"
    assert alone["options"]["working_size"] == job.PREVIEW_SIDE
    # a remote worker's preview: everything in-band, no folder of ours named to the far end
    inband, payload = job.build("p3", "/t/c.npy", [("/s/a.jpg", 1.0)], options, None, preview=True)
    assert inband["return"] == messages.INLINE and "dir" not in inband["images"] and payload is None
    assert arguments.options_from(config_getter(**{"working-size": 300}))["working_size"] == 300
    assert arguments.options_from(config_getter(**{"working-size": 0}))["working_size"] is None  # 0: the preset's
    assert job.style_weights(25.0) == (0.75, 0.25)
    text = job.progress_text(progress(scale=2, scales=3, step=4, steps=10, eta=75.0))
    assert text == "Style transfer: scale 2/3, step 4/10, about 1:15 left"
    assert "left" not in job.progress_text(progress(scale=1, scales=3, step=0, steps=10, eta=None))


@pytest.mark.parametrize("name, value, words", [("working-size", 20, "working_size 20 is outside 64..8192"),
                                                ("quality", "fastest", "preset 'fastest' unknown")])  # fmt: skip
def test_a_bad_setting_is_refused_before_any_worker_starts(name, value, words):
    with pytest.raises(errors.BadRequest, match=words) as info:
        arguments.options_from(config_getter(**{name: value}))
    assert isinstance(info.value, errors.BadInput), "a bad argument is the caller's mistake (GIMP's CALLING_ERROR)"


def test_plugin_and_engine_agree_on_every_option_preset_and_device():
    from stylecore.engine import device
    from stylecore.engine.options import StyleOptions

    args = {a.name: a for a in arguments.arguments()}
    offered = {o.gimp: o for o in option_table.OPTIONS if o.gimp}
    assert {a.option for a in args.values() if a.option} == {o.name for o in offered.values()}
    for gimp_name, opt in offered.items():
        arg = args[gimp_name]
        assert arg.option == opt.name and arg.help == opt.help
        assert arg.default == (0 if opt.default is None else opt.default), gimp_name
        if arg.kind in ("int", "double"):
            assert (arg.minimum, arg.maximum) == (0 if opt.nullable else opt.minimum, opt.maximum), gimp_name
    assert args["quality"].choices == tuple((p.name, p.label) for p in presets.PRESETS.values())
    for name, _ in args["device"].choices:  # the engine knows every device the dialog offers
        assert option_table.option("device").problem(name) is None, name
        try:
            picked = device.pick_device(name)
        except errors.BadInput as exc:  # a device this machine lacks: one line saying so, never "not a device name"
            assert "not a device name" not in str(exc) and "\n" not in str(exc), (name, exc)
        else:
            assert picked.type == name or (name == "auto" and picked.type in ("cpu", "cuda", "mps")), (name, picked)
    assert [n for n, _ in args["device"].choices] == [n for n, _ in option_table.DEVICES]
    engine_defaults = StyleOptions()
    for opt in option_table.RUN_OPTIONS:
        if hasattr(engine_defaults, opt.name):
            assert getattr(engine_defaults, opt.name) == opt.default, opt.name
    # what GIMP is asked to register: the same names, ranges and defaults, in the order scripts rely on
    plugin = load_plugin_module()
    proc = RecordingProcedure()
    for arg in arguments.arguments():
        plugin.add_argument(proc, arg)
    registered = [(method, call[0]) for method, call in proc.calls]
    assert [name for _, name in registered][:3] == ["style-file", "strength", "preserve-colors"]
    assert [name for _, name in registered][-5:] == ["seamless", "style-layer", "run-on", "remote-command", "ssh-options"]
    calls = {call[0]: (method, call) for method, call in proc.calls}
    assert calls["strength"] == (
        "add_double_argument",
        ("strength", "S_trength", option_table.option("strength").help, 0, 100, 70.0, "rw"),
    )
    assert calls["working-size"][1][3:6] == (0, 8192, 0)
    assert calls["seed"][1][3:6] == (0, 2**31 - 1, 0), "GIMP's int arguments are 32-bit signed"
    quality_choice = calls["quality"][1][3]
    assert [c[1][0] for c in quality_choice.calls] == list(presets.PRESETS) and calls["quality"][1][4] == "balanced"


# --- .npy without numpy ---------------------------------------------------------------------------------


def test_write_npy_is_read_by_numpy(tmp_path):
    rng = np.random.default_rng(1)
    for h, w, c in [(1, 1, 4), (3, 5, 3), (7, 2, 4), (300, 2, 1)]:
        a = rng.random((h, w, c), dtype=np.float32)
        path = str(tmp_path / f"a{h}x{w}x{c}.npy")
        npy.write_npy(path, w, h, c, a.tobytes())
        b = np.load(path, allow_pickle=False)
        assert b.dtype == np.float32 and b.shape == (h, w, c) and np.array_equal(a, b)
        assert (len(open(path, "rb").read()) - a.nbytes) % 64 == 0  # header aligned as numpy writes it
    with pytest.raises(ValueError, match="needs"):
        npy.write_npy(str(tmp_path / "x.npy"), 2, 2, 4, b"\0" * 12)


def test_read_npy_reads_what_numpy_writes(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.random((4, 6, 3), dtype=np.float32)
    np.save(tmp_path / "a.npy", a)
    w, h, c, data = npy.read_npy(str(tmp_path / "a.npy"))
    assert (w, h, c) == (6, 4, 3) and np.frombuffer(data, np.float32).tobytes() == a.tobytes()
    np.save(tmp_path / "big.npy", a.astype(">f4"))  # big-endian file: bytes come back in this machine's order
    assert npy.read_npy(str(tmp_path / "big.npy"))[3] == a.tobytes()
    np.save(tmp_path / "grey.npy", a[..., 0])
    assert npy.read_npy(str(tmp_path / "grey.npy"))[:3] == (6, 4, 1)


@pytest.mark.parametrize("bad", ["float64", "fortran", "truncated", "not_npy", "1d"])
def test_read_npy_refuses_what_it_cannot_read(tmp_path, bad):
    path = tmp_path / "bad.npy"
    a = np.zeros((3, 4, 3), np.float32)
    if bad == "float64":
        np.save(path, a.astype(np.float64))
    elif bad == "fortran":
        np.save(path, np.asfortranarray(a))
    elif bad == "truncated":
        np.save(path, a)
        path.write_bytes(path.read_bytes()[:-4])
    elif bad == "not_npy":
        path.write_bytes(b"GIF89a" + b"\0" * 100)
    else:
        np.save(path, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="bad.npy"):
        npy.read_npy(str(path))


def test_alpha_is_interleaved_and_split_like_numpy():
    rng = np.random.default_rng(3)
    rgb, alpha = rng.random((5, 7, 3), dtype=np.float32), rng.random((5, 7), dtype=np.float32)
    rgba = np.frombuffer(npy.add_alpha(rgb.tobytes(), alpha.tobytes()), np.float32).reshape(5, 7, 4)
    assert np.array_equal(rgba, np.dstack([rgb, alpha]))
    assert npy.channel(rgba.tobytes(), 4, 3) == alpha.tobytes()


# --- config, environment, command line ------------------------------------------------------------------


def write_config(tmp_path, name="stylecore-worker.json", **fields) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(fields))
    return str(path)


def test_config_problems_are_one_line_messages_that_name_the_repair(tmp_path):
    repair = "python3 /opt/stylecore/install.py"
    cases = {
        "missing": (str(tmp_path / "nope.json"), "is missing"),
        "not json": (None, "unreadable"),
        "no python": (write_config(tmp_path, "a.json", repair=repair), "names no worker Python"),
        "relative": (write_config(tmp_path, "b.json", python="bin/python3", repair=repair), "not an absolute path"),
        "gone": (write_config(tmp_path, "c.json", python=str(tmp_path / "venv/bin/python"), repair=repair), "no longer exists"),
    }
    for what, (path, words) in cases.items():
        if path is None:
            path = str(tmp_path / "broken.json")
            Path(path).write_text("{not json")
        with pytest.raises(errors.SetupError) as err:
            host.load_config(path)
        message = str(err.value)
        assert words in message and "\n" not in message, (what, message)
        assert (repair if what in ("no python", "relative", "gone") else errors.REPAIR_HERE) in message, (what, message)


def test_config_without_the_newer_keys_is_accepted(tmp_path):
    config = host.load_config(write_config(tmp_path, python=sys.executable, pythonpath=""))
    assert config == host.WorkerConfig(sys.executable, "", "", "native", errors.REPAIR_HERE)
    full = host.load_config(
        write_config(
            tmp_path, python=sys.executable, pythonpath="/e", python_version="3.13", layout="flatpak", repair="flatpak run x"
        )
    )
    assert (full.pythonpath, full.layout, full.repair) == ("/e", "flatpak", "flatpak run x")


def test_environment_is_cleaned_of_gimps_python_and_loader_variables():
    gimp_env = {
        "PATH": "/app/bin:/usr/bin",
        "HOME": "/home/u",
        "TMPDIR": "/tmp/x",
        "LANG": "C.UTF-8",
        "DISPLAY": ":0",
        "PYTHONPATH": "/app/lib/python3/site-packages",
        "PYTHONHOME": "/app",
        "PYTHONUSERBASE": "/app/.local",
        "LD_LIBRARY_PATH": "/app/lib",
        "LD_PRELOAD": "/app/lib/libhook.so",
        "GI_TYPELIB_PATH": "/app/lib/girepository-1.0",
        "GIO_MODULE_DIR": "/app/lib/gio",
        "GDK_PIXBUF_MODULE_FILE": "/app/loaders.cache",
        "GTK_PATH": "/app/lib/gtk-3.0",
        "GEGL_PATH": "/app/lib/gegl",
        "BABL_PATH": "/app/lib/babl",
        "DYLD_LIBRARY_PATH": "/Applications/GIMP.app/lib",
        "__PYVENV_LAUNCHER__": "/x",
        "VIRTUAL_ENV": "/v",
        "FONTCONFIG_FILE": "/app/fonts.conf",
        "APPDIR": "/tmp/.mount",
        "STYLECORE_CACHE": "/installer/shell/cache",  # the installer's shell: GIMP from the desktop has none
    }
    env = host.worker_environment(gimp_env, "")
    # of GIMP's environment, only the user's own settings reach the worker (stylecore may add settings of its own)
    assert {k: v for k, v in env.items() if k in gimp_env} == {
        k: gimp_env[k] for k in ("PATH", "HOME", "TMPDIR", "LANG", "DISPLAY")
    }
    assert (
        host.worker_environment(gimp_env, "/gimp/plug-ins/style-transfer/engine")["PYTHONPATH"]
        == "/gimp/plug-ins/style-transfer/engine"
    )


def test_worker_command_is_the_absolute_interpreter_run_through_the_guard_file():
    config = host.WorkerConfig("/opt/py/bin/python3", "/e")
    assert host.worker_command(config) == ["/opt/py/bin/python3", "-u", "-m", "stylecore", "worker"]
    cmd = host.guarded_command(config, "/tmp/stylecore-gimp-1-x", 1234)
    assert cmd[:4] == ["/opt/py/bin/python3", "-I", "-u", str(host.GUARD)] and host.GUARD.is_file()
    assert cmd[4:7] == ["1234", "/tmp/stylecore-gimp-1-x", "--"] and cmd[7:] == host.worker_command(config)


def test_one_cache_rule_for_weights_logs_and_the_installer(monkeypatch, tmp_path):
    from stylecore.models import vgg_weights

    monkeypatch.delenv("STYLECORE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert vgg_weights.cache_dir() == host.stylecore_cache() == tmp_path / "xdg" / "stylecore"
    fd, log = client.open_run_log(client.default_log_folder())  # where the plug-in's session keeps its logs
    os.close(fd)
    assert Path(log).parent == tmp_path / "xdg" / "stylecore" / "gimp-logs"
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path / "own"))
    assert vgg_weights.cache_dir() == host.stylecore_cache() == tmp_path / "own"


# --- private files ---------------------------------------------------------------------------------------


def test_run_logs_are_private_exclusive_and_the_last_few_kept(tmp_path):
    log_dir = tmp_path / "cache" / "stylecore" / "gimp-logs"
    paths = []
    for _ in range(client.LOGS_KEPT + 3):
        fd, path = client.open_run_log(str(log_dir))
        os.write(fd, b"x")
        os.close(fd)
        paths.append(path)
        time.sleep(0.01)
    assert len(set(paths)) == len(paths)
    assert sorted(os.listdir(log_dir)) == sorted(os.path.basename(p) for p in paths)[-client.LOGS_KEPT :]
    assert paths[-1] in [str(log_dir / n) for n in os.listdir(log_dir)]
    assert os.stat(log_dir).st_mode & 0o777 == 0o700 and os.stat(paths[-1]).st_mode & 0o777 == 0o600


def test_run_log_never_follows_a_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    log_dir = tmp_path / "logs"
    log_dir.mkdir(mode=0o700)
    names = iter(["aaaaaa", "bbbbbb"])
    monkeypatch.setattr(client.secrets, "token_hex", lambda n: next(names))
    monkeypatch.setattr(client.time, "strftime", lambda fmt, t: "20260101-000000")
    monkeypatch.setattr(client.time, "time", lambda: 5.25)
    planted = log_dir / f"worker-20260101-000000.250000-{os.getpid()}-aaaaaa.log"
    planted.symlink_to(victim)
    fd, path = client.open_run_log(str(log_dir), keep=10)
    os.write(fd, b"log text")
    os.close(fd)
    assert path.endswith("-bbbbbb.log") and planted.is_symlink() and victim.read_text() == "precious"
    # a log folder that is itself a symlink (planted by someone else) is refused
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked").symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a plain folder"):
        client.open_run_log(str(tmp_path / "linked"))
    assert list(elsewhere.iterdir()) == []


def test_stale_workdirs_of_dead_plugins_are_swept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{client.WORKDIR_PREFIX}{dead.pid}-abc"
    live = tmp_path / f"{client.WORKDIR_PREFIX}{os.getpid()}-def"
    odd = tmp_path / f"{client.WORKDIR_PREFIX}\u00b2-ghi"  # a digit int() reads but no pid is written with
    other = tmp_path / "stylecore-gimp-worker.log"
    for d in (stale, live, odd):
        d.mkdir()
        (d / "content.npy").write_bytes(b"x")
    other.write_text("not ours to touch")
    assert client.sweep_stale_workdirs(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and odd.exists() and other.exists()


# --- the client against a protocol fake -----------------------------------------------------------------


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A config whose worker is tests/gimp/fake_worker.py, found only through the config's pythonpath."""
    engine = tmp_path / "engine"
    (engine / "stylecore").mkdir(parents=True)
    shutil.copy(FAKE_WORKER, engine / "stylecore" / "__main__.py")
    (engine / "stylecore" / "__init__.py").write_text("")
    poison = tmp_path / "gimp-python"  # what GIMP's PYTHONPATH would offer: a numpy that does not import
    (poison / "numpy").mkdir(parents=True)
    (poison / "numpy" / "__init__.py").write_text("raise ImportError('numpy is hidden from GIMP')\n")
    monkeypatch.setenv("PYTHONPATH", str(poison))
    monkeypatch.setenv("GI_TYPELIB_PATH", "/gimp/typelibs")
    monkeypatch.setenv("KEEP_ME", "yes")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(client.tempfile, "tempdir", None)
    monkeypatch.delenv("STYLECORE_CACHE", raising=False)  # the logs go to XDG_CACHE_HOME's stylecore folder
    # the base interpreter: a venv's editable-install finder would find the real stylecore before PYTHONPATH
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    config = write_config(tmp_path, python=python, pythonpath=str(engine), repair="python3 /src/install.py")
    return types.SimpleNamespace(config=config, mode=engine / "stylecore" / "mode", tmp=tmp_path / "tmp", root=tmp_path)


def stylize_request(rid: str, content: str, style: str, output: str) -> dict:
    return {
        "op": "stylize",
        "id": rid,
        "content": content,
        "styles": [{"path": style, "weight": 1}],
        "options": {},
        "output": output,
    }


def test_worker_runs_a_request_with_a_clean_environment(fake):
    session = plugin_session.Session(fake.config)  # the plug-in's way: its session spawns the one worker client
    worker = session.ready_worker()
    try:
        assert not worker.remote and worker.is_ready()
        env = worker.ready["env"]
        assert env["PYTHONPATH"] == str(Path(fake.config).parent / "engine")
        assert env["GI_TYPELIB_PATH"] is None and env["KEEP_ME"] == "yes"
        assert worker.ready["numpy"] != "hidden", "the worker must not see GIMP's PYTHONPATH"
        assert os.path.dirname(worker.workdir) == str(fake.tmp) and os.stat(worker.workdir).st_mode & 0o777 == 0o700
        assert worker.log_path.startswith(str(fake.root / "cache" / "stylecore" / "gimp-logs"))
        rgba = np.random.default_rng(4).random((3, 2, 4), dtype=np.float32)
        content, output = os.path.join(worker.workdir, "c.npy"), os.path.join(worker.workdir, "o.npy")
        npy.write_npy(content, 2, 3, 4, rgba.tobytes())
        seen = []
        event = worker.run(stylize_request("a", content, "s.jpg", output), on_event=seen.append)
        assert event.kind == messages.RESULT and event.id == "a" and [e.kind for e in seen] == [messages.PROGRESS]
        assert seen[0].progress().done == 1.0  # progress arrives as the typed record the CLI and the engine's callers get
        w, h, c, data = event.pixels()  # the result's .npy, read without numpy
        got = np.frombuffer(data, np.float32).reshape(3, 2, 4)
        assert (w, h, c) == (2, 3, 4) and np.allclose(got[..., :3], 1 - rgba[..., :3])
        assert np.array_equal(got[..., 3], rgba[..., 3])
        with pytest.raises(errors.WorkerFailed) as err:  # an error event becomes the one-line message
            worker.run(stylize_request("b", content, "bad.jpg", output))
        assert str(err.value) == "bad.jpg: not an image fix it" and err.value.kind == "BadInput"
        assert not isinstance(err.value, errors.BadInput), "the worker's error is no bad argument of the procedure's"
        # one reader, two consumers: a listener (the preview) and then a blocking run (OK), with no draining
        seen = []
        worker.listen(seen.append)
        request = job.build("p1", content, [("s.jpg", 1.0)], {}, output, preview_dir=worker.workdir)[0]
        worker.send(request)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(e.kind == messages.RESULT for e in seen):
            time.sleep(0.05)
        assert [e.kind for e in seen] == [messages.PROGRESS, messages.RESULT] and all(e.id == "p1" for e in seen)
        worker.send({**request, "id": "p2"})  # a preview still on its way when OK is pressed
        final = worker.run({**request, "id": "final"})
        assert final.kind == messages.RESULT and final.id == "final"
        assert "fake worker starting" in Path(worker.log_path).read_text()
    finally:
        session.close()
    assert not os.path.exists(worker.workdir)
    assert worker.proc.poll() is not None


def test_broken_worker_environment_says_what_to_run(fake):
    fake.mode.write_text("crash")
    with pytest.raises(errors.WorkerFailed) as err:
        client.WorkerClient.for_config(fake.config).wait_ready()
    message = str(err.value)
    assert "\n" not in message and "No module named 'torch'" in message and "run: python3 /src/install.py" in message
    assert wait_for(lambda: os.listdir(fake.tmp) == []), "the failed worker's private folder was left behind"
    fake.mode.write_text("noweights")  # an error event before ready: its message is the reason
    with pytest.raises(
        errors.WorkerFailed, match=r"did not start \(no VGG16 weights in the cache; run install\); run: python3 /src/install.py"
    ) as err:
        client.WorkerClient.for_config(fake.config).wait_ready()
    assert err.value.kind == "WeightsUnavailable", "install.py --check tells missing weights from a broken worker by it"
    with pytest.raises(errors.SetupError, match=r"none.json is missing\); run: python3 install.py"):  # nothing starts
        client.WorkerClient.for_config(str(fake.root / "none.json"))
    assert wait_for(lambda: os.listdir(fake.tmp) == [])


DRIVER = textwrap.dedent("""
    import json, os, queue, sys
    sys.path.insert(0, sys.argv[3])
    from stylecore.protocol import client, messages, npy
    w = client.WorkerClient.for_config(sys.argv[2])
    w.wait_ready()
    content = os.path.join(w.workdir, "content.npy")
    npy.write_npy(content, 1, 1, 4, bytes(16))
    events = queue.Queue()
    w.listen(events.put)
    w.send({"op": "stylize", "id": "k", "content": content, "styles": [{"path": "s", "weight": 1}], "options": {},
            "output": os.path.join(w.workdir, "o.npy")})
    assert events.get(timeout=30).kind == messages.PROGRESS
    print(json.dumps({"workdir": w.workdir, "worker": w.ready["pid"]}), flush=True)
    input()
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_killing_the_plugin_mid_run_leaves_no_files_and_no_worker(fake):
    """GIMP's Cancel kills the plug-in: the guard must still remove the temp dir, even from a worker that ignores EOF and SIGTERM."""
    fake.mode.write_text("slow")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(PLUGIN_DIR), fake.config, str(Path(host.__file__).parents[2])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    info = json.loads(driver.stdout.readline())
    assert os.path.exists(os.path.join(info["workdir"], "content.npy"))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (os.path.exists(info["workdir"]) or _alive(info["worker"])):
        time.sleep(0.2)
    assert not os.path.exists(info["workdir"]), "the temp dir outlived the plug-in"
    assert not _alive(info["worker"]), "the worker outlived the plug-in"
    assert os.listdir(fake.tmp) == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition, seconds: float = 15.0):
    """condition() once it is true, or its last value after `seconds` (a guard may still be cleaning up)."""
    deadline = time.monotonic() + seconds
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_session_writes_a_style_layer_once_and_keeps_one_worker(fake):
    session = plugin_session.Session(fake.config)
    written = []
    try:
        worker = session.ready_worker()
        for _ in range(3):  # three previews and the final run
            path = session.style_file("layer-7", lambda p: written.append(p) or Path(p).write_bytes(b"x"))
        assert written == [path] and os.path.dirname(path) == worker.workdir
        assert session.spawn() is worker and session.next_id("p") != session.next_id("p")
        content = session.content("c.npy", 2, 1, 4, bytes(32))  # a local worker gets a .npy in its private folder
        assert content == os.path.join(worker.workdir, "c.npy") and npy.read_npy(content)[:3] == (2, 1, 4)
        assert session.output("o.npy") == os.path.join(worker.workdir, "o.npy") and session.where() == messages.THIS_COMPUTER
    finally:
        session.close()
    assert wait_for(lambda: not os.path.exists(worker.workdir))


RAISED = ("BadInput", "StylecoreError", "WorkerFailed", "RemoteFailure", "SetupError")  # the errors whose text GIMP shows


def _plugin_trees():
    return {p.name: ast.parse(p.read_text()) for p in sorted(PLUGIN_DIR.glob("*.py"))}


def test_every_message_the_plugin_raises_to_the_user_goes_through_gettext():
    """A translated GIMP shows our errors in the user's language; a literal or f-string message never can be."""
    untranslated = []
    for name, tree in _plugin_trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                kind, text = ast.unparse(node.exc.func), node.exc.args[0]
                if kind in RAISED and isinstance(text, (ast.Constant, ast.JoinedStr)):
                    untranslated.append(f"{name}:{node.lineno}: {ast.unparse(text)[:60]}")
    assert not untranslated, untranslated


def test_the_plugin_keeps_no_state_in_module_globals():
    """GIMP 3 may run the procedure again in the same process: state lives in the plug-in's Session, not in globals."""
    found = [
        f"{name}:{node.lineno}: global {', '.join(node.names)}"
        for name, tree in _plugin_trees().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Global)
    ]
    assert not found, found


def test_bad_arguments_are_a_calling_error_and_other_failures_an_execution_error(monkeypatch):
    """GIMP's own plug-ins answer a bad call with CALLING_ERROR, so a script calling ours can tell its own mistake."""
    module = load_plugin_module()
    monkeypatch.setattr(module.Gimp, "RunMode", types.SimpleNamespace(INTERACTIVE="i", NONINTERACTIVE="n"), raising=False)
    statuses = types.SimpleNamespace(SUCCESS="ok", CANCEL="cancel", CALLING_ERROR="calling", EXECUTION_ERROR="execution")
    monkeypatch.setattr(module.Gimp, "PDBStatusType", statuses, raising=False)
    monkeypatch.setattr(module.Gimp.PlugIn, "error_quark", staticmethod(lambda: "quark"), raising=False)
    error = types.SimpleNamespace(new_literal=lambda quark, message, code: (quark, message))
    monkeypatch.setattr(module.GLib, "Error", error, raising=False)
    procedure = types.SimpleNamespace(new_return_values=lambda status, error: (status, error))
    plugin = module.StyleTransfer.__new__(module.StyleTransfer)
    answers = {}
    failures = {
        "bad call": errors.BadInput("select a layer"),
        "bad option": errors.BadRequest("working_size 20 is outside 64..8192"),
        "worker": errors.WorkerFailed("the worker died", kind="InternalError"),
        "far end": errors.RemoteFailure("me@gpu: the connection dropped mid-run"),
    }
    for name, exc in failures.items():

        def stylize(image, drawables, config, exc=exc):
            raise exc

        monkeypatch.setattr(plugin, "stylize", stylize, raising=False)
        answers[name] = plugin.run(procedure, "n", None, [], None, None)
    assert answers == {
        "bad call": ("calling", ("quark", "select a layer")),
        "bad option": ("calling", ("quark", "working_size 20 is outside 64..8192")),
        "worker": ("execution", ("quark", "the worker died")),
        "far end": ("execution", ("quark", "me@gpu: the connection dropped mid-run")),
    }
