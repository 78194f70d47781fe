"""The classic baseline: the PyTorch tutorial's Gatys setup (single scale, L-BFGS, 300 steps,
content init, style weight 1e6, Gram / (a*b*c*d), conv1_1..conv5_1 style, conv4_2 content,
max pooling), on the same VGG16 weights, for side-by-side ratios."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylecore.vgg import VGGFeatures

STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT = ("conv4_2",)


def _gram(f):
    a, b, c, d = f.shape
    x = f.view(a * b, c * d)
    return x @ x.t() / (a * b * c * d)


def run(state, content: torch.Tensor, style: torch.Tensor, steps: int = 300, style_weight: float = 1e6):
    net = VGGFeatures(state, STYLE + CONTENT, pooling="max", padding="zeros")
    style = F.interpolate(style, size=content.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    with torch.no_grad():
        fs, fc = net(style), net(content)
        targets = {n: _gram(fs[n]) for n in STYLE}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x])
    evals = [0]
    while evals[0] <= steps:

        def closure():
            with torch.no_grad():
                x.clamp_(0, 1)
            opt.zero_grad()
            f = net(x)
            s = sum(F.mse_loss(_gram(f[n]), targets[n]) for n in STYLE)
            c = F.mse_loss(f[CONTENT[0]], fc[CONTENT[0]])
            loss = style_weight * s + c
            loss.backward()
            x.grad = x.grad.contiguous()  # oneDNN can return a channels-last gradient; L-BFGS needs a flat view
            evals[0] += 1
            return loss

        opt.step(closure)
    with torch.no_grad():
        x.clamp_(0, 1)
    return x.detach(), evals[0]
