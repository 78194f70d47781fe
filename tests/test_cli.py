import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from stylecore import cli, engine


@pytest.fixture
def random_engine(monkeypatch):
    """The CLI's own code paths, on seeded random weights and tiny sizes."""
    monkeypatch.setattr(cli, "stylize", functools.partial(engine.stylize, random_weights=True))


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
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize(
    "setup,expect",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("text", "not an image"),
        ("truncated", "damaged or truncated"),
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
        (["--strength", "250"], "strength"),
        (["--style-scale", "100"], "style scale"),
        (["--working-size", "100000"], "working size"),
        (["--preset", "ultra"], "invalid choice"),
        (["--strength", "abc"], "invalid float"),
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


def test_missing_weights_exit_3(content_png, style_png, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLECORE_WEIGHTS", str(tmp_path / "missing.npz"))
    assert run_cli(content_png, style_png, "-o", tmp_path / "o.png") == 3
    assert "missing.npz" in _one_error_line(capsys)


def test_cancel_exits_4_and_writes_nothing(monkeypatch, content_png, style_png, tmp_path, capsys):
    def cancelling(*a, progress=None, cancel=None, **kw):
        cancel.set()  # as SIGTERM would
        return engine.stylize(*a, progress=progress, cancel=cancel, random_weights=True, **kw)

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
        return engine.stylize(content, styles, **{**kw, "random_weights": True, "working_size": 64, "preset": "draft"})

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
