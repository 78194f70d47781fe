"""Big layers are refined tile by tile; seamless mode wraps. Neither may leave a seam."""

import dataclasses

import numpy as np
import pytest
import torch

import stylecore
from stylecore.engine import resize, stylizer, tiling
from stylecore.engine.optimize import coarse_to_fine, losses, objective, vgg
from stylecore.engine.optimize.vgg import VGGFeatures, random_state
from stylecore.protocol import presets

from .conftest import gradient_image, offer_preset


# the last case ends in an 8-px sliver of a tile; seamless sizes are multiples of 16, so it cannot wrap
@pytest.mark.parametrize("wrap,height,width,tile", [(False, 208, 240, 96), (True, 208, 240, 96), (False, 160, 200, 64)])
def test_tiled_objective_equals_the_whole_image_objective(wrap, height, width, tile):
    torch.manual_seed(0)
    net = VGGFeatures(random_state(), objective.LAYERS, padding="circular" if wrap else "replicate")
    image, anchor = torch.rand(1, 3, height, width), torch.rand(1, 3, height, width)
    grams = {n: losses.gram(f) for n, f in net(torch.rand(1, 3, 70, 90)).items() if n in objective.STYLE_LAYERS}
    weights = objective.LossWeights(style=5.0, content=2.0, tv=0.5)
    whole_targets = objective.content_targets(net, grams, anchor, None, wrap)
    whole, whole_grad, whole_terms = objective.whole_image_objective(objective.Problem(net, whole_targets, weights, wrap))(image)

    grid = tiling.make_grid(width, height, tile, vgg.HALO, vgg.ALIGN, wrap=wrap)
    assert len(grid.tiles) >= 6
    targets = objective.content_targets(net, grams, anchor, grid, wrap)
    total, grad, terms = objective.tiled_objective(objective.Problem(net, targets, weights, wrap), grid)(image)
    assert total == pytest.approx(whole, rel=1e-5)
    assert terms["style"] == pytest.approx(whole_terms["style"], rel=1e-5)
    assert terms["content"] == pytest.approx(whole_terms["content"], rel=1e-5)
    assert float((grad - whole_grad).abs().max()) < 1e-4 * float(whole_grad.abs().max())


def test_a_cancel_during_the_backward_pass_stops_the_evaluation_there():
    """A changed preview setting cancels the running preview; the next picture waits for that cancel to act."""
    from stylecore.protocol.errors import Cancelled

    torch.manual_seed(0)
    net = VGGFeatures(random_state(), objective.LAYERS)
    image, anchor = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 80)
    grams = {n: losses.gram(f) for n, f in net(torch.rand(1, 3, 48, 48)).items() if n in objective.STYLE_LAYERS}
    problem = objective.Problem(
        net, objective.content_targets(net, grams, anchor, None, False), objective.LossWeights(5.0, 2.0, 0.0)
    )
    plain = objective.whole_image_objective(problem)(image)
    calls = []
    polled = objective.whole_image_objective(problem, lambda: calls.append(1))(image)
    assert polled[0] == plain[0] and torch.equal(polled[1], plain[1])  # polling changes nothing
    # after the forward pass, then as the backward pass reaches each layer the losses read
    assert len(calls) > len(objective.STYLE_LAYERS)
    stops = []

    def cancel_in_backward():
        stops.append(1)
        if len(stops) == 3:  # the forward pass is over: this is the backward pass, at its second layer
            raise Cancelled()

    with pytest.raises(Cancelled):
        objective.whole_image_objective(problem, cancel_in_backward)(image)
    assert len(stops) == 3  # it stopped there, not at the end of the evaluation


