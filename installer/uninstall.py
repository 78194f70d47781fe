"""install.py --uninstall: removes what install.py made, and nothing else."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from stylecore.protocol import host

from . import discovery
from .common import MARKER, PLUGIN_NAME, say
from .discovery import known_targets, load_state, save_state
from .flatpak_env import our_envs


def uninstall(args: argparse.Namespace) -> None:
    flatpak = discovery.detect_flatpak(Path.home())
    removed = False
    for target in known_targets(args, flatpak):
        if (target.plugin_dir / MARKER).exists():
            shutil.rmtree(target.plugin_dir)
            say(f"removed {target.plugin_dir}")
            removed = True
        elif target.plugin_dir.exists():
            say(f"left {target.plugin_dir} alone: install.py did not make it")
    save_state([e for e in load_state() if (Path(e["path"]) / "plug-ins" / PLUGIN_NAME / MARKER).exists()])
    venv = Path(args.venv).expanduser().resolve()
    flatpak_envs = our_envs(flatpak)
    if args.remove_env:
        for env_dir in ([venv] if (venv / "pyvenv.cfg").exists() else []) + flatpak_envs:
            shutil.rmtree(env_dir)
            say(f"removed {env_dir}")
            removed = True
    elif flatpak_envs:
        say(f"kept the Flatpak worker environment {', '.join(map(str, flatpak_envs))}; --remove-env deletes it")
    if not removed:
        say("nothing of stylecore's found to remove")
    sandbox_cache = host.stylecore_cache({"XDG_CACHE_HOME": str(flatpak.data_dir / "cache")})
    caches = [host.stylecore_cache(host.worker_environment(os.environ))]
    caches += [sandbox_cache] if sandbox_cache.exists() else []
    say(f"the weights cache is kept ({' and '.join(map(str, caches))}); delete it by hand if you want the space back")
