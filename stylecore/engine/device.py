"""Device choice and the numeric settings that measurement showed are worth it.

Nothing here changes torch's globals: the thread count is torch's own default (one per
physical core), and cuDNN's autotuner is switched on by the engine for the length of a run."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stylecore.protocol import option_table
from stylecore.protocol.errors import BadInput


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32
    channels_last: bool

    def autocast(self) -> torch.autocast:
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def cpu_has_native_bf16() -> bool:
    """bf16 autocast only pays on CPUs with bf16 instructions: on plain AVX2 it ran 20-40x slower."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise BadInput(f"device '{name}' is not a device name; use auto, cpu, cuda or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInput("device 'cuda' asked for, but torch sees no CUDA GPU; use --device auto or cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInput("device 'mps' asked for, but it is not available; use --device auto or cpu")
    return dev


def runtime_for(
    device_name: str = option_table.option("device").default, precision: str = option_table.option("precision").default
) -> Runtime:
    for name, value in (("device", device_name), ("precision", precision)):
        why = option_table.option(name).problem(value)
        if why:
            raise BadInput(why)
    dev = pick_device(device_name)
    if precision == "auto":
        if dev.type == "cuda":
            use_bf16 = torch.cuda.is_bf16_supported()
        elif dev.type == "cpu":
            use_bf16 = cpu_has_native_bf16()
        else:
            use_bf16 = False
    else:
        use_bf16 = precision == "bf16"
    return Runtime(dev, torch.bfloat16 if use_bf16 else None, channels_last=dev.type != "mps")


def tile_side(rt: Runtime) -> int:
    """Core tile side for scales too big for one pass.

    The whole network's forward and backward keep about 2.6 KB per pixel (2.9 GB peak at
    1024x768, 0.8 GB of it the process itself): a 1024² tile on CPU, and on a GPU tiles
    that take about a quarter of its free memory."""
    if rt.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(rt.device)
        return int(max(512, min(4096, (free / 4 / 3000) ** 0.5)))
    return 1024
