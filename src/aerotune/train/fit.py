"""``fit(config, data, out) -> RunResult``: train one U-Net and write its run folder.

Run folder: ``config.json`` (resolved), ``split.json``, ``history.csv`` / ``history.json``,
``checkpoints/best.pt`` and ``last.pt`` (state dicts with their config, loadable with
``weights_only=True``), ``metrics.json`` (final metrics and status). Running ``fit`` again on the same
folder resumes from ``last.pt``; a larger ``train.epochs`` continues a finished run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aerotune.config import RunConfig
from aerotune.data.dataset import PatchDataset, Split, channel_stats, make_split
from aerotune.data.patches import PatchCache
from aerotune.files import resolved, write_json, write_text
from aerotune.model.checkpoint import Checkpoint, save_checkpoint
from aerotune.model.losses import make_loss, objective_loss
from aerotune.model.unet import build_model
from aerotune.outputs import output_kind, writing
from aerotune.runtime import autocast_dtype, select_device, torch_threads
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.records import DataRecord, EpochRecord, RunMetrics
from aerotune.train.resume import check_resume  # noqa: F401 - imported from here too
from aerotune.train.step import (  # noqa: F401 - evaluate: imported from here too
    Speed,
    evaluate,
    learning_rate,
    make_optimizer,
    prepare_model,
    resolve_speed,
    to_device,
    train_epoch,
)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a training run produced."""

    run_dir: Path
    status: str  # completed | diverged | stopped
    epochs: int
    best_epoch: int | None
    best_val_loss: float
    history: list[EpochRecord] = field(default_factory=list)
    metrics: RunMetrics | None = None  # what metrics.json holds
    reason: str = ""


class Callback:
    """Hooks into the epoch loop (used by tuning for pruning and the epoch budget)."""

    def on_epoch_start(self, epoch: int) -> bool:
        """Return False to stop before training this epoch (1-based)."""
        return True

    def on_epoch_end(self, epoch: int, record: EpochRecord) -> None:
        """Called after the epoch's checkpoint is written; may raise to end the run."""


def make_datasets(cache: PatchCache, config: RunConfig, split: Split) -> tuple[PatchDataset, PatchDataset, Any]:
    d = config.data
    stats = channel_stats(cache, split.train) if d.normalization == "meanstd" else None
    train = PatchDataset(
        cache,
        split.train,
        normalization=d.normalization,
        stats=stats,
        augment=d.augment,
        jitter=d.jitter,
        channel_gamma=d.channel_gamma,
        zoom=d.zoom,
        window=d.window_side(2 ** (config.model.depth - 1)),
        seed=config.train.seed,
    )
    val = PatchDataset(cache, split.val, normalization=d.normalization, stats=stats)
    return train, val, stats


def fit(
    config: RunConfig,
    cache: PatchCache,
    out: str | Path,
    *,
    split: Split | None = None,
    callback: Callback | None = None,
    resume: bool = True,
) -> RunResult:
    """Train the configured U-Net on a patch cache and write the run folder ``out``.

    ``out`` is written as every output is (:func:`aerotune.outputs.writing`: checked, locked, marked; a folder this
    call created is removed again if it fails before an epoch finished), except a trial's folder of a tuning run,
    which belongs to its study (claimed by ``tune``)."""
    out = Path(out)
    trial = out.parent.name == "trials" and output_kind(out.parent.parent) == "tune-run"
    own = resolved(cache.root) == resolved(out / "cache") if cache is not None else True
    claim = (
        contextlib.nullcontext()
        if trial
        else writing(
            out,
            "train-run",
            inputs=[] if own else [cache.root],
            keep=lambda: (out / "checkpoints" / "last.pt").is_file(),
        )
    )
    with claim, torch_threads(config.train.threads):  # scoped: the caller's thread count is restored afterwards
        return _fit(config, cache, out, split=split, callback=callback, resume=resume)


@dataclass(frozen=True)
class _Resumed:
    """The checkpoint a run resumes from: its record and its state dicts (``model``, ``optimizer``)."""

    record: Checkpoint
    states: Mapping[str, Any]


