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

    ``shown`` are positions in ``val_indices`` whose predictions are returned for the patch figure. Pixels of the
    cache's ignore index are skipped in every number: the padding of ``mode = full`` patches, and unknown mask colours
    only where the cache was cut with ``data.unknown_colors = ignore`` (else ``data prepare`` refused them).
    """
    from aerotune.data.dataset import PatchDataset
    from aerotune.model.losses import make_loss
    from aerotune.runtime import select_device
    from aerotune.train.fit import evaluate

    say = progress or (lambda _what: None)
    model, config, palette, stats = _load_model(run, cache)
    dev = select_device(device)
    model = model.to(dev)
    loss_fn = make_loss(config.train, ignore_index=palette.ignore_index)
    batch = max(config.train.batch_size, 8)  # as in training, so the loss matches the run's history
    norm = config.data.normalization
    # torchmetrics' counts of the precision-recall curves, in one pass instead of one per threshold
    curve = BinnedCurve(palette.num_classes, thresholds)
    val_ds = PatchDataset(cache, val_indices, normalization=norm, stats=stats)
    say("validation patches")
    val_metrics = evaluate(
        model, val_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn, extra=_curve_update(curve, palette)
    )
    train_values: dict[str, float] = {}
    if train_indices:
        say("training patches")
        train_ds = PatchDataset(cache, train_indices, normalization=norm, stats=stats)
        train_values = evaluate(model, train_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn).compute()
    pr_class, ap_class, pooled, ap_pooled = pr_summary(curve.confmat)
    return ModelEval(
        val=val_metrics.compute(),
        train=train_values,
        confusion=val_metrics.confusion_matrix(),
        thresholds=curve.thresholds.tolist(),
        pr_class=pr_class,
        pr_pooled=pooled,
        ap_class=ap_class,
        ap_pooled=ap_pooled,
        predictions=_predict(model, val_ds, shown, dev, cache.patch_size),
        train_patches=len(train_indices),
        val_patches=len(val_indices),
    )


def _load_model(run: TrainingRun, cache):
    """The run's best checkpoint as a model, with its config, palette and normalisation statistics; checked to fit
    the cache's classes and patch size."""
    from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint

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
    stats = ckpt.get("norm_stats")
    if config.data.normalization == "meanstd" and not stats:
        from aerotune.data.dataset import channel_stats

        stats = channel_stats(cache, run.split.train)
    return model, config, palette, tuple(stats) if stats else None


def _curve_update(curve: BinnedCurve, palette) -> Callable:
    """An ``extra(logits, y)`` for ``train.fit.evaluate``: the softmax scores of the labelled pixels into ``curve``."""

    def extra(logits, y) -> None:
        valid = y != palette.ignore_index
        if valid.any():
            curve.update(logits.softmax(dim=1).permute(0, 2, 3, 1)[valid], y[valid])  # (pixels, classes)

    return extra


def _predict(model, dataset, shown: list[int], dev, patch_size: int) -> np.ndarray:
    """Class ids predicted for the ``shown`` patches of ``dataset`` (for the patch figure)."""
    import torch

    if not shown:
        return np.zeros((0, patch_size, patch_size), np.uint8)
    with torch.no_grad():
        x, _ = dataset.batch(shown)
        return model(x.to(dev)).argmax(dim=1).to(torch.uint8).cpu().numpy()
