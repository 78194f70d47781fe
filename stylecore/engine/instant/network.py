"""The instant preset: a painted picture in one pass of a feed-forward network (Ghiasi et al. 2017).

A predictor turns a 256x256 view of each painting into 100 style numbers; a transform network
paints the photo with them. Its strokes have a size in pixels, so it paints every layer at one
working size (WORKING_SIDE), shrunk or enlarged to it: the strokes keep their size relative to the
picture, and a 320-px preview shows the strokes a 24 MP layer gets. The painted picture goes back
to the layer's size with the photo's detail put back (engine.enlarge). Strength blends the
paintings' numbers with the photo's own, several paintings blend by their weights. A working size
bigger than one tile is painted tile by tile, with a halo wider than the network's reach and the
style-normalisation moments of the whole picture (measured on it shrunk to 1024 px), so memory
stays bounded and tiles meet without a seam. The runtime is onnxruntime; it is imported only when
this preset runs, with its telemetry off (instant_weights.runtime), and it writes nothing to disk.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from stylecore.engine import enlarge, resize
from stylecore.engine import seamless as seamless_mod
from stylecore.engine.instant import graph
from stylecore.engine.optimize.coarse_to_fine import Reporter, Scale
from stylecore.engine.options import StyleOptions
from stylecore.engine.tiling import Grid, Tile, make_grid
from stylecore.images import reading
from stylecore.models import instant_weights
from stylecore.models.instant_weights import InstantFiles
from stylecore.protocol import presets
from stylecore.protocol.errors import REPAIR, StylecoreError, WeightsUnavailable
from stylecore.protocol.progress import Progress

ALIGN = 4  # the transform halves the picture twice and doubles it back: sides must be multiples of 4
MIN_SIDE = 32  # smaller layers are mirrored out to this (its reflection pads need room) and cropped back
HALO = 64  # pixels of context around a tile: wider than the transform's receptive field (about 60)
_WORKING_SIZE = presets.PRESETS[presets.INSTANT].working_size
assert _WORKING_SIZE is not None, "the instant preset paints at one working size"
WORKING_SIDE: int = _WORKING_SIZE  # the long side the network paints at, whatever the layer's
TILE = 1024  # core side of a tile; a layer that fits in (TILE + 2 * HALO)^2 pixels is painted in one pass
MOMENTS_SIDE = 1024  # long side at most of the shrunk whole picture whose normalisation moments the tiles share
STYLE_SIDE = 256  # the predictor's input
NUMBERS_CACHE_SIZE = 64  # style numbers (paintings and photos) kept between runs: a preview repeats both
STRENGTH_CURVE = 0.75  # strength s fades the photo into the picture by s ** 0.75: even steps in picture distance


class InstantNetwork:
    """The two sessions and the transform's three forms, built once; `paint` runs one picture."""

    def __init__(self, files: InstantFiles, threads: int = 0, level: str = "all", int8: bool = False) -> None:
        """threads 0: onnxruntime's choice (the physical cores); int8: the published graph as it is, slower
        on CPUs and jumpy (see instant_graph.dequantized); the float32 form is what stylecore runs.

        The sessions are built from the bytes that verified; a runtime that cannot import or load them is one
        line with the repair (WeightsUnavailable), like a missing file."""
        ort, onnx = instant_weights.runtime()
        levels = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }

        def session(model: Any) -> Any:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = threads
            opts.graph_optimization_level = levels[level]
            data = model if isinstance(model, bytes) else model.SerializeToString()
            with _loading(ort):
                return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])

        self._predict = session(instant_weights.read(files.predict))
        with _loading(onnx):
            transform = graph.symbolic(onnx.load_model_from_string(instant_weights.read(files.transform)))
            if not int8:
                transform = graph.dequantized(transform)
        self._image_name = transform.graph.input[0].name
        self._numbers_name = transform.graph.input[1].name
        self._moments = graph.moment_names(transform)
        self._whole = session(transform)
        self._make_stats = lambda: session(graph.stats(transform))
        self._make_tiled = lambda: session(graph.tiled(transform))
        self._stats_session: Any = None
        self._numbers: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
        self._tiled_session: Any = None

    # --- the two networks ------------------------------------------------------------------

    def style_numbers(self, rgb: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """1x1x1x100 style numbers of a picture's central square, `scale` times zoomed in; cached across runs."""
        key = (reading.digest(rgb), rgb.shape, scale)
        numbers = self._numbers.get(key)
        if numbers is None:
            view = _square_view(rgb, scale)
            name = self._predict.get_inputs()[0].name
            numbers = np.asarray(self._predict.run(None, {name: view[None]})[0], np.float32)
            self._numbers[key] = numbers
            while len(self._numbers) > NUMBERS_CACHE_SIZE:
                self._numbers.popitem(last=False)
        self._numbers.move_to_end(key)
        return numbers

    def whole(self, rgb: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """The transform on one HxWx3 array (sides multiples of ALIGN) in one pass."""
        out = self._whole.run(None, {self._image_name: rgb[None], self._numbers_name: numbers})[0]
        return np.asarray(out[0], np.float32)

    def moments(self, rgb: np.ndarray, numbers: np.ndarray) -> dict[str, np.ndarray]:
        if self._stats_session is None:
            self._stats_session = self._make_stats()
        values = self._stats_session.run(self._moments, {self._image_name: rgb[None], self._numbers_name: numbers})
        return dict(zip(self._moments, values))

    def tile(self, rgb: np.ndarray, numbers: np.ndarray, moments: dict[str, np.ndarray]) -> np.ndarray:
        if self._tiled_session is None:
            self._tiled_session = self._make_tiled()
        feeds = {self._image_name: rgb[None], self._numbers_name: numbers, **moments}
        return np.asarray(self._tiled_session.run(None, feeds)[0][0], np.float32)

    # --- a run -----------------------------------------------------------------------------

    def stylize(
        self,
        content: reading.Picture,
        paintings: Sequence[tuple[reading.Picture, float]],
        options: StyleOptions,
        report: Reporter,
    ) -> np.ndarray:
        """HxWx3 float32 at the content's size: painted at WORKING_SIDE, colors put back with preserve_colors.

        options.working_size is not read: the working size sets the strokes' size, which the preview must show."""
        report.poll()
        width, height = content.size
        w, h = resize.fit((width, height), WORKING_SIDE)
        small = resize.bicubic_array(content.rgb, w, h, wrap=options.seamless)
        numbers = self.blended_numbers(small, paintings, options)
        report.poll()
        out = self.paint(small, numbers, options, report)
        amount = options.strength / 100.0
        if amount < 1.0:  # the photo's own numbers still repaint it: fading to the photo keeps small strengths small
            out += (small - out) * (1.0 - amount**STRENGTH_CURVE)
        # A small layer gets the painting shrunk, as the preview shrinks it; a big one, enlarged with the photo's detail.
        out = enlarge.enlarge(out, content.rgb, small, wrap=options.seamless, photo_colors=options.preserve_colors)
        if report.on_image is not None:
            report.on_image(out)
        report.finish([Scale(width, height, 1)], (width, height))
        return out

    def blended_numbers(
        self, photo: np.ndarray, paintings: Sequence[tuple[reading.Picture, float]], options: StyleOptions
    ) -> np.ndarray:
        """The paintings' numbers mixed by their weights, then moved from the photo's own by the strength.

        The photo painted with its own numbers is still a painting, not the photo: `stylize` also fades
        the photo in, so that strength 1 is close to the photo and the steps up to 100 are even."""
        total = sum(w for _, w in paintings)
        style = sum(self.style_numbers(p.rgb, options.style_scale) * (w / total) for p, w in paintings)
        amount = options.strength / 100.0
        if amount >= 1.0:
            return np.asarray(style, np.float32)
        return np.asarray(amount * style + (1.0 - amount) * self.style_numbers(photo), np.float32)

    def paint(self, rgb: np.ndarray, numbers: np.ndarray, options: StyleOptions, report: Reporter) -> np.ndarray:
        """The transform at the picture's own size, in one pass or tile by tile; HxWx3 float32."""
        height, width = rgb.shape[:2]
        work = rgb
        if options.seamless:  # the photo does not wrap: make it tileable, at sides the network's strides divide
            t = seamless_mod.make_tileable(resize.to_tensor(rgb))
            w4, h4 = _aligned(width), _aligned(height)
            work = resize.to_numpy(resize.bicubic(t, w4, h4, wrap=True))
        else:
            work = _mirror_pad(rgb, _aligned(max(width, MIN_SIDE)), _aligned(max(height, MIN_SIDE)))
        grid = _grid(work.shape[1], work.shape[0], options.seamless)
        out = np.empty_like(work)
        moments = None if len(grid.tiles) == 1 else self.moments(_shrunk(work, options.seamless), numbers)
        started = time.perf_counter()
        for index, tile in enumerate(grid.tiles):
            report.poll()
            crop, (dy, dx) = _crop(work, tile, grid)
            painted = self.whole(crop, numbers) if moments is None else self.tile(crop, numbers, moments)
            core = painted[dy : dy + tile.y1 - tile.y0, dx : dx + tile.x1 - tile.x0]
            if options.preserve_colors:
                core = enlarge.keep_photo_colors(core, work[tile.y0 : tile.y1, tile.x0 : tile.x1])
            out[tile.y0 : tile.y1, tile.x0 : tile.x1] = core
            _tile_progress(report, index, len(grid.tiles), (width, height), started)
        if options.seamless:
            return resize.bicubic_array(out, width, height, wrap=True)
        return out[:height, :width]


@contextlib.contextmanager
def _loading(runtime: Any) -> Iterator[None]:
    """What the runtime raises while it builds a session or edits the graph (the bytes verified: the runtime is at
    fault, an old or broken install) as one line with the repair."""
    try:
        yield
    except StylecoreError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise WeightsUnavailable(
            f"{runtime.__name__} {getattr(runtime, '__version__', '')} cannot load the instant network in "
            f"{instant_weights.folder()} ({type(exc).__name__}: {first}); run '{REPAIR}'"
        ) from exc


def _grid(width: int, height: int, wrap: bool) -> Grid:
    """One tile when the layer fits in a tile with its halo, else tiles of about TILE pixels."""
    extra = 2 * HALO if wrap else 0
    if (height + extra) * (width + extra) <= (TILE + 2 * HALO) ** 2:
        return Grid(width, height, (Tile(0, height, 0, width, HALO if wrap else 0),), wrap)
    return make_grid(width, height, TILE, HALO, ALIGN, wrap)


def _crop(work: np.ndarray, tile: Tile, grid: Grid) -> tuple[np.ndarray, tuple[int, int]]:
    """The tile's core plus halo (wrapped around the opposite edge in seamless mode), and the core's offset."""
    if grid.wrap:
        rows = np.arange(tile.y0 - tile.halo, tile.y1 + tile.halo) % grid.height
        cols = np.arange(tile.x0 - tile.halo, tile.x1 + tile.halo) % grid.width
        return np.ascontiguousarray(work[rows][:, cols]), (tile.halo, tile.halo)
    r0, c0 = max(0, tile.y0 - tile.halo), max(0, tile.x0 - tile.halo)
    r1, c1 = min(grid.height, tile.y1 + tile.halo), min(grid.width, tile.x1 + tile.halo)
    return np.ascontiguousarray(work[r0:r1, c0:c1]), (tile.y0 - r0, tile.x0 - c0)


def _shrunk(work: np.ndarray, wrap: bool) -> np.ndarray:
    """The whole picture at MOMENTS_SIDE at most, where its normalisation moments are measured."""
    height, width = work.shape[:2]
    w, h = resize.fit((width, height), min(MOMENTS_SIDE, max(width, height)), MIN_SIDE, ALIGN)
    small = resize.bicubic_array(work, w, h, wrap=wrap)
    if wrap:
        small = np.pad(small, ((HALO, HALO), (HALO, HALO), (0, 0)), mode="wrap")
    return np.ascontiguousarray(small)


def _tile_progress(report: Reporter, index: int, count: int, size: tuple[int, int], started: float) -> None:
    if report.progress is None:
        return
    elapsed = time.perf_counter() - started
    done = (index + 1) / count
    report.progress(
        Progress(
            "instant",
            scale=1,
            scales=1,
            width=size[0],
            height=size[1],
            step=index + 1,
            steps=count,
            done=done,
            elapsed=time.perf_counter() - report.started,
            eta=elapsed * (1 - done) / done,
        )
    )


def _square_view(rgb: np.ndarray, scale: float) -> np.ndarray:
    """The central square of side min(H, W) / scale (mirrored out when bigger), at STYLE_SIDE px, HxWx3."""
    height, width = rgb.shape[:2]
    side = max(1, round(min(height, width) / scale))
    if side > min(height, width):
        rgb = _mirror_pad_centered(rgb, max(side, width), max(side, height))
        height, width = rgb.shape[:2]
    y0, x0 = (height - side) // 2, (width - side) // 2
    square = resize.to_tensor(np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side]))
    return np.ascontiguousarray(resize.to_numpy(resize.bicubic(square, STYLE_SIDE, STYLE_SIDE)))


def _aligned(side: int) -> int:
    return -(-side // ALIGN) * ALIGN


def _mirror_pad(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mirrored out to the right and bottom (the result is cropped back)."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(np.pad(rgb, ((0, height - h), (0, width - w), (0, 0)), mode="symmetric"))


def _mirror_pad_centered(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    top, left = (height - h) // 2, (width - w) // 2
    return np.pad(rgb, ((top, height - h - top), (left, width - w - left), (0, 0)), mode="symmetric")
