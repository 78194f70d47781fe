import threading

import numpy as np
import pytest
import torch
from PIL import Image

import stylecore
from stylecore import Cancelled, Progress
from stylecore.engine.optimize.vgg import VGGFeatures, random_state
from stylecore.protocol.errors import BadInput

from .conftest import FAST, gradient_image


def test_output_has_exactly_the_input_size_for_odd_sizes():
    for w, h in [(67, 41), (33, 90)]:
        out = stylecore.stylize(gradient_image(w, h), gradient_image(30, 30, seed=1), **FAST)
        assert out.size == (w, h) and out.rgb.shape == (h, w, 3) and out.rgb.dtype == np.float32 and out.alpha is None


def test_output_is_larger_than_working_size_when_the_input_is():
    out = stylecore.stylize(gradient_image(150, 90), gradient_image(30, 30, seed=1), **FAST)
    assert out.size == (150, 90)


def test_alpha_passes_through_unchanged():
    rgba = np.dstack([(gradient_image(50, 40) * 255).astype(np.uint8), np.tile(np.arange(50, dtype=np.uint8) * 5, (40, 1))])
    out = stylecore.stylize(rgba, gradient_image(30, 30, seed=1), **FAST)
    assert out.alpha is not None and out.to_pil().mode == "RGBA"
    assert np.array_equal(np.asarray(out.to_pil())[..., 3], rgba[..., 3])


def test_style_changes_the_image_and_strength_zero_returns_the_content():
    content = (gradient_image(48, 40) * 255).astype(np.uint8)
    styled = np.asarray(stylecore.stylize(content, gradient_image(30, 30, seed=1), **FAST).to_pil()).astype(int)
    same = np.asarray(stylecore.stylize(content, gradient_image(30, 30, seed=1), strength=0, **FAST).to_pil()).astype(int)
    assert np.array_equal(same, content)
    assert np.abs(styled - content).mean() > 2


def test_same_seed_same_output_and_other_seed_differs():
    a = stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), seed=5, **FAST)
    b = stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), seed=5, **FAST)
    c = stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), seed=6, **FAST)
    assert np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)


def test_progress_records_are_typed_and_complete():
    records = []
    stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), progress=records.append, **FAST)
    assert all(isinstance(r, Progress) for r in records)
    opt = [r for r in records if r.stage == "optimize"]
    assert opt and {"style", "content", "total"} <= set(opt[-1].losses)
    assert [r.done for r in records] == sorted(r.done for r in records)
    assert records[-1].stage == "finish" and records[-1].done == 1.0
    assert all(r.elapsed >= 0 for r in records)


@pytest.mark.parametrize("how", ["event", "callable", "raise"])
def test_cancellation_stops_within_an_evaluation(how):
    event = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p)
        if how == "raise":
            raise Cancelled()
        event.set()

    cancel = event if how == "event" else (lambda: event.is_set()) if how == "callable" else None
    with pytest.raises(Cancelled):
        stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), progress=on_progress, cancel=cancel, **FAST)
    assert len(seen) == 1


def test_several_styles_blend_and_weights_matter():
    s1, s2 = gradient_image(30, 30, seed=1), np.zeros((30, 30, 3), np.float32) + 0.9
    only1 = stylecore.stylize(gradient_image(), [(s1, 1.0), (s2, 0.0)], **FAST)
    alone = stylecore.stylize(gradient_image(), s1, **FAST)
    mixed = stylecore.stylize(gradient_image(), [s1, s2], style_weights=[1, 1], **FAST)
    assert np.array_equal(only1.rgb, alone.rgb)
    assert not np.array_equal(only1.rgb, mixed.rgb)


def test_preserve_colors_keeps_the_content_chroma():
    content = gradient_image(48, 40)
    out = stylecore.stylize(content, gradient_image(30, 30, seed=1), preserve_colors=True, **FAST).rgb
    from stylecore.engine.color import to_yiq

    def chroma(a):
        return to_yiq(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None])[0, 1:]

    assert float((chroma(out) - chroma(content)).abs().mean()) < 0.03


def test_a_black_and_white_painting_takes_the_color_out_from_the_first_step_and_strength_sets_how_far():
    """The palette moves with the brushwork: with an ink drawing's style the run starts from the photo drained toward
    grey (scales.Content.toward_palette) instead of fighting its colors all run long, a lower strength keeps more of
    them, and the finished picture is nearly grey."""
    from stylecore.engine.color import to_yiq

    content = gradient_image(48, 40)
    ink = np.repeat(gradient_image(30, 30, seed=2).mean(2, keepdims=True), 3, axis=2)

    def chroma(a):
        return float(to_yiq(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None])[0, 1:].abs().mean())

    def run(strength):
        frames = []
        out = stylecore.stylize(content, ink, strength=strength, on_image=frames.append, **FAST).rgb
        return chroma(frames[0]), chroma(out)

    (first_strong, strong), (first_weak, weak) = run(70), run(30)
    assert first_strong < 0.45 * chroma(content), (first_strong, chroma(content))  # 70 % of the way: about 0.3x
    assert first_strong < first_weak < chroma(content), (first_strong, first_weak, chroma(content))
    assert strong < 0.25 * chroma(content) and strong < weak, (strong, weak, chroma(content))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(strength=150), "strength"),
        (dict(strength=-1), "strength"),
        (dict(style_scale=0), "style_scale"),
        (dict(preset="ultra"), "preset"),
        (dict(working_size=10), "working_size"),
        (dict(strenght=10), "unknown option"),
        (dict(model="resnet"), "model"),
        (dict(style_weights=[1, 2]), "style weights"),
        (dict(device="tpu9"), "device"),
    ],
)
def test_bad_options_raise_bad_input(kwargs, match):
    opts = {**FAST, **kwargs}
    with pytest.raises(BadInput, match=match):
        stylecore.stylize(gradient_image(), gradient_image(30, 30, seed=1), **opts)


def test_network_is_frozen_truncated_and_computes_no_weight_gradients():
    net = VGGFeatures(random_state(), ["relu1_1", "relu3_1"])
    assert len(net.features) == 12  # conv1_1 .. relu3_1
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    sum(v.sum() for v in net(x).values()).backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_replicate_padding_at_the_first_conv_only():
    """A flat image gives flat first-layer features (no dark frame for the optimizer to paint); deeper
    convs keep zero padding, as the network was trained with."""
    flat = torch.full((1, 3, 24, 24), 0.6)

    def spread(net, layer):
        f = net(flat)[layer]
        return float((f - f[..., 12:13, 12:13]).abs().max())

    replicate = VGGFeatures(random_state(), ["relu1_1", "relu1_2"])
    zeros = VGGFeatures(random_state(), ["relu1_1"], padding="zeros")
    assert spread(replicate, "relu1_1") < 1e-5 < spread(zeros, "relu1_1")
    assert spread(replicate, "relu1_2") > 1e-3


def test_pil_and_path_inputs_agree(content_png, style_png):
    a = stylecore.stylize(content_png, style_png, **FAST)
    b = stylecore.stylize(Image.open(content_png), Image.open(style_png), **FAST)
    assert np.array_equal(a.rgb, b.rgb)
