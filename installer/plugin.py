"""The plug-in folder: the plug-in's files, stylecore's standard-library modules beside it, the worker config.

install.py owns only what it wrote there: the marker file lists those files (its manifest), a folder without the
marker is never written into or removed, and a file a user added inside ours is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from stylecore.protocol import host

from .common import HERE, MARKER, PLUGIN_NAME, PLUGIN_SOURCE, InstallError, unwritable
from .discovery import Target

DISPATCHER = "stylecore-python"  # the worker "python" in a folder both the Flatpak and a distro GIMP read
PLUGIN_MODULES = ("__init__.py", "protocol")  # what the plug-in's own stylecore/ folder holds: the package's stdlib part
MARKER_NOTE = "made by stylecore's install.py; 'python3 install.py --uninstall' removes the files listed here, nothing else"


def worker_config(python: Path, version: str, layout: str, repair: str) -> host.WorkerConfig:
    return host.WorkerConfig(str(python), "", version, layout, repair)


def _tree(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """(path inside the plug-in folder, source) for every file under root, without Python's caches."""
    for source in sorted(root.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts and source.suffix != ".pyc":
            yield f"{prefix}{source.relative_to(root).as_posix()}", source


def plugin_files(vendor: bool) -> dict[str, Path]:
    """Every file write_plugin copies, by its path inside the plug-in folder, with its source in this checkout.

    The plug-in, stylecore's standard-library part (`stylecore/protocol/` with the package's `__init__.py`, which
    GIMP's own Python imports from there) and, vendored, the worker's whole engine (on the worker's PYTHONPATH only)."""
    source = HERE / "stylecore"
    if not PLUGIN_SOURCE.is_dir():
        raise InstallError(
            f"{PLUGIN_SOURCE} is missing; run install.py from a complete stylecore checkout (git clone, then python3 install.py)"
        )
    files = dict(_tree(PLUGIN_SOURCE, ""))
    for name in PLUGIN_MODULES:
        part = source / name
        if not part.exists():
            raise InstallError(f"{part} is missing; run install.py from a complete stylecore checkout")
        files.update(_tree(part, f"stylecore/{name}/") if part.is_dir() else {f"stylecore/{name}": part})
    if vendor:
        files.update(_tree(source, "engine/stylecore/"))
    return files


def _safe(rel: object) -> bool:
    """A manifest entry names a file inside the plug-in folder: relative, no '..', nothing odd."""
    if not isinstance(rel, str) or not rel or "\0" in rel or "\\" in rel:
        return False
    path = PurePosixPath(rel)
    return not path.is_absolute() and all(part not in ("", ".", "..") for part in path.parts) and rel == path.as_posix()


def legacy_files(plugin_dir: Path) -> list[str]:
    """For a marker written before it listed its files: what install.py writes there, plus everything in the two
    folders it always made whole (stylecore/ and engine/)."""
    files = {*plugin_files(vendor=True), host.CONFIG_NAME, DISPATCHER}
    for made in ("stylecore", "engine"):
        for path in (plugin_dir / made).rglob("*") if (plugin_dir / made).is_dir() else ():
            if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
                files.add(path.relative_to(plugin_dir).as_posix())
    return sorted(files)


def owned_files(plugin_dir: Path) -> list[str] | None:
    """The files install.py wrote in plugin_dir, as its marker lists them; None when the folder is not install.py's."""
    marker = plugin_dir / MARKER
    if plugin_dir.is_symlink() or marker.is_symlink() or not marker.is_file():
        return None
    damaged = (
        f"{marker} is damaged, so which files in {plugin_dir} install.py made is unknown; "
        f"move that folder away (keep what is yours from it), then run install.py again"
    )
    try:
        text = marker.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InstallError(damaged) from None
    if not text.lstrip().startswith("{"):  # the plain-text marker of earlier versions
        return legacy_files(plugin_dir)
    try:
        files = json.loads(text).get("files")
    except (ValueError, AttributeError):
        raise InstallError(damaged) from None
    if not isinstance(files, list) or not all(_safe(rel) for rel in files):
        raise InstallError(damaged)
    return files


def write_marker(plugin_dir: Path, files: Iterable[str]) -> None:
    text = json.dumps({"note": MARKER_NOTE, "files": sorted(set(files))}, indent=2) + "\n"
    tmp = plugin_dir / f"{MARKER}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, plugin_dir / MARKER)


def _through_link(plugin_dir: Path, rel: str) -> bool:
    """Whether rel, or a folder on its way inside plugin_dir, is a symbolic link (writing there writes elsewhere)."""
    path = plugin_dir
    for part in PurePosixPath(rel).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


def claim(target: Target, repair: str, writes: Iterable[str] = ()) -> list[str]:
    """Refuses, in one line, to install into target where that would write through a link, over a file, into a
    plug-in folder install.py did not make, over a file a user put in ours, or into a folder it cannot write.

    Returns the files an earlier install made there (empty for a new folder). Called before any work is done,
    and again just before the files are written."""
    dest = target.plugin_dir
    if os.path.lexists(target.path) and not target.path.is_dir():
        fix = {
            "--gimp-dir": "pass --gimp-dir the GIMP 3 user folder (the one that holds plug-ins/, e.g. ~/.config/GIMP/3.2)",
            "GIMP3_DIRECTORY": "set GIMP3_DIRECTORY to a folder, or unset it, then run install.py again",
        }.get(target.how, f"move it away, then run: {repair}")
        raise InstallError(f"{target.path} ({target.how}) is not a folder; {fix}")
    if dest.is_symlink():
        raise InstallError(
            f"{dest} is a symbolic link; install.py neither writes through nor removes links: "
            f"remove the link (what it points to is kept), then run: {repair}"
        )
    if os.path.lexists(dest) and not dest.is_dir():
        raise InstallError(f"{dest} is a file, not a plug-in folder; move it away, then run: {repair}")
    if dest.is_dir():
        previous = owned_files(dest)
        if previous is None:
            raise InstallError(
                f"{dest} exists and install.py did not make it (it has no {MARKER}), so it is left as it is; "
                f"move it away (it may be your own plug-in), then run: {repair}"
            )
    else:
        previous = []
    theirs = [rel for rel in writes if _through_link(dest, rel) or (rel not in previous and os.path.lexists(dest / rel))]
    if theirs:
        raise InstallError(f"{dest / theirs[0]} was not made by install.py; move it out of {dest}, then run: {repair}")
    problem = unwritable(dest)
    if problem:
        raise InstallError(f"cannot install into {dest}: {problem}, or pass --gimp-dir FOLDER; then run: {repair}")
    return previous


def write_plugin(target: Target, config: host.WorkerConfig, vendor: bool) -> Path:
    """Copies the plug-in, the modules it imports and writes the worker config beside it; returns its entry file.

    Only ever writes files it lists in the marker, which it writes first (so an interrupted install can be
    uninstalled) and last (the files of this install only)."""
    files = plugin_files(vendor)
    ours = [*files, host.CONFIG_NAME, *([DISPATCHER] if target.layout == "shared" else [])]
    dest = target.plugin_dir
    previous = claim(target, config.repair, ours)
    dest.mkdir(parents=True, exist_ok=True)
    write_marker(dest, [*previous, *ours])
    remove_files(dest, [rel for rel in previous if rel not in ours])  # what an older version had and this one has not
    for rel, source in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / rel)
    entry = dest / f"{PLUGIN_NAME}.py"
    entry.chmod(0o755)
    if vendor:  # the worker's whole engine, on the worker's PYTHONPATH only (GIMP's Python never imports it)
        config = dataclasses.replace(config, pythonpath=str(dest / "engine"))
    (dest / host.CONFIG_NAME).write_text(host.config_json(config))
    write_marker(dest, ours)
    return entry


