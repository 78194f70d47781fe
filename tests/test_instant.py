"""The instant preset: one pass of the feed-forward network, through the normal API and CLI.

Tests marked real_weights run the published ONNX networks from the cache ('stylecore weights fetch'
puts them there, once per machine); the others need no network files."""

import functools
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from stylecore import Stylizer, stylize
from stylecore.engine import color, resize
from stylecore.engine import stylizer as engine_mod
from stylecore.engine.instant import network
from stylecore.frontends import cli
from stylecore.models import instant_weights
from stylecore.protocol import presets
from stylecore.protocol.errors import Cancelled, WeightsUnavailable

from .conftest import bench, gradient_image

real = pytest.mark.real_weights


def _small(name: str, long_side: int) -> np.ndarray:
    rgb = np.asarray(Image.open(bench(name)).convert("RGB"), np.float32) / 255
    w, h = resize.fit((rgb.shape[1], rgb.shape[0]), long_side)
    return resize.bicubic_array(rgb, w, h)


@pytest.fixture(scope="module")
def engine():
    try:
        instant_weights.verify()
    except WeightsUnavailable as exc:
        pytest.fail(f"{exc} (scripts/test.sh does this)")
    return Stylizer(device="cpu", random_weights=True)


@pytest.fixture(scope="module")
def photo():
    return _small("tubingen.jpg", 256)


@pytest.fixture(scope="module")
def starry():
    return _small("starry_night.jpg", 256)


@pytest.fixture(scope="module")
def scream():
    return _small("the_scream.jpg", 256)


def _run(engine, content, style, **options):
    return engine.stylize(content, style, preset="instant", **{"strength": 100, **options})


# --- without the network files ------------------------------------------------------------


def test_instant_is_a_preset_of_the_cli_and_the_api():
    assert presets.PRESETS["instant"].feed_forward
    assert "instant" in cli.build_parser().parse_args(["a", "b", "-o", "c.png", "--preset", "instant"]).preset


def test_missing_network_is_one_line_with_the_repair_before_any_image_is_read(tmp_path):
    with pytest.raises(WeightsUnavailable) as info:
        stylize(tmp_path / "no-such-photo.png", tmp_path / "no-such-painting.png", preset="instant", random_weights=True)
    message = str(info.value)
    assert "\n" not in message and "stylecore weights fetch" in message and "instant" in message


