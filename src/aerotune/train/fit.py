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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aerotune import interrupts
from aerotune.config import RunConfig, keys_with_role
from aerotune.data.dataset import PatchDataset, Split, channel_stats, make_split
from aerotune.data.palette import Palette
from aerotune.data.patches import PatchCache
from aerotune.errors import AerotuneError, RunError
from aerotune.files import resolved, write_json, write_text
from aerotune.model.checkpoint import load_checkpoint, save_checkpoint
from aerotune.model.losses import make_loss, objective_loss
from aerotune.model.unet import build_model
from aerotune.outputs import output_kind, writing
from aerotune.runtime import autocast, autocast_dtype, select_device, torch_threads
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.records import DataRecord, RunMetrics
from aerotune.train.step import (
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
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


class Callback:
    """Hooks into the epoch loop (used by tuning for pruning and the epoch budget)."""

    def on_epoch_start(self, epoch: int) -> bool:
        """Return False to stop before training this epoch (1-based)."""
        return True

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
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
        window=d.window_side(2 ** (config.model.depth - 1)),
        seed=config.train.seed,
    )
    val = PatchDataset(cache, split.val, normalization=d.normalization, stats=stats)
    return train, val, stats


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
        x, y = dataset.batch(list(range(start, min(start + batch_size, len(dataset)))), device)
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(x)
        metrics.update(logits, y, loss_fn(logits, y) if loss_fn else None)
        if extra:
            extra(logits.float(), y)
    return metrics


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


def _fit(
    config: RunConfig,
    cache: PatchCache,
    out: str | Path,
    *,
    split: Split | None,
    callback: Callback | None,
    resume: bool,
) -> RunResult:
    config.validate()
    out = Path(out)
    tc = config.train
    palette = cache.palette
    split = split or make_split(cache, config.data)
    callback = callback or Callback()
    device = select_device(tc.device)
    dtype = autocast_dtype(tc.precision, device)

    ckpt_dir = out / "checkpoints"
    state = check_resume(out, config) if resume else None
    if state is not None:
        split = Split.from_dict(state["split"])
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    def write_settings() -> None:
        write_json(out / "config.json", config.to_dict())
        write_json(out / "split.json", split.to_dict())
        DataRecord(cache=str(cache.root.resolve())).write(out / DataRecord.FILE)

    # A resumed run records its new settings only with its next checkpoint: a resume that fails (full disk,
    # Ctrl-C) leaves the run's files as they were.
    settings_pending = state is not None
    if not settings_pending:
        write_settings()

    torch.manual_seed(tc.seed)
    speed = resolve_speed(tc, device)
    model = build_model(config.model, num_classes=palette.num_classes, in_channels=cache.bands.count).to(device)
    step_model = prepare_model(model, speed)  # model itself, or its compiled wrapper (same parameters)
    optimizer = make_optimizer(model, tc, speed)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = make_loss(tc, ignore_index=palette.ignore_index)
    val_loss_fn = objective_loss(ignore_index=palette.ignore_index)
    horizon = int(state.get("schedule_epochs", tc.epochs)) if state is not None else tc.epochs
    train_ds, val_ds, stats = make_datasets(cache, config, split)

    history: list[dict[str, Any]] = []
    best_val, best_epoch, start_epoch = math.inf, None, 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        best_val = float(state["best_val_loss"])
        best_epoch = state["best_epoch"]
        start_epoch = int(state["epoch"]) + 1
        log.info("resuming %s at epoch %d", out, start_epoch)

    status, reason = "completed", ""
    for epoch in range(start_epoch, tc.epochs + 1):
        if not callback.on_epoch_start(epoch):
            status, reason = "stopped", "stopped by callback before the epoch"
            break
        t0 = time.perf_counter()
        # Seeds per epoch, so a resumed run draws the same batches and dropout masks as an unbroken one.
        torch.manual_seed(tc.seed * 100_003 + epoch)
        train_ds.rng = np.random.default_rng([tc.seed, epoch])
        order = (
            torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(tc.seed + epoch))
            if tc.shuffle
            else torch.arange(len(train_ds))
        )
        train_metrics = SegmentationMetrics(palette.names, ignore_index=palette.ignore_index, device=device)
        epoch_stats = train_epoch(
            step_model,
            optimizer,
            loss_fn,
            train_ds,
            order.tolist(),
            batch_size=tc.batch_size,
            device=device,
            dtype=dtype,
            channels_last=speed.channels_last,
            metrics=train_metrics,
            scaler=scaler,
            desc=f"epoch {epoch}/{tc.epochs}",
            progress=tc.progress,
            schedule=None
            if tc.schedule == "constant"
            else lambda batch, batches, epoch=epoch: learning_rate(tc, epoch, batch, batches, horizon),
        )
        if epoch_stats.diverged:
            status, reason = "diverged", f"training loss became non-finite in epoch {epoch}"
            log.warning("%s: %s", out, reason)
            break
        val_metrics = evaluate(
            step_model,
            val_ds,
            palette,
            batch_size=max(tc.batch_size, 8),
            device=device,
            loss_fn=val_loss_fn,
            dtype=dtype,
            channels_last=speed.channels_last,
        )
        record = {
            "epoch": epoch,
            **train_metrics.compute("train_"),
            **val_metrics.compute("val_"),
            "seconds": time.perf_counter() - t0,
        }
        log.debug(
            "epoch %d: %.1f s training, of which %.1f s waiting for data",
            epoch,
            epoch_stats.seconds,
            epoch_stats.data_seconds,
        )
        if not math.isfinite(record["val_loss"]):
            status, reason = "diverged", f"validation loss became non-finite in epoch {epoch}"
            break
        history.append(record)
        improved = record["val_loss"] < best_val
        if improved:
            best_val, best_epoch = record["val_loss"], epoch
        ckpt = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "config": config.to_dict(),
            "palette": palette.to_dict(),
            "bands": cache.bands.to_dict(),  # the input: band count, GeoTIFF bands and scaling, for predict
            "split": split.to_dict(),
            "history": history,
            "best_val_loss": best_val,
            "best_epoch": best_epoch,
            "norm_stats": list(stats) if stats else None,
            "schedule_epochs": horizon,  # the learning-rate schedule's length, kept when a run is continued
        }
        with interrupts.deferred():  # an epoch's files are written together: Ctrl-C lands after all of them
            save_checkpoint(ckpt, ckpt_dir / "last.pt")
            if improved:
                save_checkpoint({k: v for k, v in ckpt.items() if k != "optimizer"}, ckpt_dir / "best.pt")
            _write_history(out, history)
            if settings_pending:
                write_settings()
                settings_pending = False
        log.info(
            "epoch %d: train loss %.4f, val loss %.4f, val mIoU %.3f",
            epoch,
            record["train_loss"],
            record["val_loss"],
            record["val_mean_iou"],
        )
        callback.on_epoch_end(epoch, record)

    final = history[-1] if history else {}
    record = RunMetrics(
        status=status,
        reason=reason,
        epochs=len(history),
        best_epoch=best_epoch,
        best_val_loss=best_val if best_epoch else None,
        final=final,
        device=str(device),
        precision=str(dtype).replace("torch.", "") if dtype else "fp32",
        patches={"train": len(split.train), "val": len(split.val)},
    )
    if settings_pending and status == "completed":  # resumed with nothing left to train
        write_settings()
    _write_history(out, history)
    record.write(out / RunMetrics.FILE)
    metrics = record.to_json()
    return RunResult(out, status, len(history), best_epoch, best_val, history, metrics, reason)


