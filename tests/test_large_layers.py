"""Layers bigger than the working size (issue 27): OK paints what the 320-px preview showed, with detail at 100 %.

The enlargement's tests need no network files; the instant network's are marked real_weights."""

import tracemalloc

import numpy as np
import pytest
import torch.nn.functional as F
from PIL import Image

import stylecore
from stylecore import Stylizer
from stylecore.engine import enlarge, resize
from stylecore.engine.instant import network

from .conftest import FAST, bench, gradient_image

real = pytest.mark.real_weights
PREVIEW_SIDE = 320  # the GIMP preview's long side (gimp_plugin/style-transfer/job.py)


def _resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return resize.bicubic_array(rgb, width, height)


def _box(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Shrunk by a box filter, as GIMP reads a layer for the preview."""
    height, width = rgb.shape[:2]
    size = resize.fit((width, height), long_side)
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(size, Image.BOX)
    return np.asarray(image, np.float32) / 255


def _fine_energy(rgb: np.ndarray) -> float:
    """Mean squared difference between the picture and its 3x3 box blur: what is seen only at 100 %."""
    t = resize.to_tensor(rgb)
    return float((t - F.avg_pool2d(t, 3, 1, 1, count_include_pad=False)).pow(2).mean())


def _photo(width: int, height: int) -> np.ndarray:
    """tubingen.jpg at the given size, with a camera's fine grain: a layer with detail at 100 %."""
    rgb = np.asarray(Image.open(bench("tubingen.jpg")).convert("RGB").resize((width, height), Image.LANCZOS), np.float32)
    grain = np.random.default_rng(0).normal(0, 0.02, (height, width, 1)).astype(np.float32)
    return np.clip(rgb / 255 + grain, 0, 1)


# --- the enlargement, without the network files -------------------------------------------


def test_where_the_painting_follows_the_photo_the_photos_detail_comes_back_at_100_percent():
    photo = _photo(960, 720)
    small = _resized(photo, 240, 180)
    painted = np.clip(small * 0.8 + 0.1, 0, 1)  # the photo's structure, in the painting's lower contrast
    out = enlarge.enlarge(painted, photo, small)
    plain = _resized(painted, 960, 720)
    assert _fine_energy(out) > 5 * _fine_energy(plain)
    assert 0.4 * _fine_energy(photo) < _fine_energy(out) < 1.1 * _fine_energy(photo)
    assert np.abs(_resized(out, 240, 180) - painted).mean() < 0.01, "seen small, it is the painting"


def test_where_the_painting_painted_over_the_photo_none_of_its_texture_comes_back():
    photo = _photo(960, 720)
    small = _resized(photo, 240, 180)
    flat = np.full_like(small, 0.4)
    assert np.abs(enlarge.enlarge(flat, photo, small) - 0.4).max() < 0.01


def test_preserve_colors_takes_the_photos_chroma_at_full_resolution():
    photo = _photo(640, 480)
    small = _resized(photo, 160, 120)
    grey = np.repeat(small.mean(axis=2, keepdims=True), 3, axis=2)
    out = enlarge.enlarge(grey, photo, small, photo_colors=True)
    kept = enlarge.keep_photo_colors(out, photo)
    assert np.abs(out - kept).max() < 1e-5, "its chroma is the photo's, pixel for pixel"


def test_enlarging_a_big_layer_holds_the_result_and_a_strip_not_a_few_layers(monkeypatch):
    """Enlarged whole, the painting, the photo's blur and the gain at full size would be seven layer-sized channels
    on top of the result's three."""
    photo = _photo(2000, 1500)
    small = _resized(photo, 500, 375)
    monkeypatch.setattr(enlarge, "STRIP", 100)
    result_bytes = photo.nbytes
    tracemalloc.start()
    try:
        out = enlarge.enlarge(small, photo, small)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    strip_bytes = 100 * 2000 * 5 * 4
    assert peak < result_bytes + 6 * strip_bytes, (peak / 2**20, result_bytes / 2**20)
    monkeypatch.setattr(enlarge, "STRIP", 4096)
    assert np.abs(enlarge.enlarge(small, photo, small) - out).max() < 1e-5, "strips meet without a seam"


def test_a_seamless_result_is_enlarged_plainly_so_its_edges_still_wrap():
    small = gradient_image(60, 40)
    photo = _resized(small, 240, 160)
    out = enlarge.enlarge(small, photo, small, wrap=True)
    assert np.allclose(out, resize.bicubic_array(small, 240, 160, wrap=True))


def test_an_optimised_result_bigger_than_its_working_size_has_detail_at_100_percent():
    content = _photo(480, 360)
    out = stylecore.stylize(content, gradient_image(30, 30, seed=1), **FAST).rgb  # working size 64
    blurred = _resized(_resized(out, 64, 48), 480, 360)  # what enlarging the 64-px result alone gives
    assert _fine_energy(out) > 3 * _fine_energy(blurred)


# --- the instant network --------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    return Stylizer(device="cpu", random_weights=True)


@pytest.fixture(scope="module")
def starry():
    return _box(np.asarray(Image.open(bench("starry_night.jpg")).convert("RGB"), np.float32) / 255, 256)


def _instant(engine, content, style, **options):
    return engine.stylize(content, style, preset="instant", **options).rgb


@real
def test_a_big_layer_seen_at_the_previews_size_is_the_preview(engine, starry):
    layer = _photo(3200, 2400)
    preview_content = _box(layer, PREVIEW_SIDE)
    preview = _instant(engine, preview_content, starry, working_size=PREVIEW_SIDE)  # as the plug-in asks for it
    seen = _box(_instant(engine, layer, starry), PREVIEW_SIDE)
    low = 40  # colours and shapes, the strokes' size aside: what the eye takes from a preview first

    def distance(a, b, side=PREVIEW_SIDE):
        return float(np.abs(_box(a, side) - _box(b, side)).mean())

    assert distance(seen, preview, low) < 0.25 * distance(preview_content, preview, low)
    assert distance(seen, preview) < 0.35 * distance(preview_content, preview), "and the strokes too"


@real
def test_the_strokes_keep_their_size_relative_to_the_layer(engine, starry, monkeypatch):
    """One picture as a 400-px and a 1600-px layer (enlarged from 320 px: neither has detail the other lacks)."""
    picture = _box(np.asarray(Image.open(bench("tubingen.jpg")).convert("RGB"), np.float32) / 255, PREVIEW_SIDE)
    small = _instant(engine, _resized(picture, 400, 300), starry)
    big = _instant(engine, _resized(picture, 1600, 1200), starry)
    monkeypatch.setattr(network, "WORKING_SIDE", 1600)  # strokes of a fixed size in pixels, 4 times finer here
    fixed = _instant(engine, _resized(picture, 1600, 1200), starry)

    def distance(a, b):
        return float(np.abs(a - b).mean())

    assert distance(_box(big, 400), small) < 0.2 * distance(_box(fixed, 400), small)


@real
def test_a_big_instant_layer_has_the_photos_detail_at_100_percent(engine, starry):
    layer = _photo(2400, 1800)
    out = _instant(engine, layer, starry)
    side = network.WORKING_SIDE
    blurred = _resized(_resized(out, side, side * 3 // 4), 2400, 1800)  # the working size's picture enlarged alone
    assert _fine_energy(out) > 2 * _fine_energy(blurred)
    assert out.shape == layer.shape and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
