"""The one way stylecore writes a file: to a temporary file beside the target, then a rename.

A crash, a full disk or a cancel never leaves half a file under the target's name, and the
temporary file is removed on any failure."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: os.PathLike | str, write: Callable[[BinaryIO], None], mode: int | None = None) -> Path:
    """Calls `write(file)` on a fresh temporary file in the target's folder and renames it over `path`.

    `mode` None: 0o666 less the umask, as open() would give (mkstemp's own 0o600 would hide a result from the
    user's group). Raises whatever `write` or the file system raises (OSError for a full disk or a missing folder)."""
    path = Path(path)
    if mode is None:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask; reading it means setting it, so threads take turns."""
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask
