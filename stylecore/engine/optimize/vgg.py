"""Truncated, frozen VGG feature extractor with ImageNet normalisation built in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

# numbers are 3x3 convs with that many channels, "M" a 2x2 pooling
_CFG: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALIGN = 16  # four poolings before relu5_1: tile edges and seamless sizes fall on multiples of 16
MIN_SIDE = 16  # the smallest side four 2x2 poolings accept; smaller layers are optimised at this size
HALO = 80  # receptive-field radius of relu5_1 in VGG16 is 66 px: tiles see that far past their core
# A tap before the network: the pixels in [0, 1] with a constant channel, so that its Gram holds the colors'
# mean and second moments. Matching it gives the result the painting's palette (see objective.STYLE_LAYERS).
PIXELS = "pixels"


def layer_names(arch: str) -> list[str]:
    """Names of torchvision's `features` modules: conv1_1, relu1_1, ..., pool1, ..."""
    names, block, conv = [], 1, 1
    for v in _CFG[arch]:
        if not isinstance(v, int):
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def stride(layer: str) -> int:
    """Pixels per feature position at a layer: relu{b}_n sits after b-1 poolings."""
    return 1 if layer == PIXELS else 2 ** (int(layer[4]) - 1)


def _build_features(arch: str, pooling: str, upto: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _CFG[arch]:
        if not isinstance(v, int):
            layers.append(nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2))
        else:
            # on the meta device: no memory, and no draw from torch's global RNG for an init that is replaced
            layers += [nn.Conv2d(in_ch, v, 3, padding=1, device="meta"), nn.ReLU(inplace=False)]
            in_ch = v
    return nn.Sequential(*layers[: upto + 1])


def random_state(arch: str = "vgg16", seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random weights, for tests only: never used unless asked for by name."""
    gen = torch.Generator().manual_seed(seed)
    state, in_ch, index = {}, 3, 0
    for v in _CFG[arch]:
        if not isinstance(v, int):
            index += 1
            continue
        fan_in = in_ch * 9
        state[f"features.{index}.weight"] = (torch.randn(v, in_ch, 3, 3, generator=gen) * (2.0 / fan_in) ** 0.5).numpy()
        state[f"features.{index}.bias"] = (torch.randn(v, generator=gen) * 0.01).numpy()
        in_ch, index = v, index + 2
    return state


class VGGFeatures(nn.Module):
    """Returns the activations of the named layers for an RGB batch in [0, 1].

    The network stops after the deepest requested layer, and its parameters never require
    gradients, so backward passes compute only the input gradient.
    """

    def __init__(
        self,
        state: Mapping[str, np.ndarray],
        layers: Iterable[str],
        arch: str = "vgg16",
        pooling: str = "max",
        padding: str = "replicate",
    ) -> None:
        super().__init__()
        names = layer_names(arch)
        layers = set(layers)
        self.pixels = PIXELS in layers
        self.layers = sorted(layers - {PIXELS}, key=names.index)
        upto = max(names.index(n) for n in self.layers)
        self.features = _build_features(arch, pooling, upto)
        own = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items() if int(k.split(".")[1]) <= upto}
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in own.items()}, assign=True)
        if padding == "circular":
            # seamless mode: every conv sees the opposite edge, so the picture tiles without a seam
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    module.padding_mode = "circular"
        elif padding == "replicate":
            # Zero padding darkens the border of every layer's input; replicating the
            # image's edge at the first conv removes the dark frame optimization otherwise paints.
            first = self.features[0]
            assert isinstance(first, nn.Conv2d)
            first.padding_mode = "replicate"
        self._name_at = {names.index(n): n for n in self.layers}
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        if self.pixels:
            out[PIXELS] = torch.cat([image, torch.ones_like(image[:, :1])], 1).float()
        for i, module in enumerate(self.features):  # already truncated after the deepest layer
            x = module(x)
            if i in self._name_at:
                out[self._name_at[i]] = x
        return out


def flops_per_pass(arch: str, height: int, width: int, upto_layer: str) -> float:
    """Multiply-adds x2 of the conv layers of one forward pass up to the given layer."""
    names = layer_names(arch)
    stop = names.index(upto_layer)
    total, in_ch, h, w, i = 0.0, 3, height, width, 0
    for v in _CFG[arch]:
        if i > stop:
            break
        if not isinstance(v, int):
            h, w, i = h // 2, w // 2, i + 1
            continue
        total += 2.0 * in_ch * v * 9 * h * w
        in_ch, i = v, i + 2
    return total
