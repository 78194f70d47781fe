"""The classic reference: the PyTorch tutorial's neural style transfer (pytorch/tutorials,
advanced_source/neural_style_tutorial.py) in its own configuration, on stylecore's VGG16 weights.

- style from the tutorial's conv_1..conv_5 (conv1_1, conv1_2, conv2_1, conv2_2, conv3_1), content from its conv_4
  (conv2_2), all taken before their ReLU: the tutorial swaps in out-of-place ReLUs so its losses see the conv outputs;
- the painting resized to the photo's exact size (the tutorial needs both at one size; torchvision's Resize on a PIL
  image is PIL's bilinear), pixels in [0, 1], ImageNet mean/std normalisation, zero padding, max pooling, the network
  cut after its last loss layer;
- Gram G = F F^T / (a*b*c*d), MSE losses, style weight 1e6, content weight 1;
- torch.optim.LBFGS with its defaults, started from the photo, the input clamped to [0, 1] before every evaluation and
  once at the end, `while evaluations <= 300: step(closure)`: 16 steps of 20, 320 evaluations;
- the result converted back as its ToPILImage does (x * 255, truncated to uint8).

The one departure, the weights: VGG16 rather than VGG19 (their first five convs are alike in shape), so that the
reference and stylecore see the same network. fp32 throughout; TF32 is off on CUDA so a GPU run matches a CPU one.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from stylecore.engine.optimize.vgg import VGGFeatures

NAME = "pytorch-tutorial"  # part of the cache key of its results
STYLE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")
CONTENT = ("conv2_2",)
STEPS = 300
STYLE_WEIGHT = 1e6
CONTENT_WEIGHT = 1.0


def gram(f: torch.Tensor) -> torch.Tensor:
    a, b, c, d = f.shape
    x = f.view(a * b, c * d)
    return x @ x.t() / (a * b * c * d)


def to_tensor(img: Image.Image, device: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None].to(device)


def run(state, photo: Image.Image, painting: Image.Image, *, steps: int = STEPS, device: str = "cpu") -> tuple[Image.Image, int]:
    """The tutorial's result for `photo` (at its own size) in the style of `painting`, and the evaluations it took."""
    allow = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _run(state, photo, painting, steps, device)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = allow


def _run(state, photo: Image.Image, painting: Image.Image, steps: int, device: str) -> tuple[Image.Image, int]:
    net = VGGFeatures(state, STYLE + CONTENT, pooling="max", padding="zeros").to(device)
    content = to_tensor(photo, device)
    style = to_tensor(painting.convert("RGB").resize(photo.size, Image.BILINEAR), device)
    with torch.no_grad():
        style_targets = {n: gram(f) for n, f in net(style).items() if n in STYLE}
        content_targets = {n: f for n, f in net(content).items() if n in CONTENT}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x])
    evals = [0]
    while evals[0] <= steps:

        def closure():
            with torch.no_grad():
                x.clamp_(0, 1)
            opt.zero_grad()
            f = net(x)
            style_score = sum(F.mse_loss(gram(f[n]), style_targets[n]) for n in STYLE)
            content_score = sum(F.mse_loss(f[n], content_targets[n]) for n in CONTENT)
            loss = STYLE_WEIGHT * style_score + CONTENT_WEIGHT * content_score
            loss.backward()
            x.grad = x.grad.contiguous()  # oneDNN can return a channels-last gradient; L-BFGS needs a flat view
            evals[0] += 1
            return loss

        opt.step(closure)
    with torch.no_grad():
        x.clamp_(0, 1)
    pixels = (x[0].detach().permute(1, 2, 0).cpu() * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels), evals[0]
