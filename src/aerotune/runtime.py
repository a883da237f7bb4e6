"""Devices and numeric precision: which device to run on and which autocast dtype to use there.

Shared by training, evaluation and prediction, so that importing prediction does not load the training loop.
"""

from __future__ import annotations

import contextlib

import torch

from aerotune.errors import RunError


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; an unavailable CUDA device is a ``RunError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(
            f"device {name!r} was asked for but no CUDA device is available; use --device cpu "
            "(or --set train.device=cpu)"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise RunError(f"device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast is faster than fp32.

    Elsewhere oneDNN emulates bf16 and autocast would slow training down, so ``auto`` keeps fp32.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (auto | fp32 | bf16 | fp16), or None for fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device``, or a no-op for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with ``threads`` torch CPU threads (0: leave torch's setting), then restore the old count."""
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
