"""Memory a patch size needs, estimated before anything is cut or trained, so that a patch of tens of gigabytes
is refused in one line naming the setting instead of ending in an out-of-memory error. Torch-free.

The estimates are deliberately rough and only refuse what cannot fit at all: a single patch that needs more than
the machine's memory. A batch that may not fit is only logged (the estimate is not exact enough to refuse it).
"""

from __future__ import annotations

import logging
import os

from aerotune.config import DataConfig, RunConfig
from aerotune.errors import ConfigError

log = logging.getLogger(__name__)

#: Bytes per pixel per U-Net filter of the first level to train one patch: float32 activations kept for the
#: backward pass and their gradients, over every level (each level has twice the filters on a quarter of the
#: pixels, so the levels together hold about twice the first) and the several tensors a block keeps.
TRAIN_BYTES_PER_FILTER_PIXEL = 96


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def _bands(config: DataConfig) -> int:
    return max(3, len(config.band_list or ()))


def _refuse(what: str, need: int, total: int, config: DataConfig) -> None:
    smaller = max(16, min(256, config.patch_size // 4))
    raise ConfigError(
        f"data.patch_size = {config.patch_size} needs about {_gb(need)} of memory {what}, more than this machine's "
        f"{_gb(total)}; use a smaller --patch-size (e.g. --patch-size {smaller}), or --scale below 1 to shrink "
        "the images first"
    )


def check_prepare_memory(config: DataConfig, *, total: int | None = None) -> None:
    """Refuse a patch size whose patch (image and mask, with the copy written) cannot fit in memory."""
    total = machine_memory() if total is None else total
    need = 2 * config.patch_size**2 * (_bands(config) + 1)
    if total and need > total:
        _refuse("per patch to cut it", need, total, config)


def check_train_memory(config: RunConfig, *, total: int | None = None) -> None:
    """Refuse a patch size that cannot train even one patch at a time; log when a whole batch may not fit."""
    check_prepare_memory(config.data, total=total)
    total = machine_memory() if total is None else total
    pixels = config.data.patch_size**2
    per_patch = pixels * (4 * _bands(config.data) + config.model.base_filters * TRAIN_BYTES_PER_FILTER_PIXEL)
    if total and per_patch > total:
        _refuse(f"per patch to train (model.base_filters = {config.model.base_filters})", per_patch, total, config.data)
    batch = per_patch * config.train.batch_size
    if total and batch > total:
        log.warning(
            "train.batch_size = %d patches of %d may need about %s, more than this machine's %s; if training runs "
            "out of memory, use a smaller --set train.batch_size",
            config.train.batch_size,
            config.data.patch_size,
            _gb(batch),
            _gb(total),
        )
