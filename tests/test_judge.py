"""The independent judge (benchmarks/judge.py): LPIPS-AlexNet content distance and AlexNet Gram style distance."""

import numpy as np
import pytest
from PIL import Image

import stylecore
from benchmarks import judge

from .conftest import bench

pytestmark = pytest.mark.real_weights  # the real weights cache (VGG16 and the judge's AlexNet), never a temp one


def photo(size=256):
    img = Image.open(bench("tubingen.jpg")).convert("RGB")
    k = size / max(img.size)
    return img.resize((round(img.width * k), round(img.height * k)), Image.LANCZOS)


def painting_like(img, name="starry_night.jpg"):
    return Image.open(bench(name)).convert("RGB").resize(img.size, Image.LANCZOS)


def test_identical_images_score_zero():
    p = photo()
    assert judge.content_distance(p, p) == 0.0
    art = bench("starry_night.jpg")
    assert judge.style_distance(art, art) == pytest.approx(0.0, abs=1e-9)


def test_a_two_pixel_shift_is_much_closer_than_a_painting():
    p = photo()
    shifted = Image.fromarray(np.roll(np.asarray(p), 2, axis=1))
    near = judge.content_distance(shifted, p)
    far = judge.content_distance(painting_like(p), p)
    assert 0.0 < near < 0.25 * far, (near, far)
    assert far > 0.5  # a painting is nothing like the photo


def test_content_is_judged_at_the_results_full_resolution():
    """Blur that a 256-px judge would not see: the 512-px score must notice it."""
    p = photo(512)
    soft = p.resize((p.width // 2, p.height // 2), Image.LANCZOS).resize(p.size, Image.BICUBIC)
    assert judge.content_distance(soft, p) > 0.1


# --- an independent re-implementation: plain numpy, no torch, straight from the LPIPS definition ----------------------


def _conv_np(x, w, b, stride, pad):
    """Cross-correlation of CxHxW with an HWIO kernel (Flax layout, as stored), zero padding."""
    kh, kw, cin, cout = w.shape
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((cout, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * oh : stride, j : j + stride * ow : stride]  # C x oh x ow
            out += np.einsum("chw,co->ohw", patch, w[i, j])
    return out + b[:, None, None]


def _maxpool_np(x):
    oh, ow = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    return np.max([x[:, i : i + 2 * oh : 2, j : j + 2 * ow : 2] for i in range(3) for j in range(3)], axis=0)


def _taps_np(rgb, tree):
    """AlexNet's five relu outputs (CxHxW), after LPIPS's scaling layer."""
    x = rgb.transpose(2, 0, 1).astype(np.float64) * 2 - 1 - np.array([-0.030, -0.088, -0.188])[:, None, None]
    x = x / np.array([0.458, 0.448, 0.450])[:, None, None]
    out = []
    for i, (stride, pad, pool) in enumerate([(4, 2, True), (1, 2, True), (1, 1, False), (1, 1, False), (1, 1, False)]):
        c = tree["AlexNet_0"][f"Conv_{i}"]
        x = np.maximum(_conv_np(x, c["kernel"].astype(np.float64), c["bias"].astype(np.float64), stride, pad), 0)
        out.append(x)
        if pool:
            x = _maxpool_np(x)
    return out


def _lpips_np(a, b, tree):
    total = 0.0
    for i, (fa, fb) in enumerate(zip(_taps_np(a, tree), _taps_np(b, tree))):
        na = fa / (np.sqrt((fa**2).sum(axis=0)) + 1e-10)
        nb = fb / (np.sqrt((fb**2).sum(axis=0)) + 1e-10)
        head = tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1).astype(np.float64)
        total += float(np.einsum("chw,c->hw", (na - nb) ** 2, head).mean())
    return total


def test_lpips_matches_an_independent_numpy_implementation():
    p = photo(96)
    art = painting_like(p)
    a, b = judge.to_rgb(p), judge.to_rgb(art)
    expected = _lpips_np(a, b, judge.load_tree())
    assert judge.content_distance(art, p) == pytest.approx(expected, rel=1e-4)
    assert 0.3 < expected < 1.5  # LPIPS of unrelated images lies in this range


def _style_frobenius_np(out, art, tree):
    """Issue 15's formula: mean over the layers of |G_out - G_art|_F / |G_art|_F, G = F F^T / (H*W)."""

    def grams(rgb):
        return [(f.reshape(len(f), -1) @ f.reshape(len(f), -1).T) / (f.shape[1] * f.shape[2]) for f in _taps_np(rgb, tree)]

    return float(np.mean([np.linalg.norm(go - ga) / np.linalg.norm(ga) for go, ga in zip(grams(out), grams(art))]))


def test_frobenius_style_distance_matches_issue_15s_formula():
    p = photo(96)  # landscape; The Scream is portrait, so "resized to the result's exact size" is not "to its long side"
    art = Image.open(bench("the_scream.jpg")).convert("RGB")
    stretched = art.resize(p.size, Image.LANCZOS)
    expected = _style_frobenius_np(judge.to_rgb(p), judge.to_rgb(stretched), judge.load_tree())
    assert judge.style_distance_frobenius(p, art) == pytest.approx(expected, rel=1e-4)
    assert judge.style_distance_frobenius(stretched, art) == pytest.approx(0.0, abs=1e-6)
    assert judge.style_distance(stretched, art) > 0.01  # the squared form keeps the painting's aspect


def test_the_aspect_kept_form_scores_the_painting_itself_zero_and_its_stretched_copy_not():
    """The painting at its own shape is its own style; squashed to a landscape photo's shape it is not (its strokes are
    half as tall), which the exact-size form cannot see."""
    p = photo(96)
    art = Image.open(bench("the_scream.jpg")).convert("RGB")
    own = art.resize((round(art.width * 96 / art.height), 96), Image.LANCZOS)
    stretched = art.resize(p.size, Image.LANCZOS)
    assert judge.style_distance_frobenius(own, art, keep_aspect=True) < 0.02
    assert judge.style_distance_frobenius(stretched, art, keep_aspect=True) > 0.05
    assert judge.style_distance_frobenius(stretched, art) < 1e-6


def test_style_distance_orders_photo_stylised_and_painting():
    p = photo(128)
    art = bench("starry_night.jpg")
    out = stylecore.stylize(p, art, preset="draft", working_size=128, device="cpu")
    assert judge.style_distance(art, art) == pytest.approx(0.0, abs=1e-9)
    assert judge.style_distance(out, art) < 0.7 * judge.style_distance(p, art)
    assert judge.style_distance_frobenius(art, art) == pytest.approx(0.0, abs=1e-9)
    assert judge.style_distance_frobenius(out, art) < 0.9 * judge.style_distance_frobenius(p, art)


def test_rejects_a_checkpoint_that_is_not_the_published_one(tmp_path):
    with pytest.raises(judge.JudgeUnavailable, match="sha256"):
        judge._verified(b"not the checkpoint", "alexnet.ckpt")
