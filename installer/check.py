"""install.py --check: for every GIMP folder, will GIMP load the plug-in, and does its worker start as the plug-in starts it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from stylecore.protocol import client, host, ssh
from stylecore.protocol.errors import REPAIR_HERE, SetupError, StylecoreError, WorkerFailed

from . import discovery
from .common import PLUGIN_NAME, python_version_of, repair_command, say
from .discovery import FLATPAK_APP, Target, flatpak_config_dir, flatpak_private_config, known_targets
from .flatpak_env import flatpak_cmd, sandbox_python_version
from .native import INSTANT_RUNTIME
from .plugin import DISPATCHER


def probe_worker(config: host.WorkerConfig, in_sandbox: bool, guard: Path) -> dict[str, str]:
    """Starts the worker with the one worker client, as the plug-in does, and waits for its ready handshake.

    {"python_version", "version", "device", "instant"} when it is ready; {"error", "kind"} when it is not.
    """
    launcher = tuple(flatpak_cmd(config.python)) if in_sandbox else ()
    version = python_version_of(list(launcher) or [config.python], host.worker_environment(os.environ, config.pythonpath))
    if version is None:
        gone = not in_sandbox and not os.path.isfile(config.python)
        return {"error": f"{config.python} does not exist" if gone else f"{config.python} does not run", "kind": "NoPython"}
    # The sandbox has its own /tmp: the check's private folder must lie where both sides see it.
    parent = discovery.flatpak_data_dir(Path.home()) / "cache" if in_sandbox else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    try:
        with client.WorkerClient(client.Local(config, guard, launcher, str(parent) if parent else None)) as worker:
            ready = worker.wait_ready()
    except WorkerFailed as exc:
        return {"error": str(exc), "kind": exc.kind or "NoWorker"}
    except StylecoreError as exc:
        return {"error": str(exc), "kind": type(exc).__name__}
    found = {"python_version": version, "version": str(ready.get("version")), "device": str(ready.get("device"))}
    return {**found, "instant": str(ready.get("instant", "this worker predates the instant preset"))}


def check_target(target: Target, flatpak_version: Callable[[], str | None], repair_default: str) -> list[str]:
    """Problems (one line each, ending with the repair command) for one GIMP folder; prints what is fine."""
    problems: list[str] = []
    entry = target.plugin_dir / f"{PLUGIN_NAME}.py"
    say(f"{target.how} [{target.layout}]: {target.path}")
    if not entry.is_file():
        return [f"plug-in not installed in {target.plugin_dir}; run: {repair_default}"]
    if os.name != "nt" and not os.access(entry, os.X_OK):
        problems.append(f"{entry} is not executable, so GIMP skips it; run: {repair_default}")
    else:
        say(f"  plug-in: ok, GIMP will load {entry}")
    try:
        config = host.read_config(target.plugin_dir / host.CONFIG_NAME)
    except SetupError as exc:
        return [*problems, str(exc).replace(REPAIR_HERE, repair_default)]
    recorded, flatpak = config.python_version, config.layout == "flatpak"
    if flatpak:
        now = flatpak_version()
        if now is None:
            return [
                *problems,
                f"'flatpak run --command=python3 {FLATPAK_APP}' does not run (is GIMP's Flatpak still installed?); run: {config.repair}",
            ]
        if recorded and now != recorded:
            problems.append(
                f"the GIMP Flatpak runtime's Python is now {now}, but the worker was built for {recorded}; run: {config.repair}"
            )
    sandboxes = [flatpak]
    if Path(config.python).name == DISPATCHER:
        sandboxes = [True, False]  # a folder the distro GIMP reads too: its worker must start as well
    for in_sandbox in sandboxes:
        problems += check_worker(target, config, in_sandbox, recorded if in_sandbox == flatpak else "")
    return problems


def check_worker(target: Target, config: host.WorkerConfig, in_sandbox: bool, recorded: str) -> list[str]:
    guard = target.plugin_dir / "stylecore" / "protocol" / "guard.py"
    if not guard.is_file():
        return [f"{guard} is missing (an older install); run: {config.repair}"]
    found = probe_worker(config, in_sandbox, guard)
    shared = Path(config.python).name == DISPATCHER
    where = " in the Flatpak sandbox" if in_sandbox else (" for the distro GIMP" if shared else "")
    repair = f"run: {config.repair}"
    if "error" in found:  # the client's own line may already end with the repair
        error = found["error"].removesuffix(f"; {repair}")
        what = "no VGG16 weights" if found.get("kind") == "WeightsUnavailable" else "the worker cannot start"
        return [f"{what}{where}: {error}; {repair}"]
    if recorded and found["python_version"] != recorded:
        return [
            f"the worker's Python is now {found['python_version']}, but it was installed for {recorded}; run: {config.repair}"
        ]
    say(
        f"  worker{where}: ok, {config.python} (Python {found['python_version']}, stylecore {found['version']}, device {found['device']})"
    )
    if found["instant"] != "ok" and INSTANT_RUNTIME[0] in found["instant"]:
        # A runtime without pip (a Flatpak's) cannot get onnxruntime from the installer: the other presets still work.
        say(f"  note: the instant preset cannot run{where}: {found['instant']}; the other presets work")
        return []
    if found["instant"] != "ok":
        return [f"the instant preset cannot run{where}: {found['instant']}; run: {config.repair}"]
    say(f"  instant network{where}: ok")
    return []


def hidden_from_flatpak(target: Target, env: Mapping[str, str], home: Path) -> str | None:
    """A plug-in in the Flatpak's private folder that its GIMP no longer reads (a host ~/.config/GIMP appeared)."""
    private = flatpak_private_config(home)
    reads = flatpak_config_dir(env, home)
    if target.path.is_relative_to(private) and reads != private and (target.plugin_dir / host.CONFIG_NAME).exists():
        return f"the Flatpak GIMP now reads {reads / target.path.name} (the host's folder, which exists since the install), not this one"
    return None


