"""Break-it cases for install.py (issue 26, kind 1 and the installer's item of kind 9).

The installer must never delete or overwrite what it did not make, every bad folder, file or record is one line
and a non-zero exit (never a traceback), and the weights it fetches land in the cache the installed worker reads.
The read-only cases run install.py as a plain user (uid 65534, through setpriv, when the tests run as root), so
real file permissions, not stand-ins, say no.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from installer import cli, common, discovery, native, plugin
from stylecore.protocol import host

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
PLUGIN = Path(".config/GIMP/3.2/plug-ins/style-transfer")  # in the home: where a distro GIMP 3.2 reads it
STATE = Path(".local/share/stylecore/installs.json")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A Linux home with nothing of GIMP's yet, no Flatpak and no distro GIMP on the PATH."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "GIMP3_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(discovery.platform, "system", lambda: "Linux")
    monkeypatch.setattr(discovery, "detect_flatpak", lambda home: discovery.Flatpak(False, None, home / "no-flatpak"))
    monkeypatch.setattr(discovery, "native_gimp_on_path", lambda: False)
    return home


@pytest.fixture
def work(monkeypatch) -> list[str]:
    """The environment and weights steps, stubbed; the list says which ran (a refusal must come before them)."""
    done: list[str] = []
    monkeypatch.setattr(native, "ensure_native_environment", lambda args: done.append("environment") or Path(sys.executable))
    monkeypatch.setattr(native, "ensure_native_weights", lambda python, args: done.append("weights"))
    return done


def one_line(err: str) -> str:
    """stderr holds exactly one error line, and no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("install: error: ") and "Traceback" not in err, err
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    """Every entry under folder with its content (files), target (links) or '/' (folders)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else "/" if path.is_dir() else path.read_text()
    return found


# --- never delete or overwrite what install.py did not make -------------------------------------------


def test_install_refuses_a_plugin_folder_it_did_not_make(home, work, capsys):
    theirs = home / PLUGIN
    theirs.mkdir(parents=True)
    (theirs / "style-transfer.py").write_text("# my own plug-in of that name\n")
    (theirs / "notes.txt").write_text("mine\n")
    before = tree(home)
    assert cli.main(["--no-demo"]) == 1
    line = one_line(capsys.readouterr().err)
    assert str(theirs) in line and "did not make it" in line and "move it away" in line
    assert tree(home) == before, "the user's folder was changed"
    assert work == [], "the refusal must come before any work"


def test_reinstall_keeps_a_file_the_user_added_to_the_plugin_folder(home, work, capsys):
    assert cli.main(["--no-demo"]) == 0
    (home / PLUGIN / "notes.txt").write_text("mine\n")
    (home / PLUGIN / "my-presets").mkdir()
    (home / PLUGIN / "my-presets" / "warm.json").write_text("{}\n")
    assert cli.main(["--no-demo"]) == 0
    assert (home / PLUGIN / "notes.txt").read_text() == "mine\n"
    assert (home / PLUGIN / "my-presets" / "warm.json").read_text() == "{}\n"
    assert (home / PLUGIN / "style-transfer.py").is_file()


def test_uninstall_removes_only_the_files_it_made_and_says_what_it_kept(home, work, capsys):
    assert cli.main(["--no-demo"]) == 0
    dest = home / PLUGIN
    (dest / "notes.txt").write_text("mine\n")
    (dest / "my-presets").mkdir()
    (dest / "my-presets" / "warm.json").write_text("{}\n")
    for cache in (dest / "__pycache__", dest / "stylecore" / "protocol" / "__pycache__"):  # as GIMP's Python leaves them
        cache.mkdir()
        (cache / "host.cpython-311.pyc").write_bytes(b"\0")
    capsys.readouterr()
    assert cli.main(["--uninstall"]) == 0
    assert tree(dest) == {"my-presets": "/", "my-presets/warm.json": "{}\n", "notes.txt": "mine\n"}
    out = [ln for ln in capsys.readouterr().out.splitlines() if str(dest) in ln]
    assert len(out) == 1 and "kept the folder" in out[0] and "notes.txt" in out[0] and "my-presets" in out[0], out


def test_uninstall_remove_env_keeps_an_environment_it_did_not_make(home, capsys):
    venv = home / "my-env"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")  # the user's own venv, passed to install.py with --venv
    assert cli.main(["--uninstall", "--remove-env", "--venv", str(venv)]) == 0
    assert (venv / "pyvenv.cfg").is_file()
    assert f"left the environment {venv} alone" in capsys.readouterr().out


# --- read-only folders, with real permissions ------------------------------------------------------------


def plain_user() -> list[str]:
    """The command prefix that runs a program as a user whom file permissions bind (empty if this one is)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("the tests run as root and setpriv is missing: no read-only folder binds root")
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); import installer.cli"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"this interpreter does not run as uid {NOBODY}: {probe.stderr.strip()[-200:]}")
    return prefix


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder that uid 65534 can reach (pytest's own temp folder is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="stylecore-breakit-"))
    base.chmod(0o755)
    yield base
    for root, dirs, _ in os.walk(base):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(base)


def hand_over(folder: Path) -> None:
    """Makes uid 65534 the owner of everything under folder (when root sets up for it)."""
    if os.geteuid() == 0:
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)


