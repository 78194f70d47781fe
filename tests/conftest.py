import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylecore.protocol import option_table

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "images"  # credits: CREDITS.md there


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch, request):
    """Unit tests never touch the user's weights cache; real-weight tests use the real one."""
    if "real_weights" not in request.keywords and "gimp" not in request.keywords:
        monkeypatch.setenv("STYLECORE_CACHE", str(tmp_path_factory.mktemp("cache")))
        monkeypatch.delenv("STYLECORE_WEIGHTS", raising=False)


def gradient_image(w=48, h=40, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 5.0)], axis=2)
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


@pytest.fixture
def content_png(tmp_path) -> Path:
    p = tmp_path / "content.png"
    Image.fromarray((gradient_image() * 255).astype(np.uint8)).save(p)
    return p


@pytest.fixture
def style_png(tmp_path) -> Path:
    p = tmp_path / "style.png"
    rng = np.random.default_rng(3)
    Image.fromarray((rng.random((36, 36, 3)) * 255).astype(np.uint8)).save(p)
    return p


FAST = dict(random_weights=True, preset="draft", working_size=64, device="cpu")


def offer_preset(monkeypatch, preset) -> None:
    """A test preset in presets.PRESETS and in the option table's preset choices (the contract checks names)."""
    import dataclasses

    from stylecore.protocol import presets

    monkeypatch.setitem(presets.PRESETS, preset.name, preset)
    offered = option_table.option("preset")
    wider = dataclasses.replace(offered, choices=(*offered.choices, preset.name))
    for table in ("OPTIONS", "RUN_OPTIONS"):
        monkeypatch.setattr(option_table, table, tuple(wider if o is offered else o for o in getattr(option_table, table)))
    monkeypatch.setitem(option_table._BY_NAME, "preset", wider)


@pytest.fixture
def quick(monkeypatch):
    """A preset of a few evaluations on two scales (32 and 64 px): engine behaviour, not picture quality."""
    from stylecore.protocol import presets

    offer_preset(
        monkeypatch,
        presets.Preset(
            "quick", "Quick (tests)", working_size=64, min_size=32, coarse_evals=4, fine_evals=3, decay=1.0, scale_step=2.0
        ),
    )
    return "quick"


@pytest.fixture(scope="session")
def random_engine_session():
    """One engine on seeded random weights, shared by the tests that only run it."""
    from stylecore import Stylizer

    return Stylizer(device="cpu", random_weights=True)


@pytest.fixture
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 with throwaway keys (tests/sshd.py), stopped with nothing left running."""
    from tests.sshd import Sshd, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with Sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def bench(name: str) -> Path:
    path = BENCH / name
    if not path.exists():
        pytest.fail(f"bench image {path} missing from the checkout")
    return path


@pytest.fixture(scope="session")
def real_weights_available():
    from stylecore.models import vgg_weights

    state = vgg_weights.load_cache("vgg16")
    if state is None:
        pytest.fail(
            "real VGG16 weights are not cached; run 'python3 install.py --no-plugin --no-demo' or "
            "'stylecore weights fetch' first (scripts/test.sh does this)"
        )
    return state


os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 2))
