import torch

from stylecore import losses


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