def check_resume(out: Path, config: RunConfig) -> dict[str, Any] | None:
    """The checkpoint to resume ``out`` from (None for a fresh run), checked against ``config``.

    Called before anything is written: a run folder that holds a run with other settings is refused whole.
    """
    last = Path(out) / "checkpoints" / "last.pt"
    if not last.is_file():
        return None
    state = load_checkpoint(last)
    try:
        old = RunConfig.from_dict(state["config"], where=str(last))
    except AerotuneError as exc:
        raise RunError(f"{last}: cannot read the run's settings ({exc}); choose a new --out") from None
    mine, theirs = _without_epochs(config), _without_epochs(old)
    if mine != theirs:
        key = next(f"{s}.{k}" for s in mine for k in mine[s] if mine[s][k] != theirs.get(s, {}).get(k))
        raise RunError(
            f"{out}: run folder holds a run with a different config ({key} = {_get(theirs, key)!r}, "
            f"not {_get(mine, key)!r}); repeat its settings to resume it, or choose a new --out"
        )
    if "split" not in state:
        raise RunError(f"{last}: checkpoint has no split; it was not written by aerotune train; choose a new --out")
    return state


def _get(d: dict[str, Any], key: str) -> Any:
    section, name = key.split(".", 1)
    return d.get(section, {}).get(name)


def _without_epochs(config: RunConfig) -> dict[str, Any]:
    """The settings a resumed run must repeat: all but its length and how it runs (progress bars, threads)."""
    d = config.to_dict()
    for key in keys_with_role("resource", "runtime"):
        section, name = key.split(".", 1)
        if key != "train.device":  # a run resumes on the device it started on
            d[section].pop(name)
    return d


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json(out / "history.json", history)
    if not history:
        return
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(history[0].keys()))
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "history.csv", text.getvalue())  # atomic, and no temporary file left on a failed write
