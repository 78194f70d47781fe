"""The engine object: loaded once, cached styles, one run at a time, cancel, no global side effects."""

import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import stylecore
from stylecore import Cancelled, Stylizer
from stylecore.engine.optimize import vgg
from stylecore.models import vgg_weights

from .conftest import gradient_image

STYLE = gradient_image(30, 30, seed=1)


def test_the_weights_are_loaded_once_for_many_runs(monkeypatch, quick):
    loads = []

    def counting_load(arch, explicit=None):
        loads.append(arch)
        return vgg.random_state(arch)

    monkeypatch.setattr(vgg_weights, "load_weights", counting_load)
    stylizer = Stylizer(device="cpu")
    assert loads == [], "read on the first run that needs them: the instant preset never does"
    for strength in (40, 80):
        stylizer.stylize(gradient_image(40, 30), STYLE, strength=strength, preset=quick)
    assert loads == ["vgg16"]
    stylizer.load_weights()
    assert loads == ["vgg16"]


def test_bad_weights_are_refused_by_load_weights_or_by_the_first_run_that_needs_them(tmp_path, quick):
    """load_weights is what the worker calls before `ready`, so that a bad file is its first word."""
    path = tmp_path / "vgg16.npz"
    np.savez(path, **vgg.random_state("vgg16"))  # random weights never pass as the published ones
    stylizer = Stylizer(device="cpu", weights=path)
    with pytest.raises(stylecore.WeightsUnavailable, match="do not match"):
        stylizer.load_weights()
    gone = Stylizer(device="cpu", weights=tmp_path / "gone.npz")
    with pytest.raises(stylecore.WeightsUnavailable, match="gone.npz"):
        gone.stylize(gradient_image(40, 30), STYLE, preset=quick)


def test_the_one_shot_reads_the_weights_before_any_work(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(stylecore.Stylizer, "_optimize", lambda *a, **k: seen.append("work"))
    with pytest.raises(stylecore.WeightsUnavailable, match="gone.npz"):
        stylecore.stylize(gradient_image(40, 30), STYLE, preset="draft", weights=tmp_path / "gone.npz", device="cpu")
    assert seen == []


def test_style_statistics_are_reused_and_do_not_change_the_result(quick):
    stylizer = Stylizer(device="cpu", random_weights=True)
    first = stylizer.stylize(gradient_image(64, 48), STYLE, preset=quick)
    assert stylizer.style_cache_hits == 0
    again = stylizer.stylize(gradient_image(64, 48), STYLE, preset=quick)
    assert stylizer.style_cache_hits == 2  # both scales of the quick preset
    assert np.array_equal(first.rgb, again.rgb)
    stylizer.stylize(gradient_image(64, 48), gradient_image(30, 30, seed=2), preset=quick)
    assert stylizer.style_cache_hits == 2  # another painting is not mistaken for the cached one


def test_cancel_from_another_thread_stops_the_run_promptly_and_the_next_run_works(random_engine_session, quick):
    stylizer = random_engine_session
    started, steps, outcome = threading.Event(), [], []

    def on_progress(p):
        steps.append(p.step)
        started.set()
        time.sleep(0.05)  # a slow evaluation, so cancel() surely lands mid-run

    def run():
        try:
            stylizer.stylize(gradient_image(64, 48), STYLE, preset="draft", working_size=64, progress=on_progress)
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    seen = len(steps)
    stylizer.cancel()
    worker.join(60)
    assert outcome == ["cancelled"]
    assert len(steps) <= seen + 1  # at most the evaluation in flight finished
    assert stylizer.stylize(gradient_image(40, 30), STYLE, preset=quick).size == (40, 30)


def test_runs_from_two_threads_take_turns(random_engine_session, quick):
    stylizer, results, errors, order = random_engine_session, [], [], []

    def run(tag, seed):
        try:
            out = stylizer.stylize(gradient_image(40, 30), STYLE, preset=quick, seed=seed, progress=lambda p: order.append(tag))
            results.append(out.rgb)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(tag, 1)) for tag in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2 and np.array_equal(results[0], results[1])
    switches = sum(1 for x, y in zip(order, order[1:]) if x != y)
    assert set(order) == {"a", "b"} and switches == 1, order  # one run after the other, never interleaved


def test_no_global_state_changes(quick):
    rng, threads, bomb = torch.random.get_rng_state(), torch.get_num_threads(), Image.MAX_IMAGE_PIXELS
    stylizer = Stylizer(device="cpu", random_weights=True)
    stylizer.stylize(gradient_image(40, 30), STYLE, preset=quick, seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.get_num_threads() == threads and Image.MAX_IMAGE_PIXELS == bomb


def test_on_image_gets_every_evaluation_at_the_current_scale_size(random_engine_session, quick):
    events = []
    content = gradient_image(64, 40)
    random_engine_session.stylize(
        content,
        STYLE,
        preset=quick,
        preserve_colors=True,
        progress=lambda p: events.append(("progress", p)),
        on_image=lambda a: events.append(("image", a)),
    )
    images = [e for kind, e in events if kind == "image"]
    progress = [e for kind, e in events if kind == "progress" and e.stage == "optimize"]
    assert len(images) == len(progress) > 0
    assert {(p.width, p.height) for p in progress} == {(32, 20), (64, 40)}
    for image, p in zip(images, progress):
        assert image.shape == (p.height, p.width, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
    # colors are put back already: the last image has the content's chroma, as the final result does
    from stylecore.engine.color import to_yiq

    def chroma(a):
        return to_yiq(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None])[0, 1:]

    assert float((chroma(images[-1]) - chroma(content)).abs().mean()) < 0.03


def test_stylize_is_a_one_shot_stylizer(quick):
    a = stylecore.stylize(gradient_image(40, 30), STYLE, preset=quick, random_weights=True, device="cpu")
    b = Stylizer(device="cpu", random_weights=True).stylize(gradient_image(40, 30), STYLE, preset=quick)
    assert isinstance(a, stylecore.StyledImage) and np.array_equal(a.rgb, b.rgb)


def test_bad_options_are_refused_before_the_weights_are_read(monkeypatch):
    monkeypatch.setattr(vgg_weights, "load_weights", lambda *a, **k: pytest.fail("weights read"))
    with pytest.raises(stylecore.BadInput, match="strength"):
        stylecore.stylize(gradient_image(), STYLE, strength=101)


@pytest.mark.parametrize("width,height", [(1, 1), (8, 8), (15, 15), (1, 500), (500, 1), (3, 2000), (2000, 3), (17, 2)])
def test_tiny_and_thin_layers_get_a_result_of_their_own_size(random_engine_session, quick, width, height):
    content = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    out = random_engine_session.stylize(content, STYLE, preset=quick)
    assert out.size == (width, height) and np.isfinite(out.rgb).all()
    assert 0.0 <= out.rgb.min() and out.rgb.max() <= 1.0


def test_a_tiny_style_image_works_too(random_engine_session, quick):
    out = random_engine_session.stylize(gradient_image(40, 30), np.full((2, 3, 3), 0.5, np.float32), preset=quick)
    assert out.size == (40, 30)
