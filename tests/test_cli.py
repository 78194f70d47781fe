import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecore.engine import stylizer
from stylecore.frontends import cli
from stylecore.protocol import errors, option_table


@pytest.fixture
def random_engine(monkeypatch):
    """The CLI's own code paths, on seeded random weights and tiny sizes."""
    monkeypatch.setattr(cli, "stylize", functools.partial(stylizer.stylize, random_weights=True))


def run_cli(*args) -> int:
    return cli.main([str(a) for a in args])


def test_stylize_writes_the_output_with_the_content_size(random_engine, content_png, style_png, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert run_cli(content_png, style_png, "-o", out, "--working-size", 64, "--preset", "draft") == 0
    assert Image.open(out).size == Image.open(content_png).size
    assert "wrote" in capsys.readouterr().err


def test_json_progress_lines_end_with_done(random_engine, content_png, style_png, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert run_cli(content_png, style_png, "-o", out, "--working-size", 64, "--preset", "draft", "--json-progress") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["output"] == str(out)
    progress = [x for x in lines if x["event"] == "progress"]
    assert progress and {"stage", "scale", "scales", "step", "steps", "done", "elapsed", "eta", "losses"} <= set(progress[0])


def test_demo_runs_on_built_in_images(random_engine, tmp_path):
    out = tmp_path / "demo.png"
    assert run_cli("demo", "-o", out, "--working-size", 64, "--preset", "draft", "-q") == 0
    assert Image.open(out).size == (512, 384)


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("stylecore: error:"), err
    assert "Traceback" not in err[0] and "error: stylecore" not in err[0]
    return err[0]


@pytest.mark.parametrize(
    "setup,expect",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("text", "not an image"),
        ("truncated", "damaged, truncated"),
        ("folder", "is a folder"),
    ],
)
def test_bad_content_files_exit_2_with_one_line(random_engine, setup, expect, style_png, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    if setup == "empty":
        bad.write_bytes(b"")
    elif setup == "text":
        bad.write_text("not an image at all")
    elif setup == "truncated":
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(tmp_path / "full.jpg")
        bad = tmp_path / "bad.jpg"
        bad.write_bytes((tmp_path / "full.jpg").read_bytes()[:3000])
    elif setup == "folder":
        bad.mkdir()
    out = tmp_path / "out.png"
    assert run_cli(bad, style_png, "-o", out) == 2
    line = _one_error_line(capsys)
    assert expect in line and str(bad) in line
    assert not out.exists()


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--strength", "250"], "argument --strength: strength 250.0 is outside 0..100"),
        (["--style-scale", "100"], "argument --style-scale"),
        (["--working-size", "100000"], "argument --working-size: working_size 100000 is outside 64..8192"),
        (["--preset", "ultra"], "preset 'ultra' unknown; use one of instant, draft, balanced, best"),
        (["--strength", "abc"], "strength 'abc' is not a number"),
        (["--strength", "nan"], "strength nan is not a number"),
        (["--seed", "99999999999999999999"], "argument --seed: seed 99999999999999999999 is outside 0..2"),
        (["--seed", "-1"], "is outside 0..2"),
        (["--working-size", "9" * 30], "is outside 64..8192"),
        (["--device", "gpu"], "device 'gpu' unknown"),
        (["--pooling", "min"], "pooling 'min' unknown"),
    ],
)
def test_absurd_options_exit_2(random_engine, content_png, style_png, tmp_path, capsys, args, expect):
    assert run_cli(content_png, style_png, "-o", tmp_path / "o.png", *args) == 2
    assert expect in _one_error_line(capsys)


def test_output_never_overwrites_an_input(random_engine, content_png, style_png, capsys):
    before = content_png.read_bytes()
    assert run_cli(content_png, style_png, "-o", content_png) == 2
    assert "overwrite an input" in _one_error_line(capsys)
    assert content_png.read_bytes() == before


def test_output_folder_and_extension_are_checked_before_the_run(random_engine, content_png, style_png, tmp_path, capsys):
    assert run_cli(content_png, style_png, "-o", tmp_path / "nope" / "o.png") == 2
    assert "does not exist" in _one_error_line(capsys)
    assert run_cli(content_png, style_png, "-o", tmp_path / "o.xyz") == 2
    assert "extension" in _one_error_line(capsys)


