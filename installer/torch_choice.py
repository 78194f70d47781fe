"""Which torch build fits the machine (CPU-only wheels on Linux without an NVIDIA GPU)."""

from __future__ import annotations

import argparse
import platform
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import say

PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class TorchChoice:
    kind: str  # "cpu" | "cuda" | "default"
    pip_args: tuple[str, ...]  # extra pip arguments (index URLs)
    message: str  # what was chosen, why, and roughly how much it downloads


def has_nvidia_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia").exists()


def index_reachable(url: str = PYTORCH_CPU_INDEX + "/torch/", timeout: float = 5.0) -> bool:
    """A short probe: can pip reach PyTorch's CPU wheel index from here (proxy settings included)?"""
    for method in ("HEAD", "GET"):  # GET only for a server that refuses HEAD
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as resp:  # noqa: S310
                return 200 <= int(resp.status) < 400
        except urllib.error.HTTPError as exc:
            if exc.code not in (403, 405, 501):
                return False
        except (urllib.error.URLError, OSError, ValueError):
            return False
    return False


def choose_torch(requested: str, system: str, nvidia: Callable[[], bool], reachable: Callable[[], bool]) -> TorchChoice:
    """CPU-only wheels on a Linux machine without an NVIDIA GPU (PyPI's Linux torch bundles ~2.5 GB of CUDA)."""
    cpu_args = ("--index-url", PYTORCH_CPU_INDEX, "--extra-index-url", PYPI_INDEX)
    if requested == "default":
        return TorchChoice("default", (), "torch: the default wheels (--torch default)")
    if system != "Linux":
        note = " (CUDA builds: see pytorch.org)" if requested == "cuda" and system == "Windows" else ""
        size = "~250 MB" if system == "Windows" else "~100 MB"
        return TorchChoice("default", (), f"torch: the default wheels for {system}, {size} download{note}")
    if requested == "cuda":
        return TorchChoice("cuda", (), "torch: the CUDA build from PyPI (--torch cuda), ~2.5 GB+ download")
    if requested == "cpu":
        return TorchChoice("cpu", cpu_args, f"torch: CPU-only wheels from {PYTORCH_CPU_INDEX} (--torch cpu), ~200 MB download")
    if nvidia():
        return TorchChoice("cuda", (), "torch: an NVIDIA GPU is present, so the CUDA build from PyPI, ~2.5 GB+ download")
    if reachable():
        return TorchChoice(
            "cpu", cpu_args, f"torch: no NVIDIA GPU, so CPU-only wheels from {PYTORCH_CPU_INDEX}, ~200 MB download"
        )
    return TorchChoice(
        "default",
        (),
        f"torch: no NVIDIA GPU, but {PYTORCH_CPU_INDEX} is unreachable, so the default wheels (~2.5 GB+ on Linux if pip has to download them)",
    )


def pick_torch(args: argparse.Namespace) -> TorchChoice:
    choice = choose_torch(args.torch, platform.system(), has_nvidia_gpu, index_reachable)
    say(choice.message)
    return choice
