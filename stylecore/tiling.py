"""Exact loss gradients of a large image, computed tile by tile.

The style loss compares *global* Gram matrices, so tiles optimised on their own would each
drift to their own version of the style and meet at visible seams. Instead, every evaluation
makes two passes over the tiles: the first sums each tile's share of the global Grams (no
graph kept), the second back-propagates, tile by tile, the gradient that the global loss puts
on that tile's features. With a halo wider than the network's receptive field the summed
tile gradients equal the whole image's gradient, so there is no seam to hide, and memory is
bounded by one tile's activations instead of the whole picture's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from . import losses


@dataclass(frozen=True)
class Tile:
    y0: int  # core rows [y0, y1) and columns [x0, x1), in image pixels
    y1: int
    x0: int
    x1: int
    halo: int


@dataclass(frozen=True)
class Grid:
    height: int
    width: int
    tiles: tuple[Tile, ...]
    wrap: bool  # seamless mode: halos wrap around the opposite edge


def make_grid(height: int, width: int, tile: int, halo: int, align: int, wrap: bool = False) -> Grid:
    """Core tiles of about `tile` pixels whose edges fall on the pooling grid (multiples of `align`)."""
    tile = max(align, tile - tile % align)
    halo = -(-halo // align) * align
    rows = _cuts(height, tile, align)
    cols = _cuts(width, tile, align)
    tiles = tuple(Tile(y0, y1, x0, x1, halo) for y0, y1 in rows for x0, x1 in cols)
    return Grid(height, width, tiles, wrap)


def _cuts(size: int, tile: int, align: int) -> list[tuple[int, int]]:
    count = max(1, -(-size // tile))
    step = -(-size // count)
    step += -step % align
    edges = list(range(0, size, step)) + [size]
    return list(zip(edges[:-1], edges[1:]))


def _span(a: int, b: int, halo: int, size: int, wrap: bool) -> tuple[int, int]:
    """Start and stop of a core [a, b) plus halo; wrapped spans may run past either edge."""
    return (a - halo, b + halo) if wrap else (max(0, a - halo), min(size, b + halo))


def _index(start: int, stop: int, size: int, device) -> torch.Tensor:
    return torch.arange(start, stop, device=device) % size


def _crop(image: torch.Tensor, tile: Tile, grid: Grid) -> tuple[torch.Tensor, int, int]:
    """The tile's core plus halo, and the core's offset inside the crop."""
    r0, r1 = _span(tile.y0, tile.y1, tile.halo, grid.height, grid.wrap)
    c0, c1 = _span(tile.x0, tile.x1, tile.halo, grid.width, grid.wrap)
    if grid.wrap:
        crop = image.index_select(2, _index(r0, r1, grid.height, image.device))
        crop = crop.index_select(3, _index(c0, c1, grid.width, image.device))
    else:
        crop = image[:, :, r0:r1, c0:c1]
    return crop, tile.y0 - r0, tile.x0 - c0


def _core(feature: torch.Tensor, tile: Tile, top: int, left: int, stride: int) -> torch.Tensor:
    """The part of a crop's feature map that belongs to the tile's core (exact, away from the halo's edge)."""
    return feature[:, :, top // stride:(top + tile.y1 - tile.y0) // stride,
                   left // stride:(left + tile.x1 - tile.x0) // stride]


def _scatter_add(total: torch.Tensor, grad: torch.Tensor, tile: Tile, grid: Grid) -> None:
    r0, r1 = _span(tile.y0, tile.y1, tile.halo, grid.height, grid.wrap)
    c0, c1 = _span(tile.x0, tile.x1, tile.halo, grid.width, grid.wrap)
    if grid.wrap:  # wrapped halos may repeat pixels: index_add accumulates them
        rows, cols = _index(r0, r1, grid.height, total.device), _index(c0, c1, grid.width, total.device)
        flat = (rows[:, None] * grid.width + cols[None, :]).reshape(-1)
        b, c = grad.shape[:2]
        total.view(b, c, -1).index_add_(2, flat, grad.reshape(b, c, -1))
    else:
        total[:, :, r0:r1, c0:c1] += grad


def feature_stride(layer: str) -> int:
    """relu{b}_n sits after b-1 poolings."""
    return 2 ** (int(layer[4]) - 1)


@torch.no_grad()
def tiled_grams(features_of, image: torch.Tensor, layers, grid: Grid, poll=None) -> dict[str, torch.Tensor]:
    """Gram matrices of the whole image (normalised by its positions), summed over tiles.

    `poll()` runs before every tile and may raise (cancellation stays responsive in long passes)."""
    sums: dict[str, torch.Tensor] = {}
    count: dict[str, int] = {}
    for tile in grid.tiles:
        if poll:
            poll()
        crop, top, left = _crop(image, tile, grid)
        feats = features_of(crop)
        for name in layers:
            core = _core(feats[name], tile, top, left, feature_stride(name))
            positions = core.shape[-2] * core.shape[-1]
            if positions == 0:  # a sliver of a tile at the edge may hold no position of a deep layer
                continue
            sums[name] = sums.get(name, 0) + losses.gram(core) * positions
            count[name] = count.get(name, 0) + positions
    return {n: sums[n] / max(1, count[n]) for n in layers}


@torch.no_grad()
def tiled_features(features_of, image: torch.Tensor, layer: str, grid: Grid, poll=None) -> list[torch.Tensor]:
    """Each tile's core activations at one layer: the content targets of a tiled scale."""
    out = []
    for tile in grid.tiles:
        if poll:
            poll()
        crop, top, left = _crop(image, tile, grid)
        out.append(_core(features_of(crop)[layer], tile, top, left, feature_stride(layer)).float())
    return out


def tiled_loss_and_grad(features_of, image: torch.Tensor, grid: Grid, style_targets: Mapping[str, torch.Tensor],
                        layer_weights: Mapping[str, float], style_weight: float,
                        content_layer: str | None, content_targets: list[torch.Tensor] | None,
                        content_weight: float, content_norm: float | None = None,
                        content_masks: list[torch.Tensor] | None = None,
                        poll=None) -> tuple[float, torch.Tensor, dict[str, float]]:
    """The loss of `image` and its exact gradient, with one tile's activations in memory at a time.

    Content is the relative error against per-tile targets, whose summed energy `content_norm`
    the caller may pass once per scale; with `content_masks`, core activations are weighted by
    them (the targets come already weighted)."""
    if content_targets and content_norm is None:
        content_norm = sum(float(t.pow(2).sum()) for t in content_targets)
    grams = tiled_grams(features_of, image, list(style_targets), grid, poll)
    style = 0.0
    coef = {}  # d(style loss)/d(Gram), fixed for this evaluation
    for name, target in style_targets.items():
        norm = target.pow(2).sum().clamp_min(1e-12)
        diff = grams[name] - target
        style += float(layer_weights[name] * diff.pow(2).sum() / norm)
        coef[name] = (style_weight * layer_weights[name] * 2.0 / norm) * diff
    positions = {n: (grid.height // feature_stride(n)) * (grid.width // feature_stride(n)) for n in style_targets}
    content = 0.0
    grad = torch.zeros_like(image)
    for index, tile in enumerate(grid.tiles):
        if poll:
            poll()
        crop, top, left = _crop(image, tile, grid)
        crop = crop.detach().requires_grad_(True)
        feats = features_of(crop)
        surrogate = 0.0
        for name in style_targets:
            core = _core(feats[name], tile, top, left, feature_stride(name))
            share = core.shape[-2] * core.shape[-1] / positions[name]
            if share == 0:
                continue
            # <coef, this tile's share of the Gram> has the gradient the global loss puts on this tile
            surrogate = surrogate + (coef[name] * losses.gram(core)).sum() * share
        if content_layer is not None and content_targets:
            core = _core(feats[content_layer], tile, top, left, feature_stride(content_layer)).float()
            if content_masks is not None:
                core = core * content_masks[index]
            sq = (core - content_targets[index]).pow(2).sum() / content_norm
            content += float(sq.detach())
            surrogate = surrogate + content_weight * sq
        surrogate.backward()
        _scatter_add(grad, crop.grad, tile, grid)
    total = style_weight * style + content_weight * content
    return total, grad, {"style": style, "content": content, "total": total}