def test_grid_covers_every_pixel_once_on_the_pooling_grid():
    grid = tiling.make_grid(770, 1001, 256, 20, 4)
    cover = np.zeros((1001, 770), int)
    for t in grid.tiles:
        cover[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.y0 % 4 == 0 and t.x0 % 4 == 0 and t.halo % 4 == 0 and t.halo >= 20
    assert (cover == 1).all()


def test_wrapped_resize_treats_the_picture_as_periodic():
    t = torch.rand(1, 3, 40, 64)
    for w, h in [(100, 63), (37, 23), (1000, 700)]:
        tiled3 = resize._plain(t.repeat(1, 1, 3, 3), 3 * w, 3 * h)[..., h : 2 * h, w : 2 * w].clamp(0, 1)
        assert float((resize.bicubic(t, w, h, wrap=True) - tiled3).abs().max()) < 1e-4


@pytest.fixture
def tiny_refining_preset(monkeypatch):
    """Doublings above 64 px: the big-layer path at test sizes."""
    preset = dataclasses.replace(
        presets.PRESETS["draft"],
        name="tiny",
        working_size=None,
        min_size=32,
        coarse_evals=8,
        fine_evals=4,
        base_size=64,
        refine_evals=4,
    )
    offer_preset(monkeypatch, preset)
    return dict(random_weights=True, preset="tiny", device="cpu")


def test_tiling_barely_changes_the_refined_picture(tiny_refining_preset, monkeypatch):
    content, style = gradient_image(200, 150), gradient_image(40, 40, seed=1)
    records = []
    whole = np.asarray(stylecore.stylize(content, style, progress=records.append, **tiny_refining_preset).to_pil(), float)
    assert records[-2].width == 200  # optimised at the layer's own size
    monkeypatch.setattr(stylizer, "tile_side", lambda rt: 64)  # 4x3 tiles at the top scale
    tiled = np.asarray(stylecore.stylize(content, style, **tiny_refining_preset).to_pil(), float)
    plain = np.asarray(stylecore.stylize(content, style, working_size=64, **tiny_refining_preset).to_pil(), float)
    refined = np.abs(whole - plain).mean()
    assert refined > 1  # the full-size scale really repainted the layer
    diff = np.abs(tiled - whole)
    # The objectives agree to float rounding (see above), which L-BFGS amplifies over the evaluations into
    # a difference spread evenly over the picture: 1.6 levels on average with torch 2.14 on CPU (the old
    # hand-derived gradient gave the same). A halo too small for the receptive field (16 px, not 80) gave 2.9.
    assert diff.mean() < 2.2 and diff.mean() < 0.5 * refined


def _wrap_jump(a: np.ndarray) -> tuple[float, float]:
    """Mean color jump across the wrap-around edge, and between neighbouring interior columns."""
    a = a.astype(float)
    across = np.abs(a[:, 0] - a[:, -1]).mean()
    inside = np.abs(np.diff(a, axis=1)).mean()
    return across, inside


def test_seamless_output_wraps_without_a_seam():
    w, h = 96, 64
    x = np.linspace(0, 1, w)[None, :, None]
    content = np.broadcast_to(np.concatenate([x, 1 - x, x * 0 + 0.5], axis=2), (h, w, 3)).astype(np.float32)
    style = gradient_image(48, 48, seed=2)
    opts = dict(random_weights=True, preset="draft", working_size=96, device="cpu")
    plain = np.asarray(stylecore.stylize(content, style, **opts).to_pil())
    seamless = np.asarray(stylecore.stylize(content, style, seamless=True, **opts).to_pil())
    across_plain, inside_plain = _wrap_jump(plain)
    across, inside = _wrap_jump(seamless)
    assert across_plain > 4 * inside_plain  # the content's left and right edges really differ
    assert across < 2 * inside


def test_cancel_is_polled_for_every_tile_of_a_long_evaluation(tiny_refining_preset, monkeypatch):
    monkeypatch.setattr(stylizer, "tile_side", lambda rt: 64)
    monkeypatch.setattr(coarse_to_fine, "HALO", 16)  # exactness is not under test here; small crops keep it quick
    content, style = gradient_image(200, 150), gradient_image(40, 40, seed=1)
    polls, records = [], []
    stylecore.stylize(content, style, progress=records.append, cancel=lambda: polls.append(1) and False, **tiny_refining_preset)
    evaluations = sum(1 for r in records if r.stage == "optimize")
    assert len(polls) > 5 * evaluations  # several checks inside each tiled evaluation, not one per evaluation

    calls = []
    with pytest.raises(stylecore.Cancelled):
        stylecore.stylize(content, style, cancel=lambda: calls.append(1) or len(calls) > len(polls) // 2, **tiny_refining_preset)
    assert len(calls) == len(polls) // 2 + 1  # stopped at the first check after the request


def test_grid_and_seamless_mask_take_width_then_height_like_resize():
    from stylecore.engine import seamless

    grid = tiling.make_grid(300, 100, 64, 8, 4)
    assert (grid.width, grid.height) == (300, 100)
    assert max(t.x1 for t in grid.tiles) == 300 and max(t.y1 for t in grid.tiles) == 100
    assert seamless.content_mask(30, 10, "cpu").shape == (1, 1, 10, 30)
    assert resize.fit((300, 100), 150) == (150, 50)
