"""The worker over a real sshd on 127.0.0.1 (tests/sshd.py), with pixels carried in the protocol (issue 18).

The far end is this machine's venv: `<venv python> -m stylecore worker --random-weights --device cpu`.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecore.images.arrays import from_array, to_array
from stylecore.protocol import client, errors, messages, pixels, ssh
from stylecore.protocol.client import WorkerClient
from stylecore.protocol.errors import RemoteFailure
from tests.sshd import keygen

from .conftest import gradient_image

WORKER = shlex.join([sys.executable, "-m", "stylecore", "worker", "--random-weights", "--device", "cpu"])
QUICK = {"preset": "draft", "working_size": 64, "seed": 3}


def target(sshd, command: str = WORKER, **options) -> ssh.Target:
    """The far end as a user names it (checked as the CLI and the dialog check it)."""
    return ssh.Target.parse(str(sshd.destination), command, sshd.options(**options))


def float_layer(w: int = 48, h: int = 40) -> np.ndarray:
    """RGBA float32 whose alpha lies between the 8-bit steps (k/255 + 1/510), as a 32-bit GIMP layer can."""
    rgba = np.dstack([gradient_image(w, h), np.zeros((h, w), np.float32)]).astype(np.float32)
    rgba[..., 3] = (np.arange(w * h).reshape(h, w) % 200 + 0.5) / 255.0
    return rgba


def off_grid(values: np.ndarray) -> float:
    """The largest distance of any value from the nearest 8-bit step, in steps (0.5 is the most there is)."""
    steps = values.astype(np.float64) * 255.0
    return float(np.max(np.abs(steps - np.rint(steps))))


def request(rid: str, rgba: np.ndarray, style: np.ndarray, **extra) -> tuple[dict, bytes | None]:
    obj, payload = messages.build_request(rid, from_array(rgba), [(from_array(style), 1.0)], QUICK, None)
    obj.update(extra)
    return obj, payload


def wait_gone(sshd, seconds: float = 20) -> set[int]:
    """The sshd's session processes still alive after `seconds` (the far worker among them)."""
    deadline = time.monotonic() + seconds
    while (left := sshd.session_pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_preview_then_full_run_with_inline_pixels_keep_float_precision(sshd):
    rgba, style = float_layer(), gradient_image(40, 40, seed=5)
    with WorkerClient(target(sshd)) as conn:
        assert conn.remote
        ready = conn.wait_ready()
        assert ready["protocol"] == messages.PROTOCOL and ready["version"] == messages.VERSION
        assert ready["device"] == "cpu" and ready["gpu"] is None
        images = []
        preview, payload = request("p1", rgba, style, images={"every": 1})
        conn.run(preview, payload, lambda e: images.append(e) if e.kind == messages.IMAGE else None)
        assert images and all(e.payload is not None and e.get("pixels")["sample"] == "f32" for e in images)
        first = to_array(pixels.decode(images[0].get("pixels"), images[0].payload))
        assert first.shape[2] == 3 and images[0].pixels()[2] == 3
        final, payload = request("f1", rgba, style)
        result = conn.run(final, payload)
        out = to_array(pixels.decode(result.get("pixels"), result.payload))
        assert out.shape == (40, 48, 4) and result.get("alpha") is True and result.get("bits") == 32
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])  # alpha carried through exactly
        assert off_grid(out[..., 3]) > 0.49 and off_grid(out[..., :3]) > 0.1  # nothing was rounded to 8 bits
    assert not wait_gone(sshd), "the remote worker outlived its connection"


def test_cancel_then_the_worker_goes_on(sshd):
    rgba, style = float_layer(), gradient_image(40, 40, seed=5)
    with WorkerClient(target(sshd)) as conn:
        conn.wait_ready()
        long_run, payload = messages.build_request("c1", from_array(rgba), [(from_array(style), 1.0)], {"preset": "best"}, None)
        seen = []

        def cancel_on_first_progress(event):
            if not seen:
                conn.cancel("c1")
            seen.append(event)

        with pytest.raises(errors.Cancelled):
            conn.run(long_run, payload, cancel_on_first_progress)
        result = conn.run(*request("after", rgba, style))
        assert result.get("width") == 48 and result.payload


