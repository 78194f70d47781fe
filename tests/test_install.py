"""install.py without GIMP: where it installs, what it writes, what --check says, which torch, uninstall."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from installer import check, cli, common, discovery, flatpak_env, native, plugin, torch_choice
from stylecore.protocol import client

REPO = Path(__file__).resolve().parents[1]

NO_FLATPAK = discovery.Flatpak(False)


def flatpak(version: str | None = "3.2.6") -> object:
    return discovery.Flatpak(True, version)


def mkdirs(*paths: Path) -> None:
    for p in paths:
        p.mkdir(parents=True)


def found(targets) -> list[tuple[Path, str, bool]]:
    return [(t.path, t.layout, t.exists) for t in targets]


# --- discovery ---------------------------------------------------------------------------------


def test_linux_distro_gimp_30_and_32_both_found(tmp_path):
    mkdirs(tmp_path / ".config/GIMP/3.0", tmp_path / ".config/GIMP/3.2", tmp_path / ".config/GIMP/2.10")
    targets = discovery.discover("Linux", {}, tmp_path, NO_FLATPAK)
    assert found(targets) == [(tmp_path / ".config/GIMP/3.0", "native", True), (tmp_path / ".config/GIMP/3.2", "native", True)]


def test_linux_honours_xdg_config_home(tmp_path):
    mkdirs(tmp_path / "cfg/GIMP/3.2", tmp_path / ".config/GIMP/3.0")
    targets = discovery.discover("Linux", {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}, tmp_path, NO_FLATPAK)
    assert found(targets) == [(tmp_path / "cfg/GIMP/3.2", "native", True)]


def test_flatpak_never_run_gets_its_own_folder_for_its_version(tmp_path):
    targets = discovery.discover("Linux", {}, tmp_path, flatpak("3.0.4"))
    assert found(targets) == [(tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.0", "flatpak", False)]


def test_flatpak_folders_for_30_and_32(tmp_path):
    base = tmp_path / ".var/app/org.gimp.GIMP/config/GIMP"
    mkdirs(base / "3.0", base / "3.2")
    targets = discovery.discover("Linux", {}, tmp_path, flatpak("3.2.6"))
    assert found(targets) == [(base / "3.0", "flatpak", True), (base / "3.2", "flatpak", True)]


def test_flatpak_uses_the_hosts_gimp_folder_once_it_exists(tmp_path):
    """--filesystem=xdg-config/GIMP: the host ~/.config/GIMP is mounted over the sandbox's own one."""
    mkdirs(tmp_path / ".config/GIMP/2.10", tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2")
    targets = discovery.discover("Linux", {}, tmp_path, flatpak("3.2.6"))
    assert found(targets) == [(tmp_path / ".config/GIMP/3.2", "flatpak", False)]
    assert "host" in targets[0].how


def test_a_folder_both_gimps_use_is_listed_once(tmp_path):
    """The Flatpak runs 3.2, so only the host's 3.2 folder is its own; with a distro GIMP too, it is shared."""
    mkdirs(tmp_path / ".config/GIMP/3.0", tmp_path / ".config/GIMP/3.2")
    cfg = tmp_path / ".config/GIMP"
    targets = discovery.discover("Linux", {}, tmp_path, flatpak("3.2.6"))
    assert found(targets) == [(cfg / "3.0", "native", True), (cfg / "3.2", "flatpak", True)]
    targets = discovery.discover("Linux", {}, tmp_path, flatpak("3.2.6"), native_gimp=True)
    assert found(targets) == [(cfg / "3.0", "native", True), (cfg / "3.2", "shared", True)]
    assert found(discovery.discover("Linux", {}, tmp_path, flatpak(), str(cfg / "3.2"), native_gimp=True)) == [
        (cfg / "3.2", "shared", True)
    ]


def test_flatpak_follows_the_hosts_xdg_config_home(tmp_path):
    mkdirs(tmp_path / "x/GIMP/3.0", tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2")
    targets = discovery.discover("Linux", {"XDG_CONFIG_HOME": str(tmp_path / "x")}, tmp_path, flatpak("3.2.6"))
    assert found(targets) == [(tmp_path / "x/GIMP/3.0", "native", True), (tmp_path / "x/GIMP/3.2", "flatpak", False)]


def test_macos_and_windows_folders(tmp_path):
    mac = tmp_path / "Library/Application Support/GIMP"
    mkdirs(mac / "3.0", mac / "3.2")
    assert found(discovery.discover("Darwin", {}, tmp_path, NO_FLATPAK)) == [
        (mac / "3.0", "native", True),
        (mac / "3.2", "native", True),
    ]
    appdata = tmp_path / "Roaming"
    mkdirs(appdata / "GIMP/3.2")
    targets = discovery.discover("Windows", {"APPDATA": str(appdata)}, tmp_path, flatpak())  # no Flatpak on Windows
    assert found(targets) == [(appdata / "GIMP/3.2", "native", True)]


@pytest.mark.parametrize(
    "system, expected",
    [
        ("Linux", ".config/GIMP/3.2"),
        ("Darwin", "Library/Application Support/GIMP/3.2"),
        ("Windows", "AppData/Roaming/GIMP/3.2"),
    ],
)
def test_nothing_found_means_gimp_32s_folder_said_so(tmp_path, system, expected):
    targets = discovery.discover(system, {}, tmp_path, NO_FLATPAK)
    assert found(targets) == [(tmp_path / expected, "native", False)]
    assert "no GIMP 3 folder found" in targets[0].how


def test_gimp3_directory_replaces_the_native_folders_but_not_the_flatpak(tmp_path):
    mkdirs(tmp_path / "cfg/GIMP/3.0", tmp_path / "custom", tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2")
    env = {"GIMP3_DIRECTORY": str(tmp_path / "custom"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert found(discovery.discover("Linux", env, tmp_path, NO_FLATPAK)) == [(tmp_path / "custom", "native", True)]
    targets = discovery.discover("Linux", {"GIMP3_DIRECTORY": str(tmp_path / "custom")}, tmp_path, flatpak())
    assert found(targets) == [
        (tmp_path / "custom", "native", True),
        (tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2", "flatpak", True),
    ]


def test_gimp_dir_is_the_only_target_and_its_layout_is_guessed(tmp_path):
    mkdirs(tmp_path / ".config/GIMP/3.0")
    assert found(discovery.discover("Linux", {}, tmp_path, flatpak(), str(tmp_path / "mine"))) == [
        (tmp_path / "mine", "native", False)
    ]
    fp = tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2"
    assert found(discovery.discover("Linux", {}, tmp_path, flatpak(), str(fp))) == [(fp, "flatpak", False)]


# --- config and check --------------------------------------------------------------------------


def test_plugin_folder_and_worker_config(tmp_path):
    target = discovery.Target(tmp_path / "GIMP/3.2", "native", "test")
    cfg = plugin.worker_config(Path("/venv/bin/python"), "3.13", "native", "python3 /src/install.py")
    entry = plugin.write_plugin(target, cfg, vendor=False)
    assert entry == tmp_path / "GIMP/3.2/plug-ins/style-transfer/style-transfer.py"  # GIMP wants dir name == file name
    assert os.access(entry, os.X_OK)
    written = json.loads((entry.parent / "stylecore-worker.json").read_text())
    assert written == {
        "python": "/venv/bin/python",
        "pythonpath": "",
        "python_version": "3.13",
        "layout": "native",
        "repair": "python3 /src/install.py",
    }
    vendored = plugin.write_plugin(target, cfg, vendor=True)
    written = json.loads((vendored.parent / "stylecore-worker.json").read_text())
    assert written["pythonpath"] == str(vendored.parent / "engine")
    assert (vendored.parent / "engine/stylecore/__init__.py").is_file()


def test_repair_command_is_quoted_and_keeps_the_options_that_matter(tmp_path):
    args = cli.build_parser().parse_args(["--gimp-dir", str(tmp_path / "my GIMP"), "--torch", "cpu"])
    cmd = common.repair_command(args)
    assert cmd.startswith("python3 ") and str(REPO / "install.py") in cmd
    assert f"--gimp-dir '{tmp_path / 'my GIMP'}'" in cmd and cmd.endswith("--torch cpu")


def installed(tmp_path: Path, cfg: dict) -> discovery.Target:
    target = discovery.Target(tmp_path / "GIMP/3.0", cfg.get("layout", "native"), "test")
    plugin.write_plugin(
        target,
        dataclasses.replace(plugin.worker_config(Path("x"), "3.11", "native", "python3 /r/install.py"), **cfg),
        vendor=False,
    )
    return target


def test_check_names_a_missing_interpreter_and_the_repair_command(tmp_path, capsys):
    target = installed(tmp_path, {"python": str(tmp_path / "gone/bin/python")})
    problems = check.check_target(target, lambda: None, "python3 default")
    assert problems == [f"the worker cannot start: {tmp_path / 'gone/bin/python'} does not exist; run: python3 /r/install.py"]
    assert "plug-in: ok" in capsys.readouterr().out


def test_check_notices_a_changed_python_version(tmp_path):
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    target = installed(tmp_path, {"python": sys.executable, "python_version": "3.9"})
    problems = check.check_target(target, lambda: None, "python3 default")
    assert f"the worker's Python is now {here}, but it was installed for 3.9; run: python3 /r/install.py" in problems


def test_check_notices_a_flatpak_runtime_whose_python_moved(tmp_path, monkeypatch):
    monkeypatch.setattr(check, "probe_worker", lambda cfg, in_sandbox, guard: {"error": f"{cfg.python} did not start"})
    target = installed(tmp_path, {"python": "/v/venv-py3.12/bin/python", "python_version": "3.12", "layout": "flatpak"})
    problems = check.check_target(target, lambda: "3.13", "python3 default")
    assert (
        problems[0]
        == "the GIMP Flatpak runtime's Python is now 3.13, but the worker was built for 3.12; run: python3 /r/install.py"
    )
    assert problems[1].startswith("the worker cannot start in the Flatpak sandbox")


def test_check_healthy_worker_and_unexecutable_plugin(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        check,
        "probe_worker",
        lambda cfg, in_sandbox, guard: {"python_version": "3.11", "version": "0.1.0", "device": "cpu", "instant": "ok"},
    )
    target = installed(tmp_path, {"python": "/venv/bin/python"})
    assert check.check_target(target, lambda: None, "r") == []
    assert "worker: ok, /venv/bin/python (Python 3.11, stylecore 0.1.0, device cpu)" in capsys.readouterr().out
    (target.plugin_dir / "style-transfer.py").chmod(0o644)
    problems = check.check_target(target, lambda: None, "r")
    assert len(problems) == 1 and "not executable, so GIMP skips it; run: r" in problems[0]


def test_check_without_plugin_or_weights(tmp_path, monkeypatch):
    target = discovery.Target(tmp_path / "GIMP/3.2", "native", "test")
    assert check.check_target(target, lambda: None, "r") == [f"plug-in not installed in {target.plugin_dir}; run: r"]
    no_weights = {"error": "no VGG16 weights in /c; run stylecore weights fetch", "kind": "WeightsUnavailable"}
    monkeypatch.setattr(check, "probe_worker", lambda cfg, in_sandbox, guard: no_weights)
    target = installed(tmp_path, {"python": "/venv/bin/python"})
    assert check.check_target(target, lambda: None, "r") == [
        "no VGG16 weights: no VGG16 weights in /c; run stylecore weights fetch; run: python3 /r/install.py"
    ]


def test_a_folder_both_gimps_read_gets_a_launcher_that_picks_the_right_worker(tmp_path, monkeypatch, capsys):
    pythons = {}
    for name in ("flatpak", "native"):
        pythons[name] = tmp_path / f"{name}-python"
        pythons[name].write_text(f'#!/bin/sh\necho {name} "$PYTHONPATH" "$@"\n')
        pythons[name].chmod(0o755)
    target = discovery.Target(tmp_path / "GIMP/3.2", "shared", "test")
    plugin.write_plugin(target, plugin.worker_config(pythons["flatpak"], "3.13", "flatpak", "r"), vendor=True)
    launcher = plugin.write_dispatcher(target.plugin_dir, pythons["flatpak"], pythons["native"])
    cfg = json.loads((target.plugin_dir / "stylecore-worker.json").read_text())
    assert cfg["python"] == str(launcher) and cfg["pythonpath"] == "" and cfg["layout"] == "flatpak"
    env = {k: v for k, v in os.environ.items() if k not in ("FLATPAK_ID", "PYTHONPATH")}
    outside = subprocess.run([launcher, "-u", "-m", "stylecore"], env=env, capture_output=True, text=True).stdout.split()
    assert outside == ["native", str(target.plugin_dir / "engine"), "-u", "-m", "stylecore"]  # the vendored engine, outside only
    inside = subprocess.run([launcher, "-c", "x"], env={**env, "FLATPAK_ID": "org.gimp.GIMP"}, capture_output=True, text=True)
    assert inside.stdout.split() == ["flatpak", "-c", "x"]

    asked = []
    ok = {"python_version": "3.13", "version": "0.1.0", "device": "cpu", "instant": "ok"}
    monkeypatch.setattr(check, "probe_worker", lambda cfg, in_sandbox, guard: asked.append(in_sandbox) or ok)
    assert check.check_target(target, lambda: "3.13", "r") == []
    assert asked == [True, False]  # --check starts both workers
    assert "worker for the distro GIMP: ok" in capsys.readouterr().out


def test_check_notices_the_flatpak_no_longer_reads_its_private_folder(tmp_path):
    private = discovery.Target(tmp_path / ".var/app/org.gimp.GIMP/config/GIMP/3.2", "flatpak", "installed here earlier")
    plugin.write_plugin(private, plugin.worker_config(Path("/p"), "3.13", "flatpak", "r"), vendor=False)
    assert check.hidden_from_flatpak(private, {}, tmp_path) is None
    mkdirs(tmp_path / ".config/GIMP")  # a distro GIMP ran once: the Flatpak now gets the host's folder mounted instead
    assert check.hidden_from_flatpak(private, {}, tmp_path) == (
        f"the Flatpak GIMP now reads {tmp_path / '.config/GIMP/3.2'} (the host's folder, which exists since the install), not this one"
    )


# --- the Flatpak worker environment (the `flatpak` command faked) --------------------------------


class FakeSandbox:
    """Answers common.run for `flatpak run ...` the way a GNOME runtime with the given traits would."""

    def __init__(self, torch: bool, ensurepip: bool, pip_in_venv: bool):
        self.torch, self.ensurepip, self.pip_in_venv = torch, ensurepip, pip_in_venv
        self.calls: list[list[str]] = []

    def __call__(self, cmd, **kw):
        cmd = [str(c) for c in cmd]
        self.calls.append(cmd)
        assert cmd[:2] == ["flatpak", "run"] and cmd[3] == "org.gimp.GIMP", cmd
        command, argv = cmd[2].removeprefix("--command="), cmd[4:]
        ok = subprocess.CompletedProcess(cmd, 0, "", "")
        if argv[:2] == ["-m", "venv"]:
            if not self.ensurepip and "--without-pip" not in argv:
                return subprocess.CompletedProcess(cmd, 1, "", "Error: ensurepip is not available")
            venv = Path(argv[-1])
            (venv / "bin").mkdir(parents=True)
            (venv / "bin/python").touch()
            return ok
        if argv[:1] == ["-c"] and "sys.version_info" in argv[1]:
            return subprocess.CompletedProcess(cmd, 0, "3.13\n", "")
        if argv[:1] == ["-c"] and "import torch" in argv[1]:
            return subprocess.CompletedProcess(cmd, 0 if self.torch else 1, "", "")
        if argv[:3] == ["-m", "pip", "--version"]:
            return subprocess.CompletedProcess(cmd, 0 if self.pip_in_venv else 1, "", "")
        if argv[:3] == ["-m", "pip", "install"]:
            assert command.endswith("/venv-py3.13/bin/python")  # the venv's own pip, inside the sandbox
            return ok
        raise AssertionError(f"unexpected command {cmd}")


def flatpak_setup(tmp_path, monkeypatch, sandbox):
    monkeypatch.setattr(common, "run", sandbox)
    monkeypatch.setattr(torch_choice, "has_nvidia_gpu", lambda: False)
    monkeypatch.setattr(torch_choice, "index_reachable", lambda: True)
    monkeypatch.setattr(discovery.platform, "system", lambda: "Linux")
    fp = discovery.Flatpak(True, "3.2.6", tmp_path / ".var/app/org.gimp.GIMP")
    return fp, cli.build_parser().parse_args([])


def test_flatpak_env_runtime_without_torch_pip_installs_inside_with_cpu_wheels(tmp_path, monkeypatch, capsys):
    sandbox = FakeSandbox(torch=False, ensurepip=True, pip_in_venv=True)
    fp, args = flatpak_setup(tmp_path, monkeypatch, sandbox)
    stale, foreign = fp.data_dir / "data/stylecore/venv-py3.12", fp.data_dir / "data/stylecore/venv-py3.11"
    mkdirs(stale, foreign)
    (stale / common.MARKER).touch()
    python, version = flatpak_env.ensure_flatpak_environment(fp, args)
    venv = fp.data_dir / "data/stylecore/venv-py3.13"
    assert (python, version) == (venv / "bin/python", "3.13")
    venv_call = next(c for c in sandbox.calls if c[4:6] == ["-m", "venv"])
    assert venv_call == [
        "flatpak",
        "run",
        "--command=python3",
        "org.gimp.GIMP",
        "-m",
        "venv",
        str(venv),
    ]  # no runtime torch to share
    pip = next(c for c in sandbox.calls if c[4:7] == ["-m", "pip", "install"])
    assert pip[pip.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu" and pip[-1] == str(common.HERE)
    assert (venv / common.MARKER).exists() and not stale.exists() and foreign.exists()  # only our old env goes
    assert "CPU-only wheels" in capsys.readouterr().out


def test_flatpak_env_runtime_with_torch_but_no_ensurepip_copies_stylecore(tmp_path, monkeypatch):
    sandbox = FakeSandbox(torch=True, ensurepip=False, pip_in_venv=False)
    fp, args = flatpak_setup(tmp_path, monkeypatch, sandbox)
    python, _ = flatpak_env.ensure_flatpak_environment(fp, args)
    venv_calls = [c[4:] for c in sandbox.calls if c[4:6] == ["-m", "venv"]]
    assert venv_calls == [["-m", "venv", "--system-site-packages", str(python.parents[1])],
                          ["-m", "venv", "--system-site-packages", "--without-pip", str(python.parents[1])]]  # fmt: skip
    assert (python.parents[1] / "lib/python3.13/site-packages/stylecore/__init__.py").is_file()
    assert not any(c[4:7] == ["-m", "pip", "install"] for c in sandbox.calls)  # nothing downloaded


def test_uninstall_remove_env_deletes_only_our_flatpak_envs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    data = tmp_path / ".var/app/org.gimp.GIMP"
    monkeypatch.setattr(discovery, "detect_flatpak", lambda home: discovery.Flatpak(True, "3.2.6", data))
    ours, theirs = data / "data/stylecore/venv-py3.13", data / "data/stylecore/venv-py3.99"
    mkdirs(ours, theirs)
    (ours / common.MARKER).touch()
    assert cli.main(["--uninstall", "--remove-env", "--venv", str(tmp_path / "no-venv")]) == 0
    assert not ours.exists() and theirs.exists()


# --- torch that fits the machine ------------------------------------------------------------------


def never() -> bool:
    raise AssertionError("must not be asked")


@pytest.mark.parametrize(
    "requested, system, gpu, reachable, kind, cpu_index, size",
    [
        ("auto", "Linux", False, True, "cpu", True, "~200 MB"),
        ("auto", "Linux", False, False, "default", False, "~2.5 GB"),  # the path this machine takes
        ("auto", "Linux", True, None, "cuda", False, "~2.5 GB"),
        ("cpu", "Linux", True, None, "cpu", True, "~200 MB"),
        ("cuda", "Linux", False, None, "cuda", False, "~2.5 GB"),
        ("default", "Linux", None, None, "default", False, ""),
        ("auto", "Darwin", None, None, "default", False, "~100 MB"),
        ("auto", "Windows", None, None, "default", False, "~250 MB"),
    ],
)
def test_torch_choice(requested, system, gpu, reachable, kind, cpu_index, size):
    choice = torch_choice.choose_torch(
        requested, system, never if gpu is None else lambda: gpu, never if reachable is None else lambda: reachable
    )
    assert choice.kind == kind and size in choice.message
    if cpu_index:
        assert choice.pip_args == (
            "--index-url",
            "https://download.pytorch.org/whl/cpu",
            "--extra-index-url",
            "https://pypi.org/simple",
        )
    else:
        assert choice.pip_args == ()
    assert not any("torch=" in a or "torch<" in a for a in choice.pip_args)  # never pins a torch version


def test_probe_of_an_unreachable_index_is_false_and_quick():
    assert torch_choice.index_reachable("http://127.0.0.1:9/whl/cpu/torch/", timeout=2) is False


@pytest.mark.parametrize("head, get, expected", [(200, 200, True), (405, 200, True), (404, 404, False), (405, 500, False)])
def test_probe_against_a_local_index(head, get, expected):
    class Index(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(head)
            self.end_headers()

        def do_GET(self):
            self.send_response(get)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert torch_choice.index_reachable(f"http://127.0.0.1:{server.server_port}/whl/cpu/torch/", timeout=5) is expected
    finally:
        server.shutdown()


# --- uninstall ---------------------------------------------------------------------------------


def test_uninstall_removes_only_what_install_made(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "GIMP3_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(discovery.platform, "system", lambda: "Linux")
    monkeypatch.setattr(discovery, "detect_flatpak", lambda home: discovery.Flatpak(False, None, home / ".var/app/org.gimp.GIMP"))
    ours = discovery.Target(home / ".config/GIMP/3.2", "native", "t")
    elsewhere = discovery.Target(tmp_path / "custom-gimp", "native", "t")  # an old --gimp-dir install, known from the state file
    cfg = plugin.worker_config(Path("/p"), "3.11", "native", "r")
    for t in (ours, elsewhere):
        plugin.write_plugin(t, cfg, vendor=False)
    discovery.save_state([{"path": str(ours.path), "layout": "native"}, {"path": str(elsewhere.path), "layout": "native"}])
    theirs = home / ".config/GIMP/3.0/plug-ins/style-transfer"  # same name, not made by install.py
    mkdirs(theirs, home / ".config/GIMP/3.2/plug-ins/other-plugin")

    assert cli.main(["--uninstall"]) == 0
    assert not ours.plugin_dir.exists() and not elsewhere.plugin_dir.exists()
    assert theirs.is_dir() and (home / ".config/GIMP/3.2/plug-ins/other-plugin").is_dir()
    assert json.loads(discovery.state_file(os.environ, home).read_text()) == []


def test_the_marker_lists_what_install_wrote_and_a_reinstall_drops_what_the_new_version_lacks(tmp_path):
    target = discovery.Target(tmp_path / "GIMP/3.2", "native", "t")
    cfg = plugin.worker_config(Path("/p"), "3.11", "native", "r")
    plugin.write_plugin(target, cfg, vendor=True)
    listed = plugin.owned_files(target.plugin_dir)
    assert "style-transfer.py" in listed and "stylecore/protocol/host.py" in listed and "engine/stylecore/__init__.py" in listed
    assert sorted(listed) == sorted(str(p.relative_to(target.plugin_dir)) for p in target.plugin_dir.rglob("*") if p.is_file()
                                    and p.name != common.MARKER)  # fmt: skip
    (target.plugin_dir / "engine/stylecore/__pycache__").mkdir()
    (target.plugin_dir / "engine/stylecore/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    plugin.write_plugin(target, cfg, vendor=False)  # the engine is no longer vendored: its files, and its folder, go
    assert not (target.plugin_dir / "engine").exists()
    assert not any(rel.startswith("engine/") for rel in plugin.owned_files(target.plugin_dir))


def test_uninstall_of_a_folder_with_a_marker_from_before_the_manifest(tmp_path, monkeypatch):
    """Earlier versions wrote a plain-text marker: what this checkout writes, and their stylecore/ folder, are theirs."""
    monkeypatch.setenv("HOME", str(tmp_path))
    target = discovery.Target(tmp_path / "custom-gimp", "native", "t")
    plugin.write_plugin(target, plugin.worker_config(Path("/p"), "3.11", "native", "r"), vendor=False)
    (target.plugin_dir / common.MARKER).write_text(
        "made by stylecore's install.py; 'python3 install.py --uninstall' removes this folder\n"
    )
    (target.plugin_dir / "stylecore/contract.py").write_text("# a module of the old layout\n")
    (target.plugin_dir / "__pycache__").mkdir()
    (target.plugin_dir / "__pycache__/preview.cpython-311.pyc").write_bytes(b"\0")
    assert cli.main(["--uninstall", "--gimp-dir", str(target.path)]) == 0
    assert not target.plugin_dir.exists()


# --- the plug-in folder and --check start the worker as the plug-in does -----------------------------

FAKE_WORKER = REPO / "tests" / "gimp" / "fake_worker.py"
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))  # no venv, so no stylecore


def fake_stylecore(folder: Path) -> Path:
    """A `stylecore` package whose worker is tests/gimp/fake_worker.py (ready at once, no torch)."""
    (folder / "stylecore").mkdir(parents=True)
    (folder / "stylecore" / "__init__.py").write_text("")
    (folder / "stylecore" / "__main__.py").write_text(FAKE_WORKER.read_text())
    return folder


def test_plugin_folder_holds_the_standard_library_modules_it_imports(tmp_path):
    target = discovery.Target(tmp_path / "GIMP/3.2", "native", "test")
    entry = plugin.write_plugin(target, plugin.worker_config(Path("/p"), "3.11", "native", "r"), vendor=False)
    assert sorted(p.name for p in (entry.parent / "stylecore").iterdir()) == sorted(plugin.PLUGIN_MODULES)
    probe = (
        "import sys; sys.path.insert(0, ''); from stylecore.protocol import client, host, messages; "
        "print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    )
    r = subprocess.run([BASE_PYTHON, "-I", "-c", probe], cwd=entry.parent, capture_output=True, text=True)
    assert (r.returncode, r.stdout.strip()) == (0, "[]"), r.stderr


def test_check_starts_the_worker_from_a_private_folder_not_the_callers(tmp_path, monkeypatch, capsys):
    """A stylecore in the folder --check runs from (a checkout) must not make a broken worker look healthy."""
    monkeypatch.chdir(fake_stylecore(tmp_path / "checkout"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "checkout"))  # the shell's, dropped as the plug-in drops it
    broken = installed(tmp_path / "broken", {"python": BASE_PYTHON, "python_version": ""})
    problems = check.check_target(broken, lambda: None, "r")
    assert len(problems) == 1 and problems[0].startswith("the worker cannot start: "), problems
    assert "No module named stylecore" in problems[0] and problems[0].endswith("run: python3 /r/install.py")
    engine = fake_stylecore(tmp_path / "engine")
    healthy = installed(tmp_path / "healthy", {"python": BASE_PYTHON, "pythonpath": str(engine), "python_version": ""})
    assert check.check_target(healthy, lambda: None, "r") == []
    assert "stylecore fake, device cpu" in capsys.readouterr().out
    assert not list(Path(tempfile.gettempdir()).glob(f"{client.WORKDIR_PREFIX}*")), "the check's private folder was left behind"


def test_a_failed_step_is_one_line_and_exit_status_1(tmp_path, capsys):
    assert cli.main(["--python", str(tmp_path / "no-python"), "--no-plugin", "--no-demo"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("install: error: ") and "has no torch" in err and "\n" not in err


def test_check_reports_the_instant_network_per_folder(tmp_path, monkeypatch, capsys):
    healthy = {"python_version": "3.11", "version": "0.1.0", "device": "cpu", "instant": "ok"}
    monkeypatch.setattr(check, "probe_worker", lambda cfg, in_sandbox, guard: healthy)
    target = installed(tmp_path, {"python": "/venv/bin/python"})
    assert check.check_target(target, lambda: None, "r") == []
    assert "instant network: ok" in capsys.readouterr().out
    missing = "the instant network /c/instant/arbitrary_predict.onnx is missing; run 'stylecore weights fetch' (or 'python3 install.py')"
    monkeypatch.setattr(check, "probe_worker", lambda cfg, in_sandbox, guard: {**healthy, "instant": missing})
    assert check.check_target(target, lambda: None, "r") == [
        f"the instant preset cannot run: {missing}; run: python3 /r/install.py"
    ]


def fetches(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(cmd, **kwargs):
        calls.append([str(c) for c in cmd])
        return subprocess.CompletedProcess(cmd, 0, "/cache/path\n", "")

    monkeypatch.setattr(common, "run", run)
    return calls


def test_install_fetches_the_instant_network_with_the_weights_from_the_files_given(tmp_path, monkeypatch):
    calls = fetches(monkeypatch)
    args = cli.build_parser().parse_args(["--weights", str(tmp_path / "w.npz"), "--instant", str(tmp_path / "i.whl")])
    native.ensure_native_weights(Path("/p/python"), args)
    fetch = ["/p/python", "-m", "stylecore", "weights", "fetch", "--from"]
    assert calls == [fetch + [str(tmp_path / "i.whl")], fetch + [str(tmp_path / "w.npz")]]
    calls.clear()
    native.ensure_native_weights(Path("/p/python"), cli.build_parser().parse_args(["--weights", str(tmp_path / "w.npz")]))
    assert calls == [fetch + [str(tmp_path / "w.npz")], fetch[:-1]], "the weights from the file, then the instant network"
    calls.clear()
    native.ensure_native_weights(Path("/p/python"), cli.build_parser().parse_args([]))
    assert calls == [fetch[:-1]], "without files one fetch does both (stylecore weights fetch: VGG and instant)"


def test_the_flatpak_sandbox_gets_the_hosts_instant_network_as_it_gets_the_vgg_weights(tmp_path, monkeypatch):
    calls = fetches(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # the host cache the installed worker reads
    host = tmp_path / "xdg-cache" / "stylecore"  # not STYLECORE_CACHE (conftest's), which that worker never sees
    (host / "instant").mkdir(parents=True)
    for name in native.INSTANT_FILES:
        (host / "instant" / name).write_bytes(b"x")
    (host / "vgg16-features.npz").write_bytes(b"x")
    flatpak_env.ensure_flatpak_weights(Path("/v/python"), cli.build_parser().parse_args([]))
    fetch = ["flatpak", "run", "--command=/v/python", discovery.FLATPAK_APP, "-m", "stylecore", "weights", "fetch", "--from"]
    assert calls == [fetch + [str(host / "instant")], fetch + [str(host / "vgg16-features.npz")]]


def test_a_damaged_instant_network_given_to_the_installer_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # the fetch runs as the worker would: this cache
    folder = tmp_path / "instant"
    folder.mkdir()
    for name in native.INSTANT_FILES:
        (folder / name).write_bytes(b"not a network")
    args = cli.build_parser().parse_args(["--instant", str(folder), "--no-plugin", "--no-demo"])
    python = Path(sys.executable)
    with pytest.raises(common.InstallError) as caught:
        native.ensure_native_weights(python, args)  # the instant network is imported first: nothing is downloaded
    assert "\n" not in str(caught.value) and "--instant FILE" in str(caught.value)
