"""``fit(config, data, out) -> RunResult``: train one U-Net and write its run folder.

Run folder: ``config.json`` (resolved), ``split.json``, ``history.csv`` / ``history.json``,
``checkpoints/best.pt`` and ``last.pt`` (state dicts with their config, loadable with
``weights_only=True``), ``metrics.json`` (final metrics and status). Running ``fit`` again on the same
folder resumes from ``last.pt``; a larger ``train.epochs`` continues a finished run.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aerotune.config import RunConfig
from aerotune.data.dataset import PatchDataset, Split, channel_stats, make_split
from aerotune.data.palette import Palette
from aerotune.data.patches import PatchCache
from aerotune.errors import RunError
from aerotune.files import write_json
from aerotune.model.losses import make_loss
from aerotune.model.unet import UNet, build_model
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.step import autocast, make_optimizer, prepare_model, resolve_speed, to_device, train_epoch

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


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"train.device = {name!r} but no CUDA device is available; use --set train.device=cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast is faster than fp32.

    Elsewhere oneDNN emulates bf16 and autocast would slow training down, so ``auto`` keeps fp32.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting, or None for fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); a bad file is a ``RunError``."""
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise RunError(f"{path}: cannot load checkpoint ({str(exc).splitlines()[0]}); train again") from None


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[UNet, RunConfig, Palette]:
    """Rebuild the network, its config and palette from a checkpoint."""
    config = RunConfig.from_dict(ckpt["config"], where="checkpoint")
    palette = Palette.from_dict(ckpt["palette"])
    model = build_model(config.model, num_classes=palette.num_classes)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, config, palette


def make_datasets(cache: PatchCache, config: RunConfig, split: Split) -> tuple[PatchDataset, PatchDataset, Any]:
    d = config.data
    stats = channel_stats(cache, split.train) if d.normalization == "meanstd" else None
    train = PatchDataset(cache, split.train, normalization=d.normalization, stats=stats, augment=d.augment,
                         seed=config.train.seed)
    val = PatchDataset(cache, split.val, normalization=d.normalization, stats=stats)
    return train, val, stats


@torch.inference_mode()
def evaluate(model: torch.nn.Module, dataset: PatchDataset, palette: Palette, *, batch_size: int,
             device: torch.device, loss_fn: Callable | None = None, dtype: torch.dtype | None = None,
             extra: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
             channels_last: bool | None = None) -> SegmentationMetrics:
    """Run the model over a dataset in eval mode and accumulate metrics (and ``extra(logits, y)``).

    ``channels_last`` None: on CUDA only. Metrics and loss accumulate on the device.
    """
    model.eval()
    channels_last = device.type == "cuda" if channels_last is None else channels_last
    metrics = SegmentationMetrics(palette.names, ignore_index=palette.ignore_index, device=device)
    for start in range(0, len(dataset), batch_size):
        x, y = dataset.batch(list(range(start, min(start + batch_size, len(dataset)))))
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(x)
        metrics.update(logits, y, loss_fn(logits, y) if loss_fn else None)
        if extra:
            extra(logits.float(), y)
    return metrics