@pytest.mark.parametrize("how", ["eof", "dropped"])
def test_eof_or_a_dropped_link_mid_run_ends_the_remote_worker(sshd, how):
    rgba, style = float_layer(), gradient_image(40, 40, seed=5)
    conn = WorkerClient(target(sshd))
    try:
        conn.wait_ready()
        obj, payload = messages.build_request("long", from_array(rgba), [(from_array(style), 1.0)], {"preset": "best"}, None)

        def stop_on_first_progress(event):
            if how == "eof":
                conn.proc.stdin.close()
            else:
                sshd.kill_sessions()

        # EOF: the far worker cancels the run as it ends (its own cancelled event); a drop: ssh's failure, in one line
        with pytest.raises(errors.Cancelled if how == "eof" else RemoteFailure) as info:
            conn.run(obj, payload, stop_on_first_progress)
        assert "\n" not in str(info.value)
        if how == "dropped":
            assert str(info.value).startswith(f"{sshd.destination}: the connection dropped mid-run")
    finally:
        conn.close()
    assert not wait_gone(sshd), "the remote worker outlived its connection"


def test_refused_login_is_one_line(sshd, tmp_path):
    stranger = tmp_path / "stranger"
    keygen(stranger)
    with (
        pytest.raises(RemoteFailure, match="the login was refused") as info,
        WorkerClient(target(sshd, identity=stranger)) as conn,
    ):
        conn.wait_ready()
    assert "\n" not in str(info.value)


def test_unknown_host_key_is_one_line(sshd, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(RemoteFailure, match="host key is not known yet"), WorkerClient(target(sshd, known_hosts=empty)) as conn:
        conn.wait_ready()


def test_missing_remote_command_is_one_line(sshd):
    with pytest.raises(RemoteFailure, match="remote worker command was not found.*install.py --no-plugin") as info:
        with WorkerClient(target(sshd, "/nonexistent/python -m stylecore worker")) as conn:
            conn.wait_ready()
    assert "\n" not in str(info.value)


def test_version_mismatch_says_what_to_upgrade():
    older = messages.ready_problem({"protocol": messages.PROTOCOL - 1, "version": "0.0.1"}, "me@gpu")
    assert older and "upgrade stylecore on me@gpu" in older
    newer = messages.ready_problem({"protocol": messages.PROTOCOL + 1, "version": "99.0"}, "me@gpu")
    assert newer and "upgrade stylecore on this computer" in newer
    assert messages.ready_problem({"protocol": messages.PROTOCOL, "version": messages.VERSION}) is None


def test_cli_remote_makes_the_same_image_as_the_engine_here(sshd, tmp_path, content_png, style_png):
    from stylecore import Stylizer

    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "stylecore", str(content_png), str(style_png), "-o", str(out), "--json-progress"]
    argv += ["--preset", "draft", "--working-size", "64", "--seed", "3", "--remote", str(sshd.destination)]
    argv += ["--remote-command", WORKER, *(x for o in sshd.options() for x in ("--ssh-option", o))]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert '"event": "progress"' in run.stdout and '"event": "done"' in run.stdout
    here = Stylizer(device="cpu", random_weights=True).stylize(
        str(content_png), [(str(style_png), 1.0)], preset="draft", working_size=64, seed=3
    )
    remote_pixels = np.asarray(Image.open(out).convert("RGB"), np.float32) / 255
    assert np.abs(remote_pixels - np.asarray(here.to_pil(8).convert("RGB"), np.float32) / 255).max() <= 1 / 255 + 1e-6
    assert not wait_gone(sshd)


