"""The procedure's arguments, and the run options and worker location they give: pure logic, no GIMP, tested without it.

The arguments that are run options come from stylecore's option table (option_table.OPTIONS: name, range,
default, help, choices), so the dialog cannot drift from the engine; this module adds only what is the
plug-in's own: the labels with their mnemonics, the style inputs, "Run on", and the argument order scripts rely on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from i18n import N_

from stylecore.protocol import messages, option_table, ssh


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
        return Argument(
            gimp_name, "choice", label, opt.help, opt.default, choices=option_table.LABELLED_CHOICES[opt.name], option=opt.name
        )
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


# The dialog shows these first, in this order; every other argument goes under Advanced, in the procedure's order.
MAIN = ("style-file", "style-layer", "strength", "preserve-colors", "seamless", "quality")


def advanced() -> list[str]:
    return [arg.name for arg in arguments() if arg.name not in MAIN]


def options_from(get: Callable[[str], object]) -> dict[str, option_table.Value]:
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


def run_on(get: Callable[[str], object]) -> ssh.Target | None:
    """Where the worker runs, from the "Run on" arguments: None for this computer, else the SSH target.

    Raises BadInput (one line naming the fix) before any worker starts."""
    destination = str(get("run-on") or "").strip()
    if not destination or destination == messages.THIS_COMPUTER:
        return None
    return ssh.Target.parse(destination, str(get("remote-command") or ""), str(get("ssh-options") or "").split())
