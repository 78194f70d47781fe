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


@dataclass(frozen=True)
class Tile:
    y0: int  # core rows [y0, y1) and columns [x0, x1), in image pixels
    y1: int
    x0: int
    x1: int
    halo: int

    def crop_rows(self, height: int, wrap: bool) -> torch.Tensor:
        return _span(self.y0, self.y1, self.halo, height, wrap)

    def crop_cols(self, width: int, wrap: bool) -> torch.Tensor:
        return _span(self.x0, self.x1, self.halo, width, wrap)


def _span(a: int, b: int, halo: int, size: int, wrap: bool) -> torch.Tensor:
    if wrap:
        return torch.arange(a - halo, b + halo) % size
    return torch.arange(max(0, a - halo), min(size, b + halo))


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


def _crop(image: torch.Tensor, tile: Tile, grid: Grid) -> tuple[torch.Tensor, int, int]:
    """The tile's core plus halo, and the core's offset inside the crop."""
    rows = tile.crop_rows(grid.height, grid.wrap)
    cols = tile.crop_cols(grid.width, grid.wrap)
    top = tile.y0 - (tile.y0 - tile.halo if grid.wrap else max(0, tile.y0 - tile.halo))
    left = tile.x0 - (tile.x0 - tile.halo if grid.wrap else max(0, tile.x0 - tile.halo))
    crop = image[:, :, rows[0]:rows[0] + len(rows)] if not grid.wrap else image.index_select(2, rows.to(image.device))
    crop = crop[:, :, :, cols[0]:cols[0] + len(cols)] if not grid.wrap else crop.index_select(3, cols.to(image.device))
    return crop, top, left


def _core(feature: torch.Tensor, tile: Tile, top: int, left: int, stride: int) -> torch.Tensor:
    """The part of a crop's feature map that belongs to the tile's core (exact, away from the halo's edge)."""
    return feature[:, :, top // stride:(top + tile.y1 - tile.y0) // stride,
                   left // stride:(left + tile.x1 - tile.x0) // stride]


def _scatter_add(total: torch.Tensor, grad: torch.Tensor, tile: Tile, grid: Grid) -> None:
    rows = tile.crop_rows(grid.height, grid.wrap).to(total.device)
    cols = tile.crop_cols(grid.width, grid.wrap).to(total.device)
    if grid.wrap:
        flat = (rows[:, None] * grid.width + cols[None, :]).reshape(-1)  # wrapped halos may repeat pixels
        b, c = grad.shape[:2]
        total.view(b, c, -1).index_add_(2, flat, grad.reshape(b, c, -1))
    else:
        total[:, :, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] += grad


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
            core = _core(feats[name], tile, top, left, feature_stride(name)).float()
            flat = core.reshape(core.shape[1], -1)
            sums[name] = sums.get(name, 0) + flat @ flat.T
            count[name] = count.get(name, 0) + flat.shape[1]
    return {n: (sums[n] / max(1, count[n]))[None] for n in layers}


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
                        content_weight: float, content_masks: list[torch.Tensor] | None = None,
                        poll=None) -> tuple[float, torch.Tensor, dict[str, float]]:
    """The loss of `image` and its exact gradient, with one tile's activations in memory at a time."""
    grams = tiled_grams(features_of, image, list(style_targets), grid, poll)
    style = 0.0
    coef = {}  # d(style loss)/d(Gram), fixed for this evaluation
    for name, target in style_targets.items():
        norm = target.pow(2).sum().clamp_min(1e-12)
        diff = grams[name] - target
        style += float(layer_weights[name] * diff.pow(2).sum() / norm)
        coef[name] = (style_weight * layer_weights[name] * 2.0 / norm) * diff[0]
    positions = {}
    for name in style_targets:
        s = feature_stride(name)
        positions[name] = (grid.height // s) * (grid.width // s)
    if content_targets and content_masks is not None:
        content_targets = [t * m for t, m in zip(content_targets, content_masks)]
    content_norm = sum(float(t.pow(2).sum()) for t in content_targets) if content_targets else 1.0
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
            core = _core(feats[name], tile, top, left, feature_stride(name)).float()
            flat = core.reshape(core.shape[1], -1)
            # <coef, F F^T / N> has gradient coef-weighted exactly as the global loss has on this tile
            surrogate = surrogate + (coef[name] * (flat @ flat.T)).sum() / positions[name]
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