@dataclass
class _Training:
    """A run being trained: its settings, network, optimiser, data and the history so far."""

    config: RunConfig
    cache: PatchCache
    out: Path
    split: Split
    device: torch.device
    dtype: torch.dtype | None
    settings_pending: bool  # a resumed run records its settings only with its next checkpoint
    speed: Speed | None = None  # channels-last, compile and fast-dropout decisions
    model: torch.nn.Module | None = None
    step_model: torch.nn.Module | None = None  # model itself, or its compiled wrapper (same parameters)
    optimizer: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None
    loss_fn: Callable | None = None
    val_loss_fn: Callable | None = None
    horizon: int = 0  # the learning-rate schedule's length
    train_ds: PatchDataset | None = None
    val_ds: PatchDataset | None = None
    stats: tuple[list[float], list[float]] | None = None
    history: list[EpochRecord] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int | None = None
    start_epoch: int = 1

    def write_settings(self) -> None:
        """Write ``config.json``, ``split.json`` and ``data.json``."""
        write_json(self.out / "config.json", self.config.to_dict())
        write_json(self.out / "split.json", self.split.to_dict())
        DataRecord(cache=str(self.cache.root.resolve())).write(self.out / DataRecord.FILE)


def _fit(
    config: RunConfig,
    cache: PatchCache,
    out: str | Path,
    *,
    split: Split | None,
    callback: Callback | None,
    resume: bool,
) -> RunResult:
    """Set up (or resume) the run in ``out``, train its epochs and write its final record."""
    run, resumed = _set_up(config, cache, Path(out), split, resume)
    _build(run, resumed)
    status, reason = _train_epochs(run, callback or Callback())
    return _finish(run, status, reason)


def _set_up(
    config: RunConfig, cache: PatchCache, out: Path, split: Split | None, resume: bool
) -> tuple[_Training, _Resumed | None]:
    """Check the settings and the run folder; the checkpoint to resume from; the settings of a new run written."""
    config.validate()
    tc = config.train
    split = split or make_split(cache, config.data)
    device = select_device(tc.device)
    dtype = autocast_dtype(tc.precision, device)
    state = check_resume(out, config) if resume else None
    ckpt = Checkpoint.from_json(state, where=str(out / "checkpoints" / "last.pt")) if state is not None else None
    if ckpt is not None and ckpt.split is not None:
        split = ckpt.split
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    # A resumed run records its new settings only with its next checkpoint: a resume that fails (full disk,
    # Ctrl-C) leaves the run's files as they were.
    run = _Training(config, cache, out, split, device, dtype, settings_pending=state is not None)
    if not run.settings_pending:
        run.write_settings()
    return run, (_Resumed(ckpt, state) if ckpt is not None else None)


def _build(run: _Training, resumed: _Resumed | None) -> None:
    """Seed, build the network, optimiser, losses and datasets, and load the checkpoint resumed from."""
    tc, palette, device = run.config.train, run.cache.palette, run.device
    torch.manual_seed(tc.seed)
    run.speed = resolve_speed(tc, device)
    model = build_model(run.config.model, num_classes=palette.num_classes, in_channels=run.cache.bands.count)
    run.model = model.to(device)
    run.step_model = prepare_model(run.model, run.speed)
    run.optimizer = make_optimizer(run.model, tc, run.speed)
    run.scaler = torch.amp.GradScaler(device.type, enabled=run.dtype == torch.float16)
    run.loss_fn = make_loss(tc, ignore_index=palette.ignore_index)
    run.val_loss_fn = objective_loss(ignore_index=palette.ignore_index)
    ckpt = resumed.record if resumed is not None else None
    run.horizon = tc.epochs
    if ckpt is not None and ckpt.schedule_epochs is not None:
        run.horizon = int(ckpt.schedule_epochs)
    run.train_ds, run.val_ds, run.stats = make_datasets(run.cache, run.config, run.split)
    if resumed is not None:
        run.model.load_state_dict(resumed.states["model"])
        run.optimizer.load_state_dict(resumed.states["optimizer"])
        run.history = list(resumed.record.history)
        run.best_val = float(resumed.record.best_val_loss)
        run.best_epoch = resumed.record.best_epoch
        run.start_epoch = resumed.record.epoch + 1
        log.info("resuming %s at epoch %d", run.out, run.start_epoch)


def _train_epochs(run: _Training, callback: Callback) -> tuple[str, str]:
    """Train from the run's next epoch to its last; the status it ended with and why."""
    tc = run.config.train
    for epoch in range(run.start_epoch, tc.epochs + 1):
        if not callback.on_epoch_start(epoch):
            return "stopped", "stopped by callback before the epoch"
        row = _train_one(run, epoch)
        if isinstance(row, str):
            return "diverged", row
        run.history.append(row)
        improved = row["val_loss"] < run.best_val
        if improved:
            run.best_val, run.best_epoch = row["val_loss"], epoch
        _save_epoch(run, epoch, improved)
        log.info(
            "epoch %d: train loss %.4f, val loss %.4f, val mIoU %.3f",
            epoch,
            row["train_loss"],
            row["val_loss"],
            row["val_mean_iou"],
        )
        callback.on_epoch_end(epoch, row)
    return "completed", ""


