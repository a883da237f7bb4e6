"""The training step and epoch loop, and the speed switches they use.

``train_epoch`` is what ``fit`` runs for every epoch and what ``benchmarks/train_throughput.py`` times, so
the benchmark measures the real path. The switches (``train.channels_last``, ``train.fused_adam``,
``train.compile``, ``train.fast_dropout``) are resolved once per run by :func:`resolve_speed`;
docs/benchmarks.md has the measurements behind each default.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from aerotune import interrupts
from aerotune.config import TrainConfig
from aerotune.data.dataset import PatchDataset
from aerotune.data.palette import Palette
from aerotune.model.unet import Dropout
from aerotune.runtime import autocast
from aerotune.train.metrics import SegmentationMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Speed:
    """Resolved speed settings for one run."""

    channels_last: bool
    fused_adam: bool
    compile: bool
    fast_dropout: bool


def resolve_speed(tc: TrainConfig, device: torch.device) -> Speed:
    """Turn the ``auto``/``on``/``off`` switches into decisions for ``device``."""
    channels_last = tc.channels_last == "on" or (tc.channels_last == "auto" and device.type == "cuda")
    fused = tc.fused_adam == "on" or (tc.fused_adam == "auto" and device.type in ("cpu", "cuda"))
    fast_dropout = tc.fast_dropout == "on" or (tc.fast_dropout == "auto" and device.type == "cpu")
    return Speed(channels_last=channels_last, fused_adam=fused, compile=tc.compile == "on", fast_dropout=fast_dropout)


def make_optimizer(model: torch.nn.Module, tc: TrainConfig, speed: Speed) -> torch.optim.Optimizer:
    """Adam (the reference) or AdamW, with fused kernels (one kernel for all parameters) when ``speed.fused_adam``.

    ``train.weight_decay`` is AdamW's decoupled decay, or with Adam the classic L2 penalty. Either decays the
    convolution weights only: biases and normalisation layers' scales and shifts are left alone,
    as usual, since shrinking them changes what the network computes rather than how complex it is.
    """
    kernel = {"fused": True} if speed.fused_adam else {"foreach": False}
    if tc.optimizer == "adam" and not tc.weight_decay:  # the reference's optimizer, exactly
        return torch.optim.Adam(model.parameters(), lr=tc.learning_rate, **kernel)
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": tc.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    kind = torch.optim.AdamW if tc.optimizer == "adamw" else torch.optim.Adam  # Adam: the classic L2 penalty
    return kind(groups, lr=tc.learning_rate, **kernel)


def learning_rate(tc: TrainConfig, epoch: int, batch: int, batches: int, horizon: int) -> float:
    """The learning rate of batch ``batch`` (0-based) of ``epoch`` (1-based) in a run of ``horizon`` epochs.

    ``constant``: ``train.learning_rate``. ``cosine``: linear warm-up over ``train.warmup_epochs``, then cosine
    decay to 1 % of the peak at the end of epoch ``horizon`` (and 1 % after it). A function of the position alone,
    so a run stopped at epoch r, one that went on, and one resumed from a checkpoint share their first r epochs.
    """
    if tc.schedule == "constant":
        return tc.learning_rate
    t = epoch - 1 + batch / max(batches, 1)  # epochs done before this batch
    if t < tc.warmup_epochs:
        return tc.learning_rate * (t + 1 / max(batches, 1)) / tc.warmup_epochs
    span = max(horizon - tc.warmup_epochs, 1e-9)
    progress = min((t - tc.warmup_epochs) / span, 1.0)
    floor = 0.01 * tc.learning_rate
    return floor + (tc.learning_rate - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def prepare_model(model: torch.nn.Module, speed: Speed) -> torch.nn.Module:
    """Apply the memory format; return the module to call (compiled when ``speed.compile``).

    The returned module shares its parameters with ``model``: save and load ``model``'s state dict.
    """
    for m in model.modules():
        if isinstance(m, Dropout):
            m.fast = speed.fast_dropout
    if speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if speed.compile:
        return torch.compile(model, dynamic=False)
    return model


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@dataclass
class EpochStats:
    """What one pass over the training set did; times in seconds."""

    batches: int = 0
    patches: int = 0
    diverged: bool = False
    data_seconds: float = 0.0  # reading, normalising and moving batches
    seconds: float = 0.0


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    dataset: PatchDataset,
    order: list[int],
    *,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
    metrics: SegmentationMetrics,
    scaler: torch.amp.GradScaler | None = None,
    desc: str = "",
    progress: bool = False,
    max_batches: int | None = None,
    schedule: Callable[[int, int], float] | None = None,
) -> EpochStats:
    """One epoch of training over ``dataset`` in ``order``; metrics and loss accumulate on the device.

    ``schedule(batch, batches)`` gives each batch's learning rate (None: the optimizer's own, unchanged).

    Nothing waits for the device inside the loop except the divergence check on CPU (where it is free);
    on CUDA a non-finite loss is caught from the epoch's accumulated loss instead.
    """
    stats = EpochStats()
    model.train()
    check_each = device.type != "cuda"
    starts = list(range(0, len(order), batch_size))[:max_batches]
    bar = tqdm(starts, desc=desc, unit="batch", disable=None if progress else True, leave=False, dynamic_ncols=True)
    t_start = time.perf_counter()
    for i, start in enumerate(bar):
        interrupts.check()
        t0 = time.perf_counter()
        x, y = dataset.batch(order[start : start + batch_size], device)
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        stats.data_seconds += time.perf_counter() - t0
        with autocast(device, dtype):
            logits = model(x)
        loss = loss_fn(logits, y)
        if check_each and not torch.isfinite(loss):
            stats.diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        if schedule is not None:
            _set_rate(optimizer, schedule(i, len(starts)))
        _step(loss, optimizer, scaler)
        metrics.update(logits, y, loss)
        stats.batches += 1
        stats.patches += len(y)
        if progress and i % 10 == 9:  # a host sync, but only every tenth batch and only with a progress bar
            bar.set_postfix(loss=f"{metrics.mean_loss():.4f}", refresh=False)
    bar.close()
    stats.seconds = time.perf_counter() - t_start
    if not check_each and stats.batches and not torch.isfinite(metrics.loss_sum):
        stats.diverged = True
    return stats


def _set_rate(optimizer: torch.optim.Optimizer, rate: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = rate


def _step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Back-propagate ``loss`` and step the optimizer (through the gradient scaler when it is enabled)."""
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


@torch.inference_mode()
def evaluate(
    model: torch.nn.Module,
    dataset: PatchDataset,
    palette: Palette,
    *,
    batch_size: int,
    device: torch.device,
    loss_fn: Callable | None = None,
    dtype: torch.dtype | None = None,
    extra: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    channels_last: bool | None = None,
) -> SegmentationMetrics:
    """Run the model over a dataset in eval mode and accumulate metrics (and ``extra(logits, y)``).

    ``channels_last`` None: on CUDA only. Metrics and loss accumulate on the device.
    """
    model.eval()
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    metrics = SegmentationMetrics(palette.names, ignore_index=palette.ignore_index, device=device)
    for start in range(0, len(dataset), batch_size):
        interrupts.check()
        x, y = dataset.batch(list(range(start, min(start + batch_size, len(dataset)))), device)
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(x)
        metrics.update(logits, y, loss_fn(logits, y) if loss_fn else None)
        if extra:
            extra(logits.float(), y)
    return metrics
