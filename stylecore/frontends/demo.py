"""Built-in demo images, drawn by code so the package ships no third-party pictures."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def demo_content(width: int = 512, height: int = 384) -> Image.Image:
    """A small landscape: sky gradient, sun, hills, a house and a tree: shapes a viewer recognises."""
    y = np.linspace(0, 1, height)[:, None, None]
    sky = (1 - y) * np.array([0.45, 0.70, 0.95]) + y * np.array([0.90, 0.93, 0.97])
    img = Image.fromarray((np.broadcast_to(sky, (height, width, 3)) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    w, h = width, height
    d.ellipse([w * 0.72, h * 0.10, w * 0.86, h * 0.29], fill=(252, 214, 90))
    d.polygon([(0, h * 0.62), (w * 0.3, h * 0.45), (w * 0.6, h * 0.6), (w, h * 0.5), (w, h), (0, h)], fill=(92, 150, 70))
    d.polygon([(0, h * 0.8), (w * 0.5, h * 0.7), (w, h * 0.82), (w, h), (0, h)], fill=(60, 118, 52))
    d.rectangle([w * 0.40, h * 0.55, w * 0.58, h * 0.78], fill=(214, 190, 150), outline=(90, 60, 40), width=3)
    d.polygon([(w * 0.38, h * 0.56), (w * 0.49, h * 0.42), (w * 0.60, h * 0.56)], fill=(170, 60, 45))
    d.rectangle([w * 0.47, h * 0.66, w * 0.51, h * 0.78], fill=(100, 62, 40))
    d.rectangle([w * 0.42, h * 0.60, w * 0.45, h * 0.65], fill=(120, 170, 210))
    d.rectangle([w * 0.19, h * 0.52, w * 0.21, h * 0.72], fill=(90, 60, 35))
    d.ellipse([w * 0.12, h * 0.34, w * 0.28, h * 0.56], fill=(40, 100, 45))
    return img.filter(ImageFilter.GaussianBlur(0.8))


def demo_style(size: int = 384, seed: int = 7) -> Image.Image:
    """A swirling, thickly stroked 'painting': oriented strokes of a warm-cool palette."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (24, 40, 90))
    d = ImageDraw.Draw(img)
    palette = [(242, 196, 64), (226, 120, 42), (40, 80, 170), (70, 150, 200), (236, 232, 200), (20, 30, 60), (150, 40, 60)]
    cx, cy = size * 0.5, size * 0.5
    for _ in range(2600):
        x, y = rng.uniform(0, size, 2)
        angle = np.arctan2(y - cy, x - cx) + np.pi / 2 + rng.normal(0, 0.25)  # strokes swirl around the centre
        length = rng.uniform(6, 22)
        dx, dy = np.cos(angle) * length, np.sin(angle) * length
        r = np.hypot(x - cx, y - cy) / size
        color = palette[int((r * 9 + rng.integers(0, 2)) % len(palette))]
        d.line([(x - dx, y - dy), (x + dx, y + dy)], fill=color, width=int(rng.integers(2, 6)))
    return img