def fit(config: RunConfig, cache: PatchCache, out: str | Path, *, split: Split | None = None,
        callback: Callback | None = None, resume: bool = True) -> RunResult:
    """Train the configured U-Net on a patch cache and write the run folder ``out``."""
    config.validate()
    out = Path(out)
    tc = config.train
    palette = cache.palette
    split = split or make_split(cache, config.data)
    callback = callback or Callback()
    device = select_device(tc.device)
    dtype = autocast_dtype(tc.precision, device)
    if tc.threads:
        torch.set_num_threads(tc.threads)

    ckpt_dir = out / "checkpoints"
    state = None
    if resume and (ckpt_dir / "last.pt").is_file():
        state = load_checkpoint(ckpt_dir / "last.pt")
        old = RunConfig.from_dict(state["config"], where=str(ckpt_dir / "last.pt"))
        if _without_epochs(old) != _without_epochs(config):
            raise RunError(f"{out}: run folder holds a run with a different config; choose a new --out "
                           "or repeat the same settings to resume")
        split = Split.from_dict(state["split"])
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
    write_json(out / "split.json", split.to_dict())
    write_json(out / "data.json", {"cache": str(cache.root.resolve())})

    torch.manual_seed(tc.seed)
    speed = resolve_speed(tc, device)
    model = build_model(config.model, num_classes=palette.num_classes).to(device)
    step_model = prepare_model(model, speed)  # model itself, or its compiled wrapper (same parameters)
    optimizer = make_optimizer(model, tc.learning_rate, speed)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = make_loss(tc, ignore_index=palette.ignore_index)
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
        order = (torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(tc.seed + epoch))
                 if tc.shuffle else torch.arange(len(train_ds)))
        train_metrics = SegmentationMetrics(palette.names, ignore_index=palette.ignore_index, device=device)
        epoch_stats = train_epoch(step_model, optimizer, loss_fn, train_ds, order.tolist(), batch_size=tc.batch_size,
                            device=device, dtype=dtype, channels_last=speed.channels_last, metrics=train_metrics,
                            scaler=scaler, desc=f"epoch {epoch}/{tc.epochs}", progress=tc.progress)
        if epoch_stats.diverged:
            status, reason = "diverged", f"training loss became non-finite in epoch {epoch}"
            log.warning("%s: %s", out, reason)
            break
        val_metrics = evaluate(step_model, val_ds, palette, batch_size=max(tc.batch_size, 8), device=device,
                               loss_fn=loss_fn, dtype=dtype, channels_last=speed.channels_last)
        record = {"epoch": epoch, **train_metrics.compute("train_"), **val_metrics.compute("val_"),
                  "seconds": time.perf_counter() - t0}
        log.debug("epoch %d: %.1f s training, of which %.1f s waiting for data", epoch, epoch_stats.seconds,
                  epoch_stats.data_seconds)
        if not math.isfinite(record["val_loss"]):
            status, reason = "diverged", f"validation loss became non-finite in epoch {epoch}"
            break
        history.append(record)
        improved = record["val_loss"] < best_val
        if improved:
            best_val, best_epoch = record["val_loss"], epoch
        ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "config": config.to_dict(), "palette": palette.to_dict(), "split": split.to_dict(),
                "history": history, "best_val_loss": best_val, "best_epoch": best_epoch,
                "norm_stats": list(stats) if stats else None}
        _save(ckpt, ckpt_dir / "last.pt")
        if improved:
            _save({k: v for k, v in ckpt.items() if k != "optimizer"}, ckpt_dir / "best.pt")
        _write_history(out, history)
        log.info("epoch %d: train loss %.4f, val loss %.4f, val mIoU %.3f", epoch, record["train_loss"],
                 record["val_loss"], record["val_mean_iou"])
        callback.on_epoch_end(epoch, record)

    final = history[-1] if history else {}
    metrics = {"status": status, "reason": reason, "epochs": len(history), "best_epoch": best_epoch,
               "best_val_loss": best_val if best_epoch else None, "final": final,
               "device": str(device), "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
               "patches": {"train": len(split.train), "val": len(split.val)}}
    _write_history(out, history)
    write_json(out / "metrics.json", metrics)
    return RunResult(out, status, len(history), best_epoch, best_val, history, metrics, reason)


def _without_epochs(config: RunConfig) -> dict[str, Any]:
    d = config.to_dict()
    d["train"].pop("epochs")
    d["train"].pop("progress")
    for key in ("threads", "channels_last", "fused_adam", "compile", "fast_dropout"):  # how to compute, not what
        d["train"].pop(key)
    return d


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    write_json(out / "history.json", history)
    if not history:
        return
    tmp = out / "history.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0].keys()))
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out / "history.csv")