def _folders(files: Iterable[str]) -> set[str]:
    """The folders inside the plug-in folder that hold the listed files ("." for the plug-in folder itself)."""
    return {parent.as_posix() for rel in files for parent in PurePosixPath(rel).parents}


def _compiled(path: Path) -> bool:
    """A file Python compiled from one of our modules (GIMP's Python writes them beside the plug-in)."""
    return path.parent.name == "__pycache__" and ".pyc" in path.name and path.is_file() and not path.is_symlink()


def foreign_entries(plugin_dir: Path, files: Iterable[str]) -> list[str]:
    """What is in plugin_dir that install.py did not make: the user's files, folders and links (a folder as one
    entry). Python's compiled copies of our modules count as ours."""
    ours, folders = {*files, MARKER, f"{MARKER}.tmp"}, _folders(files)
    found: list[str] = []
    for root, dirs, names in os.walk(plugin_dir):
        here = Path(root)
        for name in list(dirs):
            rel = (here / name).relative_to(plugin_dir).as_posix()
            mine = rel in folders or (name == "__pycache__" and here.relative_to(plugin_dir).as_posix() in folders)
            if (here / name).is_symlink() or not mine:
                found.append(rel)
                dirs.remove(name)
        for name in names:
            rel = (here / name).relative_to(plugin_dir).as_posix()
            if not (rel in ours and not _through_link(plugin_dir, rel)) and not _compiled(here / name):
                found.append(rel)
    return sorted(found)


