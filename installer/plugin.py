"""The plug-in folder: the plug-in's files, stylecore's standard-library modules beside it, the worker config."""

from __future__ import annotations

import dataclasses
import shlex
import shutil
from pathlib import Path

from stylecore.protocol import host

from .common import HERE, MARKER, PLUGIN_NAME, PLUGIN_SOURCE, InstallError
from .discovery import Target

DISPATCHER = "stylecore-python"  # the worker "python" in a folder both the Flatpak and a distro GIMP read
NO_CACHE = shutil.ignore_patterns("__pycache__", "*.pyc")


def worker_config(python: Path, version: str, layout: str, repair: str) -> host.WorkerConfig:
    return host.WorkerConfig(str(python), "", version, layout, repair)


def copy_protocol(dest: Path) -> None:
    """stylecore's standard-library part, `stylecore/protocol/` with the package's `__init__.py`, into dest (the plug-in's
    own folder): GIMP's own Python imports it from there, and nothing else of stylecore."""
    source = HERE / "stylecore"
    if not (source / "protocol").is_dir() or not (source / "__init__.py").is_file():
        raise InstallError(f"{source / 'protocol'} is missing; run install.py from a complete stylecore checkout")
    (dest / "stylecore").mkdir()
    shutil.copy2(source / "__init__.py", dest / "stylecore" / "__init__.py")
    shutil.copytree(source / "protocol", dest / "stylecore" / "protocol", ignore=NO_CACHE)


def write_plugin(target: Target, config: host.WorkerConfig, vendor: bool) -> Path:
    """Copies the plug-in, the modules it imports and writes the worker config beside it; returns its entry file."""
    if not PLUGIN_SOURCE.is_dir():
        raise InstallError(
            f"{PLUGIN_SOURCE} is missing; run install.py from a complete stylecore checkout (git clone, then python3 install.py)"
        )
    dest = target.plugin_dir
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PLUGIN_SOURCE, dest, ignore=NO_CACHE)
    copy_protocol(dest)
    entry = dest / f"{PLUGIN_NAME}.py"
    entry.chmod(0o755)
    if vendor:  # the worker's whole engine, on the worker's PYTHONPATH only (GIMP's Python never imports it)
        shutil.copytree(HERE / "stylecore", dest / "engine" / "stylecore", ignore=NO_CACHE)
        config = dataclasses.replace(config, pythonpath=str(dest / "engine"))
    (dest / host.CONFIG_NAME).write_text(host.config_json(config))
    (dest / MARKER).write_text("made by stylecore's install.py; 'python3 install.py --uninstall' removes this folder\n")
    return entry


def write_dispatcher(plugin_dir: Path, flatpak_python: Path, native_python: Path) -> Path:
    """For a folder both GIMPs read: a launcher that picks the worker of whichever GIMP runs it.

    The Flatpak's venv only runs inside the sandbox and the host's only outside it, and the plug-in
    launches one "python"; /.flatpak-info (and FLATPAK_ID) exist only inside a Flatpak sandbox.
    """
    config_path = plugin_dir / host.CONFIG_NAME
    config = host.read_config(config_path)
    native_env = f"PYTHONPATH={shlex.quote(config.pythonpath)} " if config.pythonpath else ""
    script = plugin_dir / DISPATCHER
    script.write_text(
        "#!/bin/sh\n"
        "# Written by stylecore's install.py: the Flatpak GIMP and a distro GIMP both read this folder.\n"
        f'if [ -f /.flatpak-info ] || [ -n "$FLATPAK_ID" ]; then exec {shlex.quote(str(flatpak_python))} "$@"; fi\n'
        f'{native_env}exec {shlex.quote(str(native_python))} "$@"\n'
    )
    script.chmod(0o755)
    config_path.write_text(host.config_json(dataclasses.replace(config, python=str(script), pythonpath="")))
    return script
