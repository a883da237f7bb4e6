"""Losses on logits that skip the ignore label.

``dice_focal`` reproduces segmentation_models' ``DiceLoss(class_weights=1/C) + 1 * CategoricalFocalLoss()``
as the reference used it, so loss values are comparable with its published 0.907:

* dice: per-class soft F1 over the whole batch, smooth 1e-5, weighted by 1/C and *averaged*, so
  ``loss = 1 - mean_c(dice_c / C)`` (segmentation_models multiplies by the weights before averaging);
  its range is [1 - 1/C, 1], which is why the reference's losses sit near 0.9;
* focal: ``-alpha (1 - p)^gamma log p`` on the true class, averaged over pixels *and* classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aerotune.config import TrainConfig

SMOOTH = 1e-5


def dice_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int,
    dice_weight: float = 1.0,
    focal_weight: float = 1.0,
    gamma: float = 2.0,
    alpha: float = 0.25,
) -> torch.Tensor:
    """logits ``(B, C, H, W)``, target ``(B, H, W)`` of class ids (``ignore_index`` skipped)."""
    c = logits.shape[1]
    logits = logits.float()
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    log_p = F.log_softmax(logits, dim=1)
    p = log_p.exp()
    # one-hot as a comparison (one byte per element, already in the logits' layout), not F.one_hot's int64
    classes = torch.arange(c, device=target.device).view(1, c, 1, 1)
    onehot = ((safe.unsqueeze(1) == classes) & valid.unsqueeze(1)).to(p.dtype)
    mask = valid.unsqueeze(1).to(p.dtype)
    pm = p * mask
    tp = (pm * onehot).sum(dim=(0, 2, 3))
    fp = pm.sum(dim=(0, 2, 3)) - tp
    fn = onehot.sum(dim=(0, 2, 3)) - tp
    dice = (2 * tp + SMOOTH) / (2 * tp + fn + fp + SMOOTH)
    dice_loss = 1 - (dice / c).mean()
    n_valid = valid.sum().clamp_min(1)
    # log p of the true class (0 where ignored)
    log_pt = torch.where(valid, log_p.gather(1, safe.unsqueeze(1)).squeeze(1), 0.0)
    pt = log_pt.exp()
    focal = -(alpha * (1 - pt) ** gamma * log_pt * valid).sum() / (n_valid * c)
    return dice_weight * dice_loss + focal_weight * focal


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, *, ignore_index: int) -> torch.Tensor:
    if not (target != ignore_index).any():
        return logits.float().sum() * 0.0
    return F.cross_entropy(logits.float(), target, ignore_index=ignore_index)


def make_loss(config: TrainConfig, *, ignore_index: int):
    """The configured loss as ``f(logits, target) -> scalar``."""
    if config.loss == "cross_entropy":
        return lambda logits, target: cross_entropy_loss(logits, target, ignore_index=ignore_index)
    return lambda logits, target: dice_focal_loss(
        logits,
        target,
        ignore_index=ignore_index,
        dice_weight=config.dice_weight,
        focal_weight=config.focal_weight,
        gamma=config.focal_gamma,
        alpha=config.focal_alpha,
    )


def objective_loss(*, ignore_index: int):
    """The validation loss every run reports and tuning minimises: the reference's dice + focal loss with its
    weights, whatever the run trains with, so runs with other losses or loss weights stay comparable (and the
    figure stays comparable with the reference's published 0.907)."""
    return make_loss(TrainConfig(loss="dice_focal", dice_weight=1.0, focal_weight=1.0), ignore_index=ignore_index)
