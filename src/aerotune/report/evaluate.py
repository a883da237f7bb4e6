"""Evaluating a run's best checkpoint again on chosen patches: metrics, confusion matrix, binned PR curves.

Curves are accumulated in bounded memory: ``curves.BinnedCurve`` keeps the table of counts of torchmetrics'
``MulticlassPrecisionRecallCurve`` with a fixed number of thresholds (``thresholds x classes x 2 x 2``), in one
pass over the scores, never the pixel scores themselves (about 100 million one-hot scores for the Dubai
validation set at 256x256). The reference's pooled curve
(every one-hot pixel against its softmax score) is the sum of those per-class tables over classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from aerotune.curves import BinnedCurve, pr_summary
from aerotune.errors import RunError
from aerotune.train.records import TrainingRun


@dataclass
class ModelEval:
    """Metrics of one model on the validation (and a sample of the training) patches."""

    val: dict[str, float]
    train: dict[str, float]
    confusion: list[list[int]]  # rows: truth, columns: prediction (ignored pixels skipped)
    thresholds: list[float]
    pr_class: list[dict[str, list[float]]]  # per class: precision, recall
    pr_pooled: dict[str, list[float]]
    ap_class: list[float]
    ap_pooled: float
    predictions: np.ndarray  # (n, P, P) class ids of the shown patches
    train_patches: int = 0
    val_patches: int = 0


def open_run_cache(run: TrainingRun):
    """The patch cache a run was trained on, with a fix in the message when it is gone."""
    from aerotune.data.patches import is_cache, open_cache

    if not is_cache(run.cache_path):
        raise RunError(
            f"{run.path}: its patch cache {run.cache_path} is gone; prepare it again with "
            "aerotune data prepare ROOT --out CACHE (same settings) and update data.json"
        )
    return open_cache(run.cache_path)


def pick_patches(count: int, n: int, seed: int) -> list[int]:
    """Positions of ``n`` of ``count`` validation patches, drawn with ``seed`` (the same for every model)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(count, size=min(n, count), replace=False).tolist())


def evaluate_model(
    run: TrainingRun,
    cache,
    val_indices: list[int],
    train_indices: list[int],
    shown: list[int],
    *,
    thresholds: int = 101,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> ModelEval:
    """Evaluate ``run``'s best checkpoint on cache patches ``val_indices`` (with curves) and ``train_indices``.

    ``shown`` are positions in ``val_indices`` whose predictions are returned for the patch figure.
    """
    import torch

    from aerotune.data.dataset import PatchDataset
    from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint
    from aerotune.model.losses import make_loss
    from aerotune.runtime import select_device
    from aerotune.train.fit import evaluate

    ckpt = load_checkpoint(run.checkpoint)
    model, config, palette = model_from_checkpoint(ckpt, where=run.checkpoint)
    if palette.to_dict() != cache.palette.to_dict():
        raise RunError(
            f"{run.checkpoint}: model classes {list(palette.names)} differ from the patch cache's "
            f"{list(cache.palette.names)}; compare runs of the same dataset"
        )
    depth_factor = 2 ** (config.model.depth - 1)
    if cache.patch_size % depth_factor:
        raise RunError(
            f"{run.path}: a depth-{config.model.depth} U-Net needs patches whose side is a multiple of "
            f"{depth_factor}, but the patches are {cache.patch_size} px; compare runs of the same "
            "patch size"
        )
    dev = select_device(device)
    model = model.to(dev)
    stats = ckpt.get("norm_stats")
    norm = config.data.normalization
    if norm == "meanstd" and not stats:
        from aerotune.data.dataset import channel_stats

        stats = channel_stats(cache, run.split.train)
    stats = tuple(stats) if stats else None
    loss_fn = make_loss(config.train, ignore_index=palette.ignore_index)
    batch = max(config.train.batch_size, 8)  # as in training, so the loss matches the run's history
    c = palette.num_classes

    curve = BinnedCurve(c, thresholds)  # torchmetrics' counts, in one pass instead of one per threshold

    def extra(logits: torch.Tensor, y: torch.Tensor) -> None:
        valid = y != palette.ignore_index
        if valid.any():
            probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[valid]  # (pixels, classes)
            curve.update(probs, y[valid])

    val_ds = PatchDataset(cache, val_indices, normalization=norm, stats=stats)
    if progress:
        progress("validation patches")
    val_metrics = evaluate(model, val_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn, extra=extra)
    train_values: dict[str, float] = {}
    if train_indices:
        if progress:
            progress("training patches")
        train_ds = PatchDataset(cache, train_indices, normalization=norm, stats=stats)
        train_values = evaluate(model, train_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn).compute()

    pr_class, ap_class, pooled, ap_pooled = pr_summary(curve.confmat)

    with torch.no_grad():
        x, _ = val_ds.batch(shown) if shown else (None, None)
        preds = (
            model(x.to(dev)).argmax(dim=1).to(torch.uint8).cpu().numpy()
            if shown
            else np.zeros((0, cache.patch_size, cache.patch_size), np.uint8)
        )
    return ModelEval(
        val=val_metrics.compute(),
        train=train_values,
        confusion=val_metrics.confusion_matrix(),
        thresholds=curve.thresholds.tolist(),
        pr_class=pr_class,
        pr_pooled=pooled,
        ap_class=ap_class,
        ap_pooled=ap_pooled,
        predictions=preds,
        train_patches=len(train_indices),
        val_patches=len(val_indices),
    )