def never_run(*args, **kwargs):
    raise AssertionError("the run started: the bad output should have been refused first")


@pytest.mark.parametrize(
    "name,extra,expect",
    [
        ("o.psd", [], "Pillow reads PSD ('.psd') but cannot write it"),
        ("o.jpg", ["--bit-depth", "16"], "JPEG holds 8 bits per channel"),
        ("o.webp", ["--bit-depth", "16"], "WEBP holds 8 bits per channel"),
        ("folder", [], "is a folder; give the output a file name"),
        ("file.txt/o.png", [], "is a file, not a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    monkeypatch, content_png, style_png, tmp_path, capsys, name, extra, expect
):
    monkeypatch.setattr(cli, "stylize", never_run)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert run_cli(content_png, style_png, "-o", tmp_path / name, *extra) == 2
    assert expect in _one_error_line(capsys)


def _takes_files(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def test_an_output_in_a_read_only_folder_is_refused_before_the_run(monkeypatch, content_png, style_png, tmp_path, capsys):
    monkeypatch.setattr(cli, "stylize", never_run)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if _takes_files(folder):  # root writes anywhere chmod allows; sysfs refuses even root
        folder = Path("/sys")
        if not folder.is_dir() or _takes_files(folder):
            pytest.skip("no folder here refuses this user")
    assert run_cli(content_png, style_png, "-o", folder / "o.png") == 2
    line = _one_error_line(capsys)
    assert f"the folder {folder} is read-only" in line and "choose a folder you can write to" in line
    assert not list(folder.glob(".o.png*"))


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_honours_the_umask(random_engine, content_png, style_png, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert run_cli(content_png, style_png, "-o", tmp_path / "o.png", "--working-size", 64, "--preset", "draft", "-q") == 0
    finally:
        os.umask(old)
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == mode


def test_paths_no_file_system_can_hold_get_one_line(random_engine, style_png, tmp_path, capsys):
    for bad in ("a\x00b.png", "\ud800.png"):
        assert run_cli(tmp_path / bad, style_png, "-o", tmp_path / "o.png") == 2
        assert "content image: the path holds" in _one_error_line(capsys)
        assert run_cli(style_png, style_png, "-o", tmp_path / bad) == 2
        assert "output: the path holds" in _one_error_line(capsys)


def test_json_progress_stdout_carries_json_only(monkeypatch, content_png, style_png, tmp_path, capsys):
    def chatty(*args, **kwargs):  # as a weights download that prints its notice
        print('Downloading: "https://download.pytorch.org/models/vgg16-397923af.pth"')
        return stylizer.stylize(*args, **{**kwargs, "random_weights": True})

    monkeypatch.setattr(cli, "stylize", chatty)
    out = tmp_path / "o.png"
    assert run_cli(content_png, style_png, "-o", out, "--working-size", 64, "--preset", "draft", "--json-progress") == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["event"] for line in captured.out.splitlines()][-1] == "done"
    assert "Downloading" in captured.err


def test_json_progress_into_head_stops_the_lines_not_the_run(content_png, style_png, tmp_path):
    """`stylecore ... --json-progress | head -n 1`: the reader goes after one line."""
    out = tmp_path / "o.png"
    code = (
        "import functools, sys; from stylecore.engine import stylizer; from stylecore.frontends import cli; "
        "cli.stylize = functools.partial(stylizer.stylize, random_weights=True); sys.exit(cli.main(sys.argv[1:]))"
    )
    args = [content_png, style_png, "-o", out, "--working-size", 64, "--preset", "draft", "--json-progress"]
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["event"] == "progress"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err
    assert out.exists()


def test_readme_lists_every_exit_code():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in errors.EXIT_CODES) + "."
    assert line in readme and "130" in line


@pytest.mark.parametrize("setup", ["fifo", "missing", "text"])
def test_a_bad_input_file_is_named_before_the_weights_load(content_png, style_png, tmp_path, monkeypatch, capsys, setup):
    monkeypatch.setenv("STYLECORE_WEIGHTS", str(tmp_path / "missing.npz"))  # loading them would fail with code 3
    bad = tmp_path / "bad.png"
    if setup == "fifo":
        os.mkfifo(bad)  # read, it would block for ever
    elif setup == "text":
        bad.write_text("no image")
    assert run_cli(content_png, bad, "-o", tmp_path / "o.png") == 2
    assert str(bad) in _one_error_line(capsys)


def test_missing_weights_exit_3(content_png, style_png, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLECORE_WEIGHTS", str(tmp_path / "missing.npz"))
    assert run_cli(content_png, style_png, "-o", tmp_path / "o.png") == 3
    assert "missing.npz" in _one_error_line(capsys)


def test_cancel_exits_4_and_writes_nothing(monkeypatch, content_png, style_png, tmp_path, capsys):
    def cancelling(*a, progress=None, cancel=None, **kw):
        cancel.set()  # as SIGTERM would
        return stylizer.stylize(*a, progress=progress, cancel=cancel, random_weights=True, **kw)

    monkeypatch.setattr(cli, "stylize", cancelling)
    out = tmp_path / "o.png"
    assert run_cli(content_png, style_png, "-o", out, "--working-size", 64) == 4
    assert "cancelled" in _one_error_line(capsys)
    assert not out.exists() and not list(tmp_path.glob(".o.png*"))


def test_json_mode_reports_errors_as_json(random_engine, style_png, tmp_path, capsys):
    assert run_cli(tmp_path / "nope.png", style_png, "-o", tmp_path / "o.png", "--json-progress") == 2
    captured = capsys.readouterr()
    event = json.loads(captured.out.strip().splitlines()[-1])
    assert event["event"] == "error" and event["code"] == 2 and "nope.png" in event["message"]


def test_weights_path_prints_the_cache_location(capsys, tmp_path):
    assert run_cli("weights", "path") == 0
    vgg, instant = capsys.readouterr().out.strip().splitlines()
    assert vgg.endswith("vgg16-features.npz") and instant.endswith("instant")
    assert run_cli("weights", "verify") == 3


def test_module_entry_point_runs_as_a_program(tmp_path):
    env = {**os.environ, "STYLECORE_CACHE": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "stylecore", "--version"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "stylecore" in r.stdout
    r = subprocess.run([sys.executable, "-m", "stylecore", "x.png"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_every_cli_option_reaches_the_engine(monkeypatch, content_png, style_png, tmp_path):
    seen = {}

    def recording(content, styles, **kw):
        seen.update(kw, content=content, styles=styles)
        return stylizer.stylize(content, styles, **{**kw, "random_weights": True, "working_size": 64, "preset": "draft"})

    monkeypatch.setattr(cli, "stylize", recording)
    args = [
        "--strength",
        33,
        "--preserve-colors",
        "--seamless",
        "--style-scale",
        1.5,
        "--preset",
        "best",
        "--working-size",
        640,
        "--seed",
        9,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--model",
        "vgg16",
        "--tv-weight",
        0.5,
        "--style-weights",
        2,
        1,
    ]
    assert run_cli(content_png, style_png, style_png, "-o", tmp_path / "o.png", "-q", *args) == 0
    assert seen["styles"] == [str(style_png)] * 2 and seen["style_weights"] == [2.0, 1.0]
    expected = dict(
        strength=33.0,
        preserve_colors=True,
        seamless=True,
        style_scale=1.5,
        preset="best",
        working_size=640,
        seed=9,
        device="cpu",
        precision="fp32",
        model="vgg16",
        tv_weight=0.5,
    )
    assert {k: seen[k] for k in expected} == expected
    assert {o.name for o in option_table.OPTIONS} <= set(seen), "every option in the table is a CLI flag"


@pytest.mark.real_weights
def test_worker_stops_when_its_parent_closes_the_pipe(real_weights_available, tmp_path):
    """What happens when GIMP cancels: the plug-in dies, its pipe closes, the worker must stop."""
    from .conftest import bench

    out = tmp_path / "o.png"
    cmd = [
        sys.executable,
        "-m",
        "stylecore",
        str(bench("tubingen.jpg")),
        str(bench("starry_night.jpg")),
        "-o",
        str(out),
        "--json-progress",
        "--cancel-on-stdin-eof",
        "--preset",
        "best",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "progress"
    proc.stdin.close()
    code = proc.wait(timeout=60)
    assert code == 4 and not out.exists()
    assert "cancelled" in proc.stderr.read()