def test_damaged_network_file_is_refused_with_the_repair(tmp_path, capsys, content_png, style_png, monkeypatch):
    monkeypatch.setattr(cli, "stylize", functools.partial(engine_mod.stylize, random_weights=True))
    instant_weights.folder().mkdir(parents=True)
    for name in instant_weights.FILES:
        (instant_weights.folder() / name).write_bytes(b"not a network")
    with pytest.raises(WeightsUnavailable, match="does not verify.*'stylecore weights fetch --force'"):
        instant_weights.verify()
    out = tmp_path / "o.png"
    assert cli.main([str(content_png), str(style_png), "-o", str(out), "--preset", "instant"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not verify" in err[0] and not out.exists()


def test_a_wheel_that_is_not_the_published_one_is_refused(tmp_path):
    fake = tmp_path / instant_weights.WHEEL_FILE
    fake.write_bytes(b"PK not really")
    with pytest.raises(WeightsUnavailable, match="not the published one"):
        instant_weights.import_wheel(fake)
    assert not instant_weights.cached()


# --- the real networks --------------------------------------------------------------------


@real
def test_output_matches_the_reference_runtime_on_the_original_graph(engine, monkeypatch):
    """A layer of the working size is painted as it is. Tolerance: mean 0.05, 99th percentile 0.25 (of 1). The published graph quantises its activations
    to int8, so its own output moves by about 0.036 on average when a resized photo moves by an invisible 1e-4;
    stylecore runs it in float32 (instant_graph.dequantized), which lands within that spread."""
    ort, _ = instant_weights.runtime()  # telemetry off, as the engine imports it

    monkeypatch.setattr(network, "WORKING_SIDE", 384)
    photo = _small("tubingen.jpg", 384)[:384, :384]
    photo = np.ascontiguousarray(np.pad(photo, ((0, 384 - photo.shape[0]), (0, 0), (0, 0)), mode="symmetric"))
    painting = _small("starry_night.jpg", 512)
    files = instant_weights.verify()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    predict = ort.InferenceSession(str(files.predict), opts, providers=["CPUExecutionProvider"])
    transform = ort.InferenceSession(str(files.transform), opts, providers=["CPUExecutionProvider"])
    numbers = predict.run(None, {"style_image": network._square_view(painting, 1.0)[None]})[0]
    reference = transform.run(None, {"content_image": photo[None], "mobilenet_conv/Conv/BiasAdd": numbers})[0][0]
    ours = _run(engine, photo, painting).rgb
    diff = np.abs(ours - reference)
    assert ours.shape == reference.shape == (384, 384, 3)
    assert diff.mean() < 0.05 and np.percentile(diff, 99) < 0.25
    other = predict.run(None, {"style_image": network._square_view(_small("the_scream.jpg", 512), 1.0)[None]})[0]
    other_style = transform.run(None, {"content_image": photo[None], "mobilenet_conv/Conv/BiasAdd": other})[0][0]
    assert np.abs(other_style - reference).mean() > 2 * diff.mean()  # far closer than another painting's picture


@real
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (33, 17), (101, 257), (256, 64)])
def test_any_size_comes_back_at_its_own_size(engine, starry, size):
    width, height = size
    content = gradient_image(width, height)
    out = _run(engine, content, starry).rgb
    assert out.shape == (height, width, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@real
def test_a_layer_bigger_than_a_tile_is_painted_in_tiles_without_a_seam(engine, starry, monkeypatch):
    monkeypatch.setattr(network, "WORKING_SIDE", 700)  # painted at its own size: the tile edges are its columns
    content = _small("tubingen.jpg", 700)  # 700x525
    whole = _run(engine, content, starry).rgb
    monkeypatch.setattr(network, "TILE", 192)
    records = []
    tiled = engine.stylize(content, starry, preset="instant", strength=100, progress=records.append).rgb
    steps = [r for r in records if r.stage == "instant"]
    assert len(steps) > 4 and steps[-1].step == steps[-1].steps and records[-1].stage == "finish"
    assert np.abs(tiled - whole).max() < 1e-3  # the halo covers the network's reach: tiles agree exactly
    monkeypatch.setattr(network, "MOMENTS_SIDE", 352)  # moments measured on the picture at half its size
    shrunk = _run(engine, content, starry).rgb
    grid = network._grid(528, 700, wrap=False)
    edges = sorted({t.x0 for t in grid.tiles} - {0})
    jumps = np.abs(np.diff(shrunk, axis=1)).mean(axis=(0, 2))  # jump between column c and c+1
    assert max(jumps[x - 1] for x in edges) < 1.5 * np.median(jumps)
    assert np.abs(shrunk - whole).mean() < 0.05  # a global shift of the style's statistics, no seam


@real
def test_alpha_passes_through(engine, starry):
    rgba = np.dstack([gradient_image(40, 30), np.linspace(0, 1, 1200, dtype=np.float32).reshape(30, 40)])
    out = _run(engine, rgba, starry)
    assert out.alpha is not None and np.array_equal(out.alpha, rgba[..., 3])


@real
def test_preserve_colors_keeps_the_photos_chroma(engine, photo, starry):
    def chroma(rgb):
        return color.to_yiq(resize.to_tensor(rgb))[:, 1:].numpy()

    kept = _run(engine, photo, starry, preserve_colors=True).rgb
    painted = _run(engine, photo, starry).rgb
    assert np.abs(chroma(kept) - chroma(photo)).mean() < 0.01
    assert np.abs(chroma(painted) - chroma(photo)).mean() > 0.03


@real
def test_strength_zero_is_the_photo_and_steps_up_to_100_are_even(engine, photo, starry):
    assert np.array_equal(_run(engine, photo, starry, strength=0).rgb, photo)
    distance = [float(np.abs(_run(engine, photo, starry, strength=s).rgb - photo).mean()) for s in (0, 25, 50, 75, 100)]
    steps = np.diff(distance)
    assert (steps > 0).all() and steps.max() < 2 * steps.min(), distance


@real
def test_two_paintings_blend_by_their_weights(engine, photo, starry, scream):
    a = _run(engine, photo, starry).rgb
    b = _run(engine, photo, scream).rgb
    both = _run(engine, photo, [(starry, 1.0), (scream, 1.0)]).rgb
    assert np.abs(both - a).mean() < np.abs(b - a).mean() and np.abs(both - b).mean() < np.abs(a - b).mean()
    assert np.allclose(_run(engine, photo, [(starry, 1.0), (scream, 0.0)]).rgb, a, atol=1e-5)


@real
def test_seamless_output_wraps_around(engine, starry):
    # red left edge, blue right edge; the waves vary down the columns, so the painting's strokes are no column stripes
    y, x = np.mgrid[0:90, 0:120].astype(np.float32)
    ramp = x / 119
    content = np.ascontiguousarray(np.dstack([ramp, 0.5 + 0.4 * np.sin(y / 6) * np.cos(x / 9), 1 - ramp]))

    def wrap_jump(rgb):
        inner = np.abs(np.diff(rgb, axis=1)).mean()
        return np.abs(rgb[:, 0] - rgb[:, -1]).mean() / inner

    assert wrap_jump(_run(engine, content, starry, seamless=True).rgb) < 1.5
    assert wrap_jump(_run(engine, content, starry).rgb) > 2


@real
def test_on_image_gets_the_result_and_cancel_is_honoured_between_tiles(engine, photo, starry, monkeypatch):
    seen = []
    out = engine.stylize(photo, starry, preset="instant", on_image=seen.append)
    assert len(seen) == 1 and np.array_equal(seen[0], out.rgb)
    monkeypatch.setattr(network, "TILE", 64)
    stop = threading.Event()
    records = []

    def progress(record):
        records.append(record)
        stop.set()

    with pytest.raises(Cancelled):
        engine.stylize(photo, starry, preset="instant", progress=progress, cancel=stop)
    assert len(records) == 1 and records[0].steps > 1


@real
def test_cli_paints_with_preset_instant(tmp_path, capsys):
    content, style, out = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "o.png"
    Image.fromarray((gradient_image(60, 45) * 255).astype(np.uint8)).save(content)
    Image.fromarray((_small("starry_night.jpg", 128) * 255).astype(np.uint8)).save(style)
    assert cli.main([str(content), str(style), "-o", str(out), "--preset", "instant", "-q"]) == 0
    assert Image.open(out).size == (60, 45)
    out.unlink()  # the instant preset never reads the VGG weights: a missing weights file does not stop it
    assert cli.main([str(content), str(style), "-o", str(out), "--preset", "instant", "--weights", "/nonexistent", "-q"]) == 0
    assert cli.main([str(content), str(style), "-o", str(out), "--preset", "draft", "--weights", "/nonexistent", "-q"]) == 3


def test_without_onnxruntime_instant_is_one_line_naming_it_and_the_repair(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` finds when it is not installed
    why = instant_weights.problem()
    assert why is not None and "needs onnxruntime, which is not installed" in why and "install.py" in why and "\n" not in why
