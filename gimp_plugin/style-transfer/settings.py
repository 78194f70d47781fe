"""The plug-in's arguments and the worker request they make: pure logic, no GIMP, tested without it.

The arguments that are run options come from stylecore's option table (option_table.OPTIONS: name, range,
default, help, choices), so the dialog cannot drift from the engine; this module adds only what is the
plug-in's own: the labels with their mnemonics, the style inputs, and the argument order scripts rely on.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from stylecore.protocol import messages, option_table, presets, ssh
from stylecore.protocol.client import Target

HERE = os.path.dirname(os.path.abspath(__file__))
_ = gettext.translation("stylecore-gimp", os.path.join(HERE, "locale"), fallback=True).gettext


def N_(message: str) -> str:
    """Marks a string for translation where GIMP translates it later (menu label, documentation)."""
    return message




@dataclass(frozen=True)
class Argument:
    """One procedure argument: kind is "double", "int", "boolean", "choice", "file", "layer" or "string"."""

    name: str
    kind: str
    label: str
    help: str
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[tuple[str, str], ...] = ()
    option: str | None = None  # the run option it sets (option_table.OPTIONS), if any


# The plug-in's own labels (with mnemonics) for the arguments that are run options, keyed by argument name.
OPTION_LABELS = {
    "strength": N_("S_trength"),
    "preserve-colors": N_("Preserve _colors"),
    "quality": N_("_Quality"),
    "working-size": N_("_Working size (0 = automatic)"),
    "style-scale": N_("Brus_h scale"),
    "seed": N_("S_eed"),
    "device": N_("_Device"),
    "seamless": N_("Seamless t_ile"),
}


def option_argument(gimp_name: str) -> Argument:
    """The argument of the run option whose plug-in name is gimp_name, derived from the option table."""
    opt = next(o for o in option_table.OPTIONS if o.gimp == gimp_name)
    label = OPTION_LABELS[gimp_name]
    if opt.kind is bool:
        return Argument(gimp_name, "boolean", label, opt.help, opt.default, option=opt.name)
    if opt.name in option_table.LABELLED_CHOICES:
        return Argument(gimp_name, "choice", label, opt.help, opt.default, choices=option_table.LABELLED_CHOICES[opt.name], option=opt.name)
    kind = "int" if opt.kind is int else "double"
    assert opt.minimum is not None and opt.maximum is not None, opt
    # A nullable number is offered from 0, which stands for null ("the preset's").
    minimum = 0 if opt.nullable else opt.minimum
    default = 0 if opt.default is None else opt.default
    return Argument(gimp_name, kind, label, opt.help, default, minimum, opt.maximum, option=opt.name)


def arguments() -> list[Argument]:
    """Every argument in the procedure's order: new ones go at the end only, so positional scripts keep working."""
    style = Argument("style-file", "file", N_("_Style image"), N_("The painting whose style to apply"))
    style2 = Argument("style-file-2", "file", N_("Second st_yle (optional)"), N_("A second painting to blend in"))
    blend = Argument("style-blend", "double", N_("Second style _blend"), N_("Share of the second style (percent)"), 50.0, 0, 100)
    layer = Argument(
        "style-layer",
        "layer",
        N_("Style _layer (optional)"),
        N_("A layer of any open image to take the style from, instead of the style image (its alpha is ignored)"),
    )
    opt = option_argument
    return [
        style,
        *map(opt, ("strength", "preserve-colors", "quality", "working-size", "style-scale", "seed", "device")),
        style2,
        blend,
        opt("seamless"),
        layer,
        Argument(
            "run-on",
            "string",
            N_("_Run on"),
            N_("'this computer', or an SSH destination [user@]host[:port] whose GPU runs the worker"),
            messages.THIS_COMPUTER,
        ),
        Argument(
            "remote-command",
            "string",
            N_("Remote worker co_mmand"),
            N_("The worker command that 'python3 install.py --no-plugin' prints on that machine"),
            ssh.DEFAULT_COMMAND,
        ),
        Argument(
            "ssh-options",
            "string",
            N_("SSH options"),
            N_("Space-separated KEY=VALUE passed to ssh as -o (e.g. IdentityFile=~/.ssh/gpu); usually ~/.ssh/config instead"),
            "",
        ),
    ]


def options_from(get: Callable[[str], object]) -> dict[str, object]:
    """The run options from the procedure config's values (get: config.get_property), checked by the contract.

    Raises errors.BadRequest (one line naming the option) before any worker starts."""
    options: dict[str, object] = {}
    for arg in arguments():
        if arg.option is None:
            continue
        value = get(arg.name)
        if option_table.option(arg.option).nullable and value == 0:
            value = None
        options[arg.option] = value
    return option_table.check_options(options)


# The preview's own schedule: the instant picture first, then the balanced preset at 320 px, so the preview
# looks like what OK will paint; brush size is relative to the picture, so the strokes look as they will at full size.
PREVIEW_SIDE = 320
PREVIEW_OPTIONS = {"preset": "balanced", "working_size": PREVIEW_SIDE}
PREVIEW_IMAGES_EVERY = 2  # an intermediate image every N evaluations (the first evaluation's too)
INSTANT = messages.FIRST_INSTANT  # the preset whose picture the preview shows first
# Quiet time after the last change before a new preview starts: short, as its first picture is the instant one.
DEBOUNCE_MS = 150


def preview_options(options: Mapping[str, object]) -> dict[str, object]:
    """The preview's run options: the instant picture alone when Quality is Instant (what OK will paint), else balanced."""
    preset = INSTANT if options.get("preset") == INSTANT else PREVIEW_OPTIONS["preset"]
    return {**options, **PREVIEW_OPTIONS, "preset": preset}


def build_message(
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


def build_request(
    request_id: str,
    content: str,
    styles: Sequence[tuple[str, float]],
    options: Mapping[str, object],
    output: str,
    preview_dir: str | None = None,
) -> dict:
    """build_message's request for a worker that reads files."""
    return build_message(request_id, content, styles, options, output, preview_dir)[0]


def run_on(get: Callable[[str], object]) -> Target | None:
    """Where the worker runs, from the "Run on" arguments: None for this computer, else the SSH target.

    Raises RemoteFailure (one line naming the fix) before any worker starts."""
    destination = str(get("run-on") or "").strip()
    if not destination or destination == messages.THIS_COMPUTER:
        return None
    return Target.parse(destination, str(get("remote-command") or ""), str(get("ssh-options") or "").split())


def device_text(ready: Mapping[str, object], where: str) -> str:
    """What the dialog shows of a ready worker: where it runs, its device and its GPU's name."""
    gpu = f" ({ready['gpu']})" if ready.get("gpu") else ""
    return _("Running on {where}: {device}{gpu}, stylecore {version}").format(
        where=where, device=ready.get("device", "?"), gpu=gpu, version=ready.get("version", "?")
    )


def style_weights(blend: float) -> tuple[float, float]:
    """Weights of the first and second style for a second-style share in percent."""
    return (100.0 - blend) / 100.0, blend / 100.0


def progress_text(event: Mapping[str, object]) -> str:
    eta = event.get("eta")
    eta_text = _(", about {m}:{s:02d} left").format(m=int(eta // 60), s=int(eta % 60)) if isinstance(eta, (int, float)) else ""
    return (
        _("Style transfer: scale {scale}/{scales}, step {step}/{steps}").format(
            scale=event.get("scale", "?"),
            scales=event.get("scales", "?"),
            step=event.get("step", "?"),
            steps=event.get("steps", "?"),
        )
        + eta_text
    )
