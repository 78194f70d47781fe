"""Where GIMP 3 looks for plug-ins on this machine, GIMP's Flatpak, and the record of the folders installed into."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import common
from .common import PLUGIN_NAME, InstallError, say, unwritable

SERIES = ("3.0", "3.2")  # GIMP 3 user-folder versions; the newest is the stable GIMP
STABLE = SERIES[-1]
FLATPAK_APP = "org.gimp.GIMP"
LAYOUTS = ("native", "flatpak", "shared")  # Target.layout, as the record of installs holds it


def flatpak_data_dir(home: Path) -> Path:
    """The Flatpak GIMP's own folder (~/.var/app/org.gimp.GIMP): config/, data/ and cache/ inside the sandbox."""
    return home / ".var" / "app" / FLATPAK_APP


@dataclass(frozen=True)
class Target:
    """A GIMP 3 user folder (the one holding plug-ins/) and how its GIMP runs the worker."""

    path: Path
    layout: str  # "native" | "flatpak" | "shared" (read by the Flatpak GIMP and a distro GIMP alike)
    how: str  # why this folder: shown to the user
    exists: bool = True

    @property
    def plugin_dir(self) -> Path:
        return self.path / "plug-ins" / PLUGIN_NAME


@dataclass
class Flatpak:
    """What is known about GIMP's Flatpak on this machine."""

    installed: bool
    version: str | None = None  # "3.0.4" from `flatpak info`
    data_dir: Path = field(default_factory=lambda: flatpak_data_dir(Path.home()))


def user_config_home(env: Mapping[str, str], home: Path) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config")


def flatpak_config_dir(env: Mapping[str, str], home: Path) -> Path:
    """Where the Flatpak GIMP keeps its GIMP/ folder.

    The Flathub GIMP has --filesystem=xdg-config/GIMP: when the host's ~/.config/GIMP exists,
    Flatpak mounts it over the sandbox's own ~/.var/app/org.gimp.GIMP/config/GIMP, so GIMP then
    reads (and creates its 3.x folder in) the host one.
    """
    host = user_config_home(env, home) / "GIMP"
    return host if host.is_dir() else flatpak_private_config(home)


def flatpak_private_config(home: Path) -> Path:
    """The sandbox's own GIMP/ folder, which the Flatpak GIMP reads until the host's ~/.config/GIMP exists."""
    return flatpak_data_dir(home) / "config" / "GIMP"


def series_of(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0] == "3" else None


def native_gimp_on_path() -> bool:
    return any(shutil.which(name) for name in ("gimp-3.0", "gimp-3.2", "gimp-3", "gimp"))


def discover(
    system: str, env: Mapping[str, str], home: Path, flatpak: Flatpak, explicit: str | None = None, native_gimp: bool = False
) -> list[Target]:
    """Every GIMP 3 user folder on this machine; if none exists, the most likely one (exists=False).

    native_gimp: a distro GIMP 3 is installed too, so a folder it shares with the Flatpak gets a
    worker that runs in both.
    """
    if explicit:
        path = Path(explicit).expanduser().resolve()
        layout = "native"
        if flatpak.installed and path.is_relative_to(flatpak_data_dir(home)):
            layout = "flatpak"
        elif flatpak.installed and path.is_relative_to(flatpak_config_dir(env, home)):  # the host folder the Flatpak shares
            layout = "shared" if native_gimp else "flatpak"
        return [Target(path, layout, "--gimp-dir", path.exists())]
    found: list[Target] = []
    if env.get("GIMP3_DIRECTORY"):
        path = Path(env["GIMP3_DIRECTORY"]).expanduser()
        found.append(Target(path, "native", "GIMP3_DIRECTORY", path.exists()))
    if system == "Windows":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "GIMP"
        native = [(base / s, f"GIMP {s} for Windows") for s in SERIES]
    elif system == "Darwin":
        base = home / "Library" / "Application Support" / "GIMP"
        native = [(base / s, f"GIMP {s} for macOS") for s in SERIES]
    else:
        base = user_config_home(env, home) / "GIMP"
        native = [(base / s, f"GIMP {s} (distro package, AppImage or own build)") for s in SERIES]
    if not env.get("GIMP3_DIRECTORY"):  # GIMP3_DIRECTORY replaces the native per-version folders
        found += [Target(p, "native", how) for p, how in native if p.is_dir()]
    if system == "Linux" and flatpak.installed:
        found = _flatpak_targets(found, base, flatpak_config_dir(env, home), flatpak, native_gimp)
    if not found:
        path = native[-1][0]
        found.append(Target(path, "native", f"no GIMP 3 folder found; GIMP {STABLE}'s default", False))
    return found


