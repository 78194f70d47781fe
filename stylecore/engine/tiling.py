"""Big images, tile by tile: the grid, the crops and the passes over them.

The style loss compares *global* Gram matrices, so tiles optimised on their own would each
drift to their own version of the style and meet at visible seams. Instead, every evaluation
makes two passes over the tiles (see objective.py): the first sums each tile's share of the
global Grams (no graph kept), the second back-propagates, tile by tile, the global loss with
only that tile's share carrying a gradient. With a halo wider than the network's receptive
field the summed tile gradients equal the whole image's gradient, so there is no seam to hide,
and memory is bounded by one tile's activations instead of the whole picture's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from stylecore.engine.optimize import losses
from stylecore.engine.optimize.vgg import stride

Features = Callable[[torch.Tensor], dict[str, torch.Tensor]]  # image batch -> activations by layer name
Poll = Callable[[], None]  # raises Cancelled when the run should stop


@dataclass(frozen=True)
class Tile:
    y0: int  # core rows [y0, y1) and columns [x0, x1), in image pixels
    y1: int
    x0: int
    x1: int
    halo: int


@dataclass(frozen=True)
class Grid:
    width: int  # of the image, in pixels: (width, height), as at every boundary in stylecore
    height: int
    tiles: tuple[Tile, ...]
    wrap: bool  # seamless mode: halos wrap around the opposite edge


def make_grid(width: int, height: int, tile: int, halo: int, align: int, wrap: bool = False) -> Grid:
    """Core tiles of about `tile` pixels whose edges fall on the pooling grid (multiples of `align`)."""
    tile = max(align, tile - tile % align)
    halo = -(-halo // align) * align
    rows = _cuts(height, tile, align)
    cols = _cuts(width, tile, align)
    tiles = tuple(Tile(y0, y1, x0, x1, halo) for y0, y1 in rows for x0, x1 in cols)
    return Grid(width, height, tiles, wrap)


def _cuts(size: int, tile: int, align: int) -> list[tuple[int, int]]:
    count = max(1, -(-size // tile))
    step = -(-size // count)
    step += -step % align
    edges = list(range(0, size, step)) + [size]
    return list(zip(edges[:-1], edges[1:]))


def _span(a: int, b: int, halo: int, size: int, wrap: bool) -> tuple[int, int]:
    """Start and stop of a core [a, b) plus halo; wrapped spans may run past either edge."""
    return (a - halo, b + halo) if wrap else (max(0, a - halo), min(size, b + halo))


def _index(start: int, stop: int, size: int, device: torch.device) -> torch.Tensor:
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


@dataclass(frozen=True)
class TileView:
    """One tile's crop (core plus halo) and where its core sits inside the crop."""

    index: int
    tile: Tile
    crop: torch.Tensor
    top: int
    left: int

    def core(self, feature: torch.Tensor, layer: str) -> torch.Tensor:
        """The part of the crop's feature map that belongs to the tile's core."""
        s, t = stride(layer), self.tile
        return feature[:, :, self.top // s : (self.top + t.y1 - t.y0) // s, self.left // s : (self.left + t.x1 - t.x0) // s]


def views(image: torch.Tensor, grid: Grid, poll: Poll | None = None) -> Iterator[TileView]:
    """The tiles in order; `poll()` runs before each (one evaluation of a huge layer takes minutes)."""
    for index, tile in enumerate(grid.tiles):
        if poll:
            poll()
        crop, top, left = _crop(image, tile, grid)
        yield TileView(index, tile, crop, top, left)


@torch.no_grad()
def tiled_grams(
    features: Features, image: torch.Tensor, layers: Iterable[str], grid: Grid, poll: Poll | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Gram matrices of the whole image summed over tiles, and the positions each layer counted."""
    layers = list(layers)
    sums: dict[str, torch.Tensor] = {}
    count: dict[str, int] = dict.fromkeys(layers, 0)
    for view in views(image, grid, poll):
        feats = features(view.crop)
        for name in layers:
            core = view.core(feats[name], name)
            positions = core.shape[-2] * core.shape[-1]
            if positions == 0:  # a sliver of a tile at the edge may hold no position of a deep layer
                continue
            part = losses.gram(core) * positions
            sums[name] = sums[name] + part if name in sums else part
            count[name] += positions
    return {n: sums[n] / max(1, count[n]) for n in layers}, count


@torch.no_grad()
def tiled_features(
    features: Features, image: torch.Tensor, layer: str, grid: Grid, poll: Poll | None = None
) -> list[torch.Tensor]:
    """Each tile's core activations at one layer: the content targets of a tiled scale."""
    return [view.core(features(view.crop)[layer], layer).float() for view in views(image, grid, poll)]


def add_crop_gradient(total: torch.Tensor, grad: torch.Tensor, view: TileView, grid: Grid) -> None:
    """Adds a crop's input gradient into the whole image's, where the crop came from."""
    _scatter_add(total, grad, view.tile, grid)
