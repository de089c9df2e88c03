"""The one device rule of the library, the trainer and the app: a named device, checked, or the best one here."""
import os

import torch

from .errors import PixelRNNError


def pick_device(name: str = "auto") -> torch.device:
    """"auto": this process's GPU (LOCAL_RANK under torchrun), else Apple's MPS, else the CPU; or a checked name."""
    problem = device_problem(name)
    if problem:
        raise PixelRNNError(problem)
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_problem(name) -> str | None:
    """Why `name` cannot be used on this machine, or None when it can."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        return f"device must be auto, cpu, cuda, cuda:<index> or mps, got {name!r}"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"device {name!r}: CUDA is not available on this machine (use auto or cpu)"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif device.type == "mps" and not _mps_available():
        return f"device {name!r}: Apple's MPS is not available on this machine (use auto or cpu)"
    elif device.type not in ("cpu", "cuda", "mps"):
        return f"device must be auto, cpu, cuda, cuda:<index> or mps, got {name!r}"
    return None


def bfloat16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run at native speed here: a CUDA GPU, or a CPU with AVX512-BF16 or AMX.

    Elsewhere they are emulated and slower than float32, so `generate(fast=True)` would not pay.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:  # private helpers of torch.cpu; a torch without them is taken to have neither
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
