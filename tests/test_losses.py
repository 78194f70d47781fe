import numpy as np
import torch

from stylecore.engine.optimize import losses


def test_gram_is_normalised_pairwise_dot_products_of_flattened_maps():
    torch.manual_seed(0)
    f = torch.randn(1, 4, 5, 6)
    g = losses.gram(f)[0]
    flat = f[0].reshape(4, 30)
    for i in range(4):
        for j in range(4):
            expected = sum(float(flat[i, k] * flat[j, k]) for k in range(30)) / 30
            assert abs(float(g[i, j]) - expected) < 1e-5


def test_gram_is_size_independent_for_a_repeated_texture():
    torch.manual_seed(1)
    tile = torch.randn(1, 3, 4, 4)
    big = tile.repeat(1, 1, 3, 3)
    assert torch.allclose(losses.gram(tile), losses.gram(big), atol=1e-5)


def test_gram_is_fp32_even_for_bf16_features():
    f = torch.randn(1, 3, 4, 4).to(torch.bfloat16)
    assert losses.gram(f).dtype == torch.float32


def test_losses_vanish_at_target_and_grow_away_from_it():
    torch.manual_seed(2)
    f = torch.randn(1, 8, 6, 6)
    target = losses.gram(f)
    assert float(losses.style_loss({"a": losses.gram(f)}, {"a": target}, {"a": 1.0})) < 1e-10
    assert float(losses.content_loss(f, f)) == 0.0
    assert float(losses.style_loss({"a": losses.gram(f * 1.5)}, {"a": target}, {"a": 1.0})) > 0.5
    assert float(losses.content_loss(f + 1, f)) > 0.1


def test_loss_gradients_match_finite_differences():
    torch.manual_seed(3)
    target_f = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    target = losses.gram(target_f).double()
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)

    def f(x):  # losses.gram has its own backward: check it too, and with the wrap-around TV
        return (
            losses.style_loss({"a": losses.gram(x)}, {"a": target}, {"a": 1.0})
            + losses.content_loss(x, target_f)
            + losses.tv_loss(x)
            + losses.tv_loss(x, wrap=True)
        )

    assert torch.autograd.gradcheck(f, (x,))
    # an upstream gradient that is not symmetric, which the style loss never makes
    assert torch.autograd.gradcheck(lambda x: losses.gram(x) * torch.arange(9.0).double().view(1, 3, 3), (x,))


def test_blended_style_target_is_weighted_mean():
    a = {"l": torch.ones(1, 2, 2)}
    b = {"l": torch.zeros(1, 2, 2)}
    out = losses.blend_grams([a, b], [3.0, 1.0])
    assert torch.allclose(out["l"], torch.full((1, 2, 2), 0.75))


def test_the_pixels_tap_holds_the_colors_mean_and_second_moments():
    from stylecore.engine.optimize import vgg

    torch.manual_seed(3)
    image = torch.rand(1, 3, 20, 24)
    net = vgg.VGGFeatures(vgg.random_state(), [vgg.PIXELS, "relu1_1"])
    g = losses.gram(net(image)[vgg.PIXELS])[0]
    flat = image[0].reshape(3, -1)
    assert torch.allclose(g[:3, 3], flat.mean(1), atol=1e-6)  # the mean color
    assert torch.allclose(g[:3, :3], flat @ flat.T / flat.shape[1], atol=1e-6)  # hence the covariance
    assert abs(float(g[3, 3]) - 1.0) < 1e-6