def removal_folders(plugin_dir: Path, files: Iterable[str]) -> list[Path]:
    """Every folder that removing the listed files (and their compiled copies, and the folders left empty) writes in."""
    folders = [plugin_dir / rel for rel in sorted(_folders(files))]
    return folders + [cache for folder in folders if (cache := folder / "__pycache__").is_dir()]


def remove_files(plugin_dir: Path, files: Iterable[str]) -> None:
    """Removes the listed files that are there (never through a link, never another file), their compiled copies,
    then the folders of theirs left empty; the plug-in folder itself and its marker stay."""
    files = list(files)
    if not files:
        return
    for rel in files:
        path = plugin_dir / rel
        if not _through_link(plugin_dir, rel) and path.is_file():
            path.unlink()
    for rel in sorted(_folders(files) - {"."}, key=lambda rel: -len(PurePosixPath(rel).parts)) + ["."]:
        folder = plugin_dir / rel
        cache = folder / "__pycache__"
        if cache.is_dir() and not cache.is_symlink() and all(_compiled(p) for p in cache.iterdir()):
            for path in cache.iterdir():
                path.unlink()
            cache.rmdir()
        if rel != "." and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


def write_dispatcher(plugin_dir: Path, flatpak_python: Path, native_python: Path) -> Path:
    """For a folder both GIMPs read: a launcher that picks the worker of whichever GIMP runs it.

    The Flatpak's venv only runs inside the sandbox and the host's only outside it, and the plug-in
    launches one "python"; /.flatpak-info (and FLATPAK_ID) exist only inside a Flatpak sandbox.
    """
    config_path = plugin_dir / host.CONFIG_NAME
    config = host.read_config(config_path)
    native_env = f"PYTHONPATH={shlex.quote(config.pythonpath)} " if config.pythonpath else ""
    script = plugin_dir / DISPATCHER
    owned = owned_files(plugin_dir)
    if owned is None or (DISPATCHER not in owned and os.path.lexists(script)):
        raise InstallError(f"{script} was not made by install.py; move it away, then run: {config.repair}")
    if DISPATCHER not in owned:  # write_plugin lists it for a shared folder
        write_marker(plugin_dir, [*owned, DISPATCHER])
    script.write_text(
        "#!/bin/sh\n"
        "# Written by stylecore's install.py: the Flatpak GIMP and a distro GIMP both read this folder.\n"
        f'if [ -f /.flatpak-info ] || [ -n "$FLATPAK_ID" ]; then exec {shlex.quote(str(flatpak_python))} "$@"; fi\n'
        f'{native_env}exec {shlex.quote(str(native_python))} "$@"\n'
    )
    script.chmod(0o755)
    config_path.write_text(host.config_json(dataclasses.replace(config, python=str(script), pythonpath="")))
    return script
