"""install.py --uninstall: removes what install.py made, and nothing else."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from stylecore.protocol import host

from . import discovery
from .common import MARKER, PLUGIN_NAME, InstallError, error, repair_command, say
from .discovery import known_targets, load_state, save_state, state_file
from .flatpak_env import our_envs
from .plugin import foreign_entries, owned_files, removal_folders, remove_files


def uninstall(args: argparse.Namespace) -> int:
    """Removes the plug-in's files from every folder install.py wrote (and, with --remove-env, the environments it
    made); 1 if some folder could not be cleaned (each said in one line, and nothing of that folder removed)."""
    flatpak = discovery.detect_flatpak(Path.home())
    again = f"{repair_command(args)} --uninstall"
    removed = failed = False
    for target in known_targets(args, flatpak):
        try:
            removed = remove_plugin(target.plugin_dir, again) or removed
        except InstallError as exc:
            error(str(exc))
            failed = True
    _forget_removed()
    venv = Path(args.venv).expanduser().resolve()
    flatpak_envs = our_envs(flatpak)
    if args.remove_env:
        if (venv / "pyvenv.cfg").exists() and not ((venv / MARKER).is_file() and not venv.is_symlink()):
            say(f"left the environment {venv} alone: nothing marks it as made by install.py (no {MARKER}); delete it by hand")
        for env_dir in ([venv] if (venv / MARKER).is_file() and not venv.is_symlink() else []) + flatpak_envs:
            shutil.rmtree(env_dir)
            say(f"removed {env_dir}")
            removed = True
    elif flatpak_envs:
        say(f"kept the Flatpak worker environment {', '.join(map(str, flatpak_envs))}; --remove-env deletes it")
    if not removed and not failed:
        say("nothing of stylecore's found to remove")
    sandbox_cache = host.stylecore_cache({"XDG_CACHE_HOME": str(flatpak.data_dir / "cache")})
    caches = [host.stylecore_cache(host.worker_environment(os.environ))]
    caches += [sandbox_cache] if sandbox_cache.exists() else []
    say(f"the weights cache is kept ({' and '.join(map(str, caches))}); delete it by hand if you want the space back")
    return 1 if failed else 0


def remove_plugin(dest: Path, again: str) -> bool:
    """Removes the files install.py made in dest, the marker last, and dest itself unless the user added something;
    False if dest is not install.py's. Checks first that it can remove them all: it removes all or nothing."""
    if dest.is_symlink():
        say(f"left {dest} alone: it is a symbolic link, which install.py never makes")
        return False
    files = owned_files(dest) if dest.is_dir() else None
    if files is None:
        if os.path.lexists(dest):
            say(f"left {dest} alone: install.py did not make it")
        return False
    theirs = foreign_entries(dest, files)
    folders = [dest, *removal_folders(dest, files), *([] if theirs else [dest.parent])]
    blocked = next((f for f in folders if f.is_dir() and not os.access(f, os.W_OK | os.X_OK)), None)
    if blocked is not None:
        raise InstallError(
            f"cannot remove {dest}: {blocked} is read-only for you, so nothing was removed; "
            f"make it writable (chmod u+w '{blocked}'), then run: {again}"
        )
    try:
        remove_files(dest, files)
        (dest / f"{MARKER}.tmp").unlink(missing_ok=True)  # left by an interrupted install
        (dest / MARKER).unlink()
        if not theirs:
            dest.rmdir()
    except OSError as exc:
        raise InstallError(
            f"could not finish removing {dest} ({exc.strerror or exc}: {exc.filename}); "
            f"fix that, then run: {again} (the files still there are listed in its {MARKER})"
        ) from None
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        say(f"removed stylecore's files from {dest}; kept the folder, which holds what you added: {shown}")
    else:
        say(f"removed {dest}")
    return True


def _forget_removed() -> None:
    """The record of installs keeps only the folders that still hold the plug-in (a stale one does no harm)."""
    entries = load_state()
    kept = [e for e in entries if (Path(e["path"]) / "plug-ins" / PLUGIN_NAME / MARKER).exists()]
    if kept != entries:
        try:
            save_state(kept)
        except OSError as exc:
            say(f"note: could not update {state_file(os.environ, Path.home())} ({exc.strerror}); it does no harm")