def run_installer(prefix: list[str], home: Path, *argv: str, stub_work: bool = False) -> subprocess.CompletedProcess[str]:
    """install.py as that user, in a clean environment with this home; stub_work: the environment and weights steps
    print WORK instead of running (as the work fixture does in-process)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if stub_work:
        driver = (
            "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); from installer import cli, native\n"
            "def work(*args):\n    print('WORK', flush=True)\n    return Path(sys.executable)\n"
            "native.ensure_native_environment = native.ensure_native_weights = work\n"
            "sys.exit(cli.main(sys.argv[2:]))\n"
        )
        cmd = [sys.executable, "-c", driver, str(REPO), *argv]
    else:
        cmd = [sys.executable, str(REPO / "install.py"), *argv]
    return subprocess.run([*prefix, *cmd], env=env, cwd=home.parent, capture_output=True, text=True, timeout=120)


def test_uninstall_with_a_read_only_plugins_folder_removes_nothing_and_is_one_line(reachable, monkeypatch):
    prefix = plain_user()
    home = reachable / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    target = discovery.Target(home / ".config/GIMP/3.2", "native", "test")
    plugin.write_plugin(target, plugin.worker_config(Path(sys.executable), "3.11", "native", "r"), vendor=False)
    discovery.save_state([{"path": str(target.path), "layout": "native"}])
    hand_over(reachable)
    (home / PLUGIN).parent.chmod(0o555)  # plug-ins/ is read-only: its style-transfer/ folder cannot go
    before = tree(home)
    r = run_installer(prefix, home, "--uninstall")
    line = one_line(r.stderr)
    assert r.returncode == 1 and str((home / PLUGIN).parent) in line and "read-only" in line, r.stderr
    assert tree(home) == before, "uninstall half-emptied the folder"


def test_a_read_only_home_is_one_line_before_any_work(reachable):
    prefix = plain_user()
    home = reachable / "home"
    home.mkdir()
    hand_over(reachable)
    home.chmod(0o555)
    r = run_installer(prefix, home, "--no-demo", stub_work=True)
    line = one_line(r.stderr)
    assert r.returncode == 1 and str(home) in line and "read-only" in line, r.stderr
    assert "WORK" not in r.stdout, "the refusal must come before any work"


# --- every bad folder, link or record is one line and a non-zero exit ----------------------------------------


def a_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder\n")
    return path


def linked_plugin_folder(home: Path) -> Path:
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("mine\n")
    (elsewhere / common.MARKER).write_text("copied from an old install\n")
    (home / PLUGIN).parent.mkdir(parents=True)
    (home / PLUGIN).symlink_to(elsewhere)
    return home / PLUGIN


def state_file(text: str) -> Callable[[Path], Path]:
    def write(home: Path) -> Path:
        (home / ".config/GIMP/3.2").mkdir(parents=True)
        (home / STATE).parent.mkdir(parents=True)
        (home / STATE).write_text(text)
        return home / STATE

    return write


@pytest.mark.parametrize(
    "setup, argv",
    [
        pytest.param(lambda home: a_file(home / "gimp-file"), ["--gimp-dir", "{path}"], id="gimp-dir-is-a-file"),
        pytest.param(lambda home: a_file(home / "gimp3-file"), [], id="GIMP3_DIRECTORY-is-a-file"),
        pytest.param(lambda home: a_file(home / ".config/GIMP"), [], id="config-GIMP-is-a-file"),
        pytest.param(linked_plugin_folder, [], id="plugin-folder-is-a-symlink"),
        pytest.param(state_file('[{"path": 5, "layout": "native"}]'), ["--uninstall"], id="state-path-is-a-number"),
        pytest.param(state_file("[{]"), ["--uninstall"], id="state-file-is-not-json"),
        pytest.param(state_file('{"path": "/x"}'), [], id="state-file-is-not-a-list"),
        pytest.param(lambda home: a_file(home / STATE.parent), [], id="state-folder-is-a-file"),
        pytest.param(lambda home: a_file(home / STATE.parent), ["--uninstall"], id="state-folder-is-a-file-uninstall"),
    ],
)
def test_a_bad_folder_or_record_is_one_line_and_a_non_zero_exit(home, work, monkeypatch, capsys, setup, argv):
    path = setup(home)
    if path.name == "gimp3-file":
        monkeypatch.setenv("GIMP3_DIRECTORY", str(path))
    before = tree(home)
    assert cli.main([a.format(path=path) for a in argv] + (["--no-demo"] if "--uninstall" not in argv else [])) == 1
    line = one_line(capsys.readouterr().err)
    assert str(path) in line, line
    assert work == [], "the refusal must come before any work"
    assert tree(home) == before, "nothing may change"


def test_an_os_error_in_any_step_is_one_line(home, work, monkeypatch, capsys):
    def disk_full(source, dest):
        raise OSError(28, "No space left on device", str(dest))

    monkeypatch.setattr(os, "replace", disk_full)  # the first file written in place: the marker, or the record
    assert cli.main(["--no-demo"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "free some disk space" in line and str(home) in line, line


def test_an_unexpected_exception_is_one_line_that_says_it_is_a_bug(home, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(discovery, "discover", broken)
    assert cli.main(["--no-demo"]) == 70
    line = one_line(capsys.readouterr().err)
    assert "RuntimeError: boom" in line and "a bug in install.py" in line
    log = Path(line.rsplit("the traceback is in ", 1)[1].rstrip(")"))
    try:
        assert "Traceback" in log.read_text() and "boom" in log.read_text()
    finally:
        log.unlink()


# --- the weights land where the installed worker looks ---------------------------------------------------------


def test_weights_are_fetched_into_the_cache_the_installed_worker_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path / "shell-cache"))  # this shell's; GIMP's worker drops it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    worker_reads = host.stylecore_cache(host.worker_environment(os.environ))
    assert worker_reads == tmp_path / "xdg" / "stylecore"
    envs: list[dict[str, str]] = []

    def fetch(cmd, env=None, **kwargs):  # `stylecore weights fetch` prints the cache it filled
        envs.append(dict(env if env is not None else os.environ))
        return subprocess.CompletedProcess(cmd, 0, f"{host.stylecore_cache(envs[-1])}/vgg16-features.npz\n", "")

    monkeypatch.setattr(common, "run", fetch)
    native.ensure_native_weights(Path("/venv/bin/python"), cli.build_parser().parse_args([]))
    native.run_demo(Path("/venv/bin/python"), cli.build_parser().parse_args([]))
    assert envs and not any("STYLECORE_CACHE" in env for env in envs), "the fetch and the demo must see what the worker sees"
    out = capsys.readouterr().out
    ready = [ln for ln in out.splitlines() if "weights ready" in ln]
    assert ready == [f"install: weights ready: {worker_reads}/vgg16-features.npz"], out
    assert f"STYLECORE_CACHE={tmp_path / 'shell-cache'} is set in this shell" in out and "does not read" in out
