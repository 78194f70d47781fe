"""The engine object: weights loaded and verified once, networks built once, many runs.

`Stylizer` is what a long-lived process (the GIMP worker, a server) keeps; `stylecore.stylize` is
a one-shot wrapper over it. The VGG weights are read on the first run that needs them (the instant
preset never does), or when `load_weights` asks; the instant network on the first instant run.
A Stylizer runs one job at a time (a lock) and changes no global state: no global RNG seeding, no
torch thread count, no Pillow limits; cuDNN's autotuner is switched on only for the duration of a
run on a CUDA device. The one exception is ORT_DISABLE_TELEMETRY=1, set before onnxruntime is
imported: the only way to keep its telemetry off and its files off the disk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from stylecore.engine import color, enlarge, resize
from stylecore.engine.device import Runtime, runtime_for, tile_side
from stylecore.engine.optimize import coarse_to_fine
from stylecore.engine.optimize.coarse_to_fine import ImageCallback
from stylecore.engine.optimize.losses import blend_grams
from stylecore.engine.optimize.objective import LAYERS, painting_grams
from stylecore.engine.optimize.vgg import VGGFeatures, random_state
from stylecore.engine.options import StyleOptions, StyleSpec, style_sources
from stylecore.engine.tiling import Features
from stylecore.images import reading
from stylecore.images.result import StyledImage
from stylecore.models import instant_weights, vgg_weights
from stylecore.protocol import option_table
from stylecore.protocol.errors import BadInput, OutOfMemory
from stylecore.protocol.presets import get_preset
from stylecore.protocol.progress import CancelCheck, ProgressCallback

if TYPE_CHECKING:
    from stylecore.engine.instant.network import InstantNetwork

ENGINE_KEYWORDS = ("device", "precision", "model", "weights", "random_weights")  # Stylizer's, for stylize()
STYLE_CACHE_SIZE = 32  # Gram sets (about 2.4 MB each for VGG16) kept between runs


class Stylizer:
    """Loads the network once; `stylize` repaints content in a style, as many times as asked.

    Thread-safe: runs are serialised by a lock, and `cancel()` from any thread stops the run in
    progress (it raises Cancelled in the thread that called `stylize`)."""

    def __init__(
        self,
        device: str = option_table.option("device").default,
        precision: str = option_table.option("precision").default,
        model: str = option_table.MODELS[0],
        weights: str | os.PathLike | None = None,
        random_weights: bool = False,
    ) -> None:
        if model not in option_table.MODELS:
            raise BadInput(f"model '{model}' unknown; use {' or '.join(option_table.MODELS)}")
        self.model = model
        self.runtime: Runtime = runtime_for(device, precision)
        self._weights, self._random_weights = weights, random_weights
        self._state: vgg_weights.StateDict | None = None  # the VGG weights, read once, on the first run that needs them
        self._networks: dict[tuple[str, bool], VGGFeatures] = {}
        self._style_cache: OrderedDict[tuple[object, ...], dict[str, torch.Tensor]] = OrderedDict()
        self.style_cache_hits = 0
        self._run_lock = threading.Lock()
        self._running: threading.Event | None = None
        self._instant: InstantNetwork | None = None  # the instant preset's sessions, made on its first run

    # --- public ---------------------------------------------------------------------------

    def load_weights(self) -> None:
        """Reads and verifies the VGG weights and builds the default network now, not on the first run that needs
        them: what a long-lived process calls before it says it is ready, and the one-shot before any work.
        Raises WeightsUnavailable (one line with the repair); once loaded, they are never read again."""
        with self._run_lock:
            self._network("max", False)

    def cancel(self) -> None:
        """Stops the run in progress, if any, at its next check (before every evaluation and every tile)."""
        running = self._running
        if running is not None:
            running.set()

    def stylize(
        self,
        content: reading.ImageLike,
        style: StyleSpec,
        *,
        style_weights: Sequence[float] | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck = None,
        on_image: ImageCallback | None = None,
        **options: Any,
    ) -> StyledImage:
        """Repaints `content` in the style of `style`; the result has exactly the content's size.

        `options` are StyleOptions' fields (option_table.RUN_OPTIONS: strength, preserve_colors, style_scale,
        preset, working_size, seed, seamless, tv_weight, pooling), checked first, before any image is read.
        The other keywords are the style blend weights and three callbacks: `progress` after every evaluation,
        `cancel` (an Event or a callable) polled before every evaluation and tile, and `on_image` with the
        current state (float32 HxWx3, colors put back, at the current scale's size) after every evaluation."""
        checked = StyleOptions.from_keywords(options)
        sources, blend = style_sources(style, style_weights)
        report = coarse_to_fine.Reporter(progress, on_image, [cancel], time.perf_counter())
        return self._run(content, list(zip(sources, blend)), checked, report)

    def _run(
        self,
        content: reading.ImageLike,
        styles: Sequence[tuple[reading.ImageLike, float]],
        options: StyleOptions,
        report: coarse_to_fine.Reporter,
    ) -> StyledImage:
        """`stylize` with its options already bundled: (image, blend weight) pairs, StyleOptions, a Reporter."""
        instant = get_preset(options.preset).feed_forward
        if instant:
            instant_weights.verify()  # missing networks or runtime: one line with the repair, before any image is read
        src = reading.load(content, "content image")
        paintings = [(reading.load(s, "style image"), w) for s, w in styles]
        if options.strength == 0:
            return StyledImage(src.rgb, src.alpha, src.bits)
        with self._run_lock, self._cancellable(report), self._device_settings():
            if instant:
                rgb = self._instant_network().stylize(src, paintings, options, report)
            else:
                rgb = self._optimize(src, paintings, options, report)
        return StyledImage(rgb, src.alpha, src.bits)

    # --- internals ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _cancellable(self, report: coarse_to_fine.Reporter) -> Iterator[None]:
        event = threading.Event()
        report.cancel = [*report.cancel, event]
        self._running = event
        try:
            yield
        finally:
            self._running = None

    def _device_settings(self) -> contextlib.AbstractContextManager:
        if self.runtime.device.type == "cuda":
            return torch.backends.cudnn.flags(enabled=True, benchmark=True)
        return contextlib.nullcontext()

    def _instant_network(self) -> InstantNetwork:
        if self._instant is None:
            from stylecore.engine.instant.network import InstantNetwork

            self._instant = InstantNetwork(instant_weights.verify())
        return self._instant

    def _vgg_state(self) -> vgg_weights.StateDict:
        if self._state is None:
            self._state = (
                random_state(self.model) if self._random_weights else vgg_weights.load_weights(self.model, self._weights)
            )
        return self._state

    def _network(self, pooling: str, seamless: bool) -> VGGFeatures:
        key = (pooling, seamless)
        if key not in self._networks:
            net = VGGFeatures(
                self._vgg_state(), LAYERS, arch=self.model, pooling=pooling, padding="circular" if seamless else "replicate"
            ).to(self.runtime.device)
            self._networks[key] = net.to(memory_format=torch.channels_last) if self.runtime.channels_last else net
        return self._networks[key]

    def _features(self, options: StyleOptions) -> Features:
        net, rt = self._network(options.pooling, options.seamless), self.runtime

        def features(image: torch.Tensor) -> dict[str, torch.Tensor]:
            if rt.channels_last:
                image = image.contiguous(memory_format=torch.channels_last)
            with rt.autocast():
                return net(image)

        return features

    def _optimize(
        self,
        src: reading.Picture,
        paintings: list[tuple[reading.Picture, float]],
        options: StyleOptions,
        report: coarse_to_fine.Reporter,
    ) -> np.ndarray:
        side = tile_side(self.runtime)
        plan = coarse_to_fine.plan(src.size, options, side)
        content_rgb = self._tensor(src.rgb)
        content = coarse_to_fine.Content.prepare(content_rgb, options)
        features = self._features(options)
        style_grams = self._style_grams(paintings, content_rgb, options, features, report)
        job = coarse_to_fine.Job(options, content, style_grams, features, plan)
        try:
            image = coarse_to_fine.run(job, report)
        except torch.OutOfMemoryError as exc:
            raise OutOfMemory(
                f"the {self.runtime.device.type} ran out of memory at {plan[-1].width}x{plan[-1].height}; "
                "lower the working size or use --device cpu"
            ) from exc
        out = _enlarged(resize.to_numpy(image), src, content_rgb, options)
        report.finish(plan, src.size)
        return out

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        return resize.to_tensor(rgb).to(self.runtime.device)

    def _style_grams(
        self,
        paintings: list[tuple[reading.Picture, float]],
        content_rgb: torch.Tensor,
        options: StyleOptions,
        features: Features,
        report: coarse_to_fine.Reporter,
    ) -> coarse_to_fine.StyleGrams:
        """long side -> blended Grams; each painting's Grams per size are cached across runs."""
        tensors: list[torch.Tensor] = []
        keys: list[tuple[object, ...]] = []
        grey = color.luminance_as_rgb(content_rgb) if options.preserve_colors else None
        for picture, _ in paintings:
            painting = self._tensor(picture.rgb)
            if grey is not None:  # the style's luminance, shifted to the content's: depends on the content
                painting = color.match_luminance(color.luminance_as_rgb(painting), grey)
            tensors.append(painting)
            keys.append(
                (
                    reading.digest(picture.rgb),
                    None if grey is None else (float(grey.mean()), float(grey.std())),
                    options.pooling,
                    options.seamless,
                )
            )
        blend = [w for _, w in paintings]
        side = tile_side(self.runtime)

        def grams_at(long_side: int) -> dict[str, torch.Tensor]:
            per_painting = []
            for painting, key in zip(tensors, keys):
                full_key = key + (long_side,)
                cached = self._style_cache.get(full_key)
                if cached is None:
                    cached = painting_grams(
                        features, painting, long_side, lambda w, h: coarse_to_fine.grid_for(w, h, side), report.poll
                    )
                    self._style_cache[full_key] = cached
                    while len(self._style_cache) > STYLE_CACHE_SIZE:
                        self._style_cache.popitem(last=False)
                else:
                    self.style_cache_hits += 1
                    self._style_cache.move_to_end(full_key)
                per_painting.append(cached)
            return blend_grams(per_painting, blend)

        return grams_at


def _enlarged(painted: np.ndarray, src: reading.Picture, content_rgb: torch.Tensor, options: StyleOptions) -> np.ndarray:
    """The result at the layer's size: a working size below it is enlarged with the photo's detail put back."""
    height, width = painted.shape[:2]
    small_photo = resize.to_numpy(resize.bicubic(content_rgb, width, height, wrap=options.seamless))
    return enlarge.enlarge(painted, src.rgb, small_photo, wrap=options.seamless, photo_colors=options.preserve_colors)


def stylize(content: reading.ImageLike, style: StyleSpec, **keywords: Any) -> StyledImage:
    """One run on a fresh engine: `Stylizer(device=, precision=, model=, weights=, random_weights=).stylize(...)`.

    `keywords` are those two signatures' keywords. A caller that runs more than once should keep a
    Stylizer: it loads the weights once and caches style statistics."""
    setup = {name: keywords.pop(name) for name in ENGINE_KEYWORDS if name in keywords}
    callbacks = ("style_weights", "progress", "cancel", "on_image")
    options = StyleOptions.from_keywords({k: v for k, v in keywords.items() if k not in callbacks})
    instant = get_preset(options.preset).feed_forward
    if instant:
        instant_weights.verify()
    sources, blend = style_sources(style, keywords.pop("style_weights", None))
    picture = reading.load(content, "content image")  # bad options and files fail before the weights load
    paintings = [(reading.load(source, "style image"), weight) for source, weight in zip(sources, blend)]
    engine = Stylizer(**setup)
    if not instant:  # the instant preset never reads them: missing or damaged VGG weights don't stop it
        engine.load_weights()
    return engine.stylize(picture, paintings, **keywords)