def test_cli_bad_destination_is_bad_input(tmp_path, content_png, style_png):
    argv = [sys.executable, "-m", "stylecore", str(content_png), str(style_png), "-o", str(tmp_path / "o.png"), "--remote", "a b"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == errors.EXIT_BAD_INPUT and "is not a host name" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_cli_remote_failure_is_one_line_and_writes_nothing(sshd, tmp_path, content_png, style_png):
    out = tmp_path / "out.png"
    argv = [
        sys.executable,
        "-m",
        "stylecore",
        str(content_png),
        str(style_png),
        "-o",
        str(out),
        "--remote",
        str(sshd.destination),
    ]
    argv += ["--remote-command", "/nonexistent/worker", *(x for o in sshd.options() for x in ("--ssh-option", o))]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == errors.EXIT_REMOTE
    assert "remote worker command was not found" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(Path(tmp_path).glob("out*"))


def plugin_modules():
    """The plug-in's stdlib modules (arguments, job, session), as GIMP's Python imports them."""
    folder = str(Path(__file__).resolve().parents[1] / "gimp_plugin" / "style-transfer")
    sys.path.insert(0, folder)
    try:
        import arguments
        import job
        import session

        return arguments, job, session
    finally:
        sys.path.remove(folder)


def test_plugin_client_previews_and_runs_remotely_in_band_leaving_no_files(sshd, tmp_path, monkeypatch, style_png):
    arguments, job, session_module = plugin_modules()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(client.tempfile, "tempdir", None)
    (tmp_path / "tmp").mkdir()
    values = {"run-on": str(sshd.destination), "remote-command": WORKER, "ssh-options": " ".join(sshd.options())}
    session = session_module.Session(str(tmp_path / "no-config-needed.json"))
    session.run_on(arguments.run_on(values.get))
    try:
        worker = session.ready_worker()
        assert worker.remote and session.where() == str(sshd.destination)
        assert "cpu" in job.device_text(worker.ready, session.where())
        rgba = float_layer()
        content = session.content("content.npy", 48, 40, 4, rgba.tobytes())
        style = messages.EncodedFile("style.png", style_png.read_bytes())
        assert isinstance(content, pixels.Pixels) and session.output("p1.npy") is None
        options = {**QUICK, "preset": "draft"}
        obj, payload = job.build("p1", content, [(style, 1.0)], options, None, preview=True)
        images = []
        worker.run(obj, payload, lambda e: images.append(e.pixels()) if e.kind == messages.IMAGE else None)
        assert images and images[0][2] == 3
        obj, payload = job.build("f1", content, [(style, 1.0)], options, None)
        w, h, c, data = worker.run(obj, payload).pixels()
        out = np.frombuffer(data, np.float32).reshape(h, w, c)
        assert (w, h, c) == (48, 40, 4) and off_grid(out[..., 3]) > 0.49
    finally:
        session.close()
    assert not list((tmp_path / "tmp").iterdir()), "files left on this machine"
    assert not wait_gone(sshd)


def test_plugin_remote_failures_are_one_line(sshd, tmp_path, monkeypatch):
    arguments, _job, session_module = plugin_modules()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(errors.BadInput, match="is not a host name"):  # the procedure's CALLING_ERROR, before any ssh
        arguments.run_on({"run-on": "bad host", "remote-command": "", "ssh-options": ""}.get)
    assert arguments.run_on({"run-on": messages.THIS_COMPUTER, "remote-command": "", "ssh-options": ""}.get) is None
    values = {"run-on": str(sshd.destination), "remote-command": "/nonexistent/python", "ssh-options": " ".join(sshd.options())}
    session = session_module.Session(str(tmp_path / "none.json"))
    session.run_on(arguments.run_on(values.get))
    with pytest.raises(RemoteFailure, match="remote worker command was not found") as info:
        session.ready_worker()
    assert "\n" not in str(info.value)
    session.close()


def test_install_check_remote_starts_the_printed_worker_command_and_reports_its_device(sshd):
    from stylecore.protocol import host

    printed = host.remote_worker_command(sys.executable)  # what install.py --no-plugin prints
    assert " -I -u -m stylecore worker" in printed
    argv = [sys.executable, str(Path(__file__).resolve().parents[1] / "install.py"), "--check", "--remote", str(sshd.destination)]
    argv += ["--remote-command", printed + " --random-weights", *(x for o in sshd.options() for x in ("--ssh-option", o))]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"worker on {sshd.destination}: stylecore {messages.VERSION} (protocol {messages.PROTOCOL}), device cpu" in run.stdout
    argv[argv.index("--remote-command") + 1] = "/nonexistent/python -m stylecore worker"
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "PROBLEM:" in run.stdout and "remote worker command was not found" in run.stdout
    assert not wait_gone(sshd)
