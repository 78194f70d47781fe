"""What the plug-in asks the worker for: the final run's and the preview's requests, and the texts shown about them.

Pure logic, no GIMP. The preview first shows the instant picture, then at PREVIEW_SIDE the chosen preset's own picture
where it is as quick as a preview (QUICK), else the balanced preset's, so it looks like what OK will paint; brush size
is relative to the picture, so its strokes look as they will at full size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from i18n import _

from stylecore.protocol import messages, presets
from stylecore.protocol.progress import Progress

PREVIEW_SIDE = 320
PREVIEW_OPTIONS = {"preset": "balanced", "working_size": PREVIEW_SIDE}
PREVIEW_IMAGES_EVERY = 2  # an intermediate image every N evaluations (the first evaluation's too)
INSTANT = presets.INSTANT  # the preset whose picture the preview shows first
QUICK = (INSTANT, "draft")  # presets the preview paints as OK will: draft is less painted than balanced at any size
# Quiet time after the last change before a new preview starts: short, as its first picture is the instant one.
DEBOUNCE_MS = 150


def preview_preset(chosen: object) -> object:
    """The preset the preview paints with for the chosen one: itself when QUICK (Instant: the instant picture alone),
    else balanced. A change of Quality repaints the preview only when this changes."""
    return chosen if chosen in QUICK else PREVIEW_OPTIONS["preset"]


def preview_options(options: Mapping[str, object]) -> dict[str, object]:
    """The preview's run options."""
    return {**options, **PREVIEW_OPTIONS, "preset": preview_preset(options.get("preset"))}


def build(
    request_id: str,
    content: messages.Source,
    styles: Sequence[tuple[messages.Source, float]],
    options: Mapping[str, object],
    output: str | None,
    preview_dir: str | None = None,
    preview: bool = False,
) -> tuple[dict, bytes | None]:
    """The stylize request and its payload for the final run, or for the preview (its schedule and pictures) with
    preview (or a preview_dir for its files). output None: everything in-band, for a remote worker."""
    if not (preview or preview_dir is not None):
        return messages.build_request(request_id, content, styles, options, output)  # type: ignore[arg-type]
    images = {"every": PREVIEW_IMAGES_EVERY, **({"dir": preview_dir} if output is not None else {})}
    preview_run = preview_options(options)
    first = "" if preview_run["preset"] == INSTANT else INSTANT
    return messages.build_request(request_id, content, styles, preview_run, output, images, first=first)  # type: ignore[arg-type]


def device_text(ready: Mapping[str, object], where: str) -> str:
    """What the dialog shows of a ready worker: where it runs, its device and its GPU's name."""
    gpu = f" ({ready['gpu']})" if ready.get("gpu") else ""
    return _("Running on {where}: {device}{gpu}, stylecore {version}").format(
        where=where, device=ready.get("device", "?"), gpu=gpu, version=ready.get("version", "?")
    )


def style_weights(blend: float) -> tuple[float, float]:
    """Weights of the first and second style for a second-style share in percent."""
    return (100.0 - blend) / 100.0, blend / 100.0


def progress_text(progress: Progress) -> str:
    """GIMP's progress bar text for the final run."""
    eta = progress.eta
    eta_text = _(", about {m}:{s:02d} left").format(m=int(eta // 60), s=int(eta % 60)) if eta is not None else ""
    return (
        _("Style transfer: scale {scale}/{scales}, step {step}/{steps}").format(
            scale=progress.scale, scales=progress.scales, step=progress.step, steps=progress.steps
        )
        + eta_text
    )