def _flatpak_targets(found: list[Target], native_base: Path, base: Path, flatpak: Flatpak, native_gimp: bool) -> list[Target]:
    host = base == native_base
    note = " (the host's folder, which the Flatpak uses once it exists)" if host else ""
    running = series_of(flatpak.version)
    # In its private folder every 3.x folder was made by the Flatpak; in the host's folder only
    # the version the Flatpak runs is its own (when `flatpak info` told us that version).
    series = [s for s in SERIES if (base / s).is_dir() and not (host and running and s != running)]
    if running and running not in series:
        series.append(running)
    for s in series:
        path = base / s
        both = any(f.path == path for f in found) and native_gimp
        found = [f for f in found if f.path != path]
        how = f"Flatpak GIMP {s} and distro GIMP {s}" if both else f"Flatpak GIMP {flatpak.version if s == running else s}{note}"
        found.append(Target(path, "shared" if both else "flatpak", how, path.is_dir()))
    return found


def detect_flatpak(home: Path) -> Flatpak:
    """GIMP's Flatpak, as `flatpak info org.gimp.GIMP` reports it (system or --user installation).

    Its ~/.var/app folder alone is not enough: without the flatpak command no worker can be built
    inside the sandbox, so that case is only reported.
    """
    data_dir = flatpak_data_dir(home)
    if platform.system() != "Linux":
        return Flatpak(False, None, data_dir)
    if shutil.which("flatpak"):
        try:
            r = common.run(["flatpak", "info", FLATPAK_APP], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            r = None
        if r is not None and r.returncode == 0:
            version = next(
                (ln.split(":", 1)[1].strip() for ln in r.stdout.splitlines() if ln.strip().startswith("Version:")), None
            )
            return Flatpak(True, version, data_dir)
    elif data_dir.is_dir():
        say(f"found {data_dir} but no flatpak command: skipping the Flatpak GIMP (its worker is built with 'flatpak run')")
    return Flatpak(False, None, data_dir)


# --- the record of installs --------------------------------------------------------------------


def state_file(env: Mapping[str, str], home: Path) -> Path:
    """Where install.py remembers the folders it installed into (for --check and --uninstall)."""
    if platform.system() == "Windows":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif platform.system() == "Darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "stylecore" / "installs.json"


def load_state() -> list[dict[str, str]]:
    """The folders install.py installed into, as recorded; none if nothing was recorded yet.

    A record that cannot be read or makes no sense is one line that says how to fix it, not a guess."""
    path = state_file(os.environ, Path.home())
    fix = "delete it (install.py writes it anew; until then --uninstall finds only the folders it discovers) and run the same command again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise InstallError(f"{_not_a_folder(path)}; move that file away and run the same command again") from None
    except IsADirectoryError:
        raise InstallError(
            f"{path} is a folder, not install.py's record of installs; move it away and run the same command again"
        ) from None
    except OSError as exc:
        raise InstallError(f"cannot read {path} ({exc.strerror or exc}); make it readable or {fix}") from None
    except ValueError:  # not JSON, or not UTF-8
        raise InstallError(f"{path} is damaged (not JSON); {fix}") from None
    if not isinstance(data, list) or not all(
        isinstance(d, dict) and isinstance(d.get("path"), str) and d["path"] and d.get("layout") in LAYOUTS for d in data
    ):
        raise InstallError(f'{path} is damaged (each entry needs a "path" string and a "layout"); {fix}')
    return [{"path": d["path"], "layout": d["layout"]} for d in data]


def _not_a_folder(path: Path) -> str:
    """For a path one of whose folders is a file: which one."""
    parent = next((p for p in path.parents if os.path.lexists(p) and not p.is_dir()), path.parent)
    return f"{parent} is a file where install.py keeps a folder (for {path})"


def check_state_writable() -> None:
    """Before any work: the record of installs can be written (its folder is no file, and not read-only)."""
    path = state_file(os.environ, Path.home())
    problem = unwritable(path.parent)
    if problem:
        raise InstallError(f"cannot record the install in {path}: {problem}; then run the same command again")


def save_state(entries: list[dict[str, str]]) -> None:
    path = state_file(os.environ, Path.home())
    path.parent.mkdir(parents=True, exist_ok=True)
    unique = {e["path"]: e for e in entries}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(unique.values()), indent=2) + "\n")
    os.replace(tmp, path)


def known_targets(args: argparse.Namespace, flatpak: Flatpak) -> list[Target]:
    """Folders discovered now plus those recorded at install time (an old --gimp-dir, say)."""
    targets = discover(platform.system(), os.environ, Path.home(), flatpak, args.gimp_dir, native_gimp_on_path())
    if args.gimp_dir:
        return targets
    seen = {t.path for t in targets}
    for entry in load_state():
        path = Path(entry["path"])
        if path not in seen:
            targets.append(Target(path, entry["layout"], "installed here earlier", path.exists()))
            seen.add(path)
    return targets