def test_the_color_term_gives_the_result_the_paintings_palette(monkeypatch):
    """A reddish photo in a bluish painting's style: with the pixels term the result's palette (mean and spread)
    moves to the painting's, which the VGG layers alone did not do for real photos (issue 9)."""
    from stylecore import stylize
    from stylecore.engine.optimize import coarse_to_fine, objective

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    photo = np.stack([0.75 + 0.1 * np.sin(x / 6), 0.35 + 0.1 * np.cos(y / 5), 0.25 + 0 * x], 2)
    painting = np.clip(np.stack([0.2 + 0 * x, 0.35 + 0.2 * np.sin(y / 4), 0.8 + 0.1 * np.cos(x / 3)], 2), 0, 1)
    photo = np.clip(photo + rng.normal(0, 0.03, photo.shape), 0, 1).astype(np.float32)
    painting = np.clip(painting + rng.normal(0, 0.03, painting.shape), 0, 1).astype(np.float32)

    # the term on its own: without the start moved to the painting's palette (coarse_to_fine.Content.toward_palette)
    monkeypatch.setattr(coarse_to_fine.Content, "toward_palette", lambda self, gram, share: self)

    def palette_gap(weights):
        monkeypatch.setattr(objective, "STYLE_LAYER_WEIGHTS", weights)
        out = stylize(photo, painting, preset="draft", random_weights=True, device="cpu").rgb
        mean_gap = np.abs(out.reshape(-1, 3).mean(0) - painting.reshape(-1, 3).mean(0)).sum()
        std_gap = np.abs(out.reshape(-1, 3).std(0) - painting.reshape(-1, 3).std(0)).sum()
        return mean_gap, std_gap

    with_term = palette_gap(objective.STYLE_LAYER_WEIGHTS)
    without = palette_gap({**objective.STYLE_LAYER_WEIGHTS, "pixels": 0.0})
    start = np.abs(photo.reshape(-1, 3).mean(0) - painting.reshape(-1, 3).mean(0)).sum()
    # random relu1_1 filters carry color too, and relu1_1 weighs most, so without the term the mean moves some way
    assert with_term[0] < 0.6 * without[0] and with_term[0] < 0.1 * start, (with_term, without, start)
    assert with_term[1] < 0.75 * without[1], (with_term, without)


def _painting_pixel_gram(painting: torch.Tensor) -> torch.Tensor:
    from stylecore.engine.optimize import vgg

    net = vgg.VGGFeatures(vgg.random_state(), [vgg.PIXELS, "relu1_1"])
    return losses.gram(net(painting)[vgg.PIXELS])[0]


def test_match_palette_gives_the_picture_the_paintings_color_mean_and_covariance():
    from stylecore.engine import color

    torch.manual_seed(5)
    photo = (torch.rand(1, 3, 40, 50) * 0.5 + torch.tensor([0.4, 0.2, 0.1])[None, :, None, None]).clamp(0, 1)
    painting = torch.rand(1, 3, 30, 30) * torch.tensor([0.2, 0.3, 0.4])[None, :, None, None] + 0.3
    before = photo.clone()
    out = color.match_palette(photo, _painting_pixel_gram(painting))
    assert torch.equal(photo, before)  # the photo itself is left alone

    def moments(x):
        flat = x[0].reshape(3, -1).double()
        return flat.mean(1), torch.cov(flat, correction=0)

    (m_out, c_out), (m_art, c_art) = moments(out), moments(painting)
    assert torch.allclose(m_out, m_art, atol=2e-3), (m_out, m_art)
    assert torch.allclose(c_out, c_art, atol=2e-3), (c_out, c_art)
    # the map moves pixels least: the picture's structure stays (its brightness order is kept)
    grey = lambda x: x[0].mean(0).flatten()  # noqa: E731
    assert float(torch.corrcoef(torch.stack([grey(out), grey(photo)]))[0, 1]) > 0.9


def test_a_black_and_white_painting_leaves_no_color_in_the_start():
    from stylecore.engine import color

    torch.manual_seed(6)
    photo = torch.rand(1, 3, 32, 32)
    ink = torch.rand(1, 1, 32, 32).expand(1, 3, 32, 32)
    out = color.match_palette(photo, _painting_pixel_gram(ink))
    assert float((out - out.mean(1, keepdim=True)).abs().max()) < 0.02  # grey: no channel departs from the others