def check_remote(destination: str, command: str | None, options: Sequence[str]) -> int:
    """Starts the worker on another machine over ssh, as the plug-in will, and reports its device (or one line why not)."""
    try:
        target = ssh.Target.parse(destination, command, options)
        say(f"starting the worker on {target.destination}: {' '.join(target.argv())}")
        with client.WorkerClient(target) as worker:
            ready = worker.wait_ready()
    except StylecoreError as exc:
        say(f"  PROBLEM: {exc}")
        return 1
    gpu = f" ({ready['gpu']})" if ready.get("gpu") else ""
    say(
        f"  worker on {target.destination}: stylecore {ready.get('version')} (protocol {ready.get('protocol')}), device {ready.get('device')}{gpu}"
    )
    say("all good")
    return 0


def check(args: argparse.Namespace) -> int:
    flatpak = discovery.detect_flatpak(Path.home())
    repair = repair_command(args)
    version_cache: dict[str, str | None] = {}

    def sandbox_version() -> str | None:
        if "v" not in version_cache:
            version_cache["v"] = sandbox_python_version()
        return version_cache["v"]

    problems: list[str] = []
    for target in known_targets(args, flatpak):
        if not target.exists and not target.plugin_dir.exists():
            say(f"{target.how} [{target.layout}]: {target.path} (not there)")
            lines = [
                f"nothing installed in {target.path} (start GIMP 3 once if it is elsewhere, or pass --gimp-dir DIR); run: {repair}"
            ]
        else:
            lines = check_target(target, sandbox_version, repair)
            hidden = hidden_from_flatpak(target, os.environ, Path.home())
            lines += [f"{hidden}; run: {repair}"] if hidden else []
        for line in lines:
            say(f"  PROBLEM: {line}")
        problems += lines
    say("all good" if not problems else f"{len(problems)} problem(s) found")
    return 0 if not problems else 1