def _train_one(run: _Training, epoch: int) -> EpochRecord | str:
    """Train and validate one epoch: its row of the history, or why it diverged."""
    tc, palette, t0 = run.config.train, run.cache.palette, time.perf_counter()
    # Seeds per epoch, so a resumed run draws the same batches and dropout masks as an unbroken one.
    torch.manual_seed(tc.seed * 100_003 + epoch)
    run.train_ds.rng = np.random.default_rng([tc.seed, epoch])
    order = (
        torch.randperm(len(run.train_ds), generator=torch.Generator().manual_seed(tc.seed + epoch))
        if tc.shuffle
        else torch.arange(len(run.train_ds))
    )
    train_metrics = SegmentationMetrics(palette.names, ignore_index=palette.ignore_index, device=run.device)
    epoch_stats = train_epoch(
        run.step_model,
        run.optimizer,
        run.loss_fn,
        run.train_ds,
        order.tolist(),
        batch_size=tc.batch_size,
        device=run.device,
        dtype=run.dtype,
        channels_last=run.speed.channels_last,
        metrics=train_metrics,
        scaler=run.scaler,
        desc=f"epoch {epoch}/{tc.epochs}",
        progress=tc.progress,
        schedule=None
        if tc.schedule == "constant"
        else lambda batch, batches: learning_rate(tc, epoch, batch, batches, run.horizon),
    )
    if epoch_stats.diverged:
        reason = f"training loss became non-finite in epoch {epoch}"
        log.warning("%s: %s", run.out, reason)
        return reason
    val_metrics = evaluate(
        run.step_model,
        run.val_ds,
        palette,
        batch_size=max(tc.batch_size, 8),
        device=run.device,
        loss_fn=run.val_loss_fn,
        dtype=run.dtype,
        channels_last=run.speed.channels_last,
    )
    metrics = {**train_metrics.compute("train_"), **val_metrics.compute("val_")}
    row = EpochRecord(epoch, metrics, seconds=time.perf_counter() - t0)
    log.debug(
        "epoch %d: %.1f s training, of which %.1f s waiting for data",
        epoch,
        epoch_stats.seconds,
        epoch_stats.data_seconds,
    )
    if not math.isfinite(row["val_loss"]):
        return f"validation loss became non-finite in epoch {epoch}"
    return row


def _save_epoch(run: _Training, epoch: int, improved: bool) -> None:
    """Write the epoch's checkpoints (``last.pt``, and ``best.pt`` when it improved), history and pending settings."""
    record = Checkpoint(
        config=run.config,
        palette=run.cache.palette,
        bands=run.cache.bands,
        epoch=epoch,
        split=run.split,
        history=tuple(run.history),
        best_val_loss=run.best_val,
        best_epoch=run.best_epoch,
        norm_stats=run.stats,
        schedule_epochs=run.horizon,
    )
    ckpt_dir, weights = run.out / "checkpoints", run.model.state_dict()
    save_checkpoint(record.to_state(weights, run.optimizer.state_dict()), ckpt_dir / "last.pt")
    if improved:
        save_checkpoint(record.to_state(weights, None), ckpt_dir / "best.pt")
    _write_history(run.out, run.history)
    if run.settings_pending:
        run.write_settings()
        run.settings_pending = False


def _finish(run: _Training, status: str, reason: str) -> RunResult:
    """Write ``metrics.json`` (and the history, and a resumed run's settings) and return the result."""
    dtype, split = run.dtype, run.split
    record = RunMetrics(
        status=status,
        reason=reason,
        epochs=len(run.history),
        best_epoch=run.best_epoch,
        best_val_loss=run.best_val if run.best_epoch else None,
        final=run.history[-1].to_json() if run.history else {},
        device=str(run.device),
        precision=str(dtype).replace("torch.", "") if dtype else "fp32",
        patches={"train": len(split.train), "val": len(split.val)},
    )
    if run.settings_pending and status == "completed":  # resumed with nothing left to train
        run.write_settings()
    _write_history(run.out, run.history)
    record.write(run.out / RunMetrics.FILE)
    return RunResult(run.out, status, len(run.history), run.best_epoch, run.best_val, run.history, record, reason)


def _write_history(out: Path, history: list[EpochRecord]) -> None:
    """Write ``history.json`` and ``history.csv`` (the same rows)."""
    rows = [row.to_json() for row in history]
    write_json(out / "history.json", rows)
    if not rows:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "history.csv", text.getvalue())  # atomic, and no temporary file left on a failed write
