"""Precision-recall curves and average precision from binned counts: pure maths, shared by report and training.

The counts are torchmetrics' ``(thresholds, classes, 2, 2)`` table of a ``MulticlassPrecisionRecallCurve``
with fixed thresholds, so curves over millions of pixels take bounded memory.
"""

from __future__ import annotations

import math


def pr_summary(confmat) -> tuple[list[dict[str, list[float]]], list[float], dict[str, list[float]], float]:
    """Per-class curves and AP, and the pooled curve and AP, from ``(thresholds, classes, 2, 2)`` counts.

    The pooled curve (every one-hot (pixel, class) pair against its score) counts the same true and false
    positives as all per-class curves together, so its table is their sum over classes.
    """
    confmat = confmat.double()
    pr_class, ap_class = [], []
    for k in range(confmat.shape[1]):
        p, r = pr_from_counts(confmat[:, k])
        pr_class.append({"precision": p.tolist(), "recall": r.tolist()})
        # A class absent from the validation pixels has no recall and no AP.
        ap_class.append(average_precision(p, r) if confmat[0, k, 1].sum() > 0 else math.nan)
    p, r = pr_from_counts(confmat.sum(dim=1))
    return pr_class, ap_class, {"precision": p.tolist(), "recall": r.tolist()}, average_precision(p, r)


def pr_from_counts(confmat):
    """Precision and recall per threshold from ``(thresholds, 2, 2)`` counts (NaN where undefined)."""
    import torch

    tp, fp, fn = confmat[:, 1, 1], confmat[:, 0, 1], confmat[:, 1, 0]
    nan = torch.tensor(math.nan, dtype=torch.float64)
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), nan)
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), nan)
    return precision, recall


def average_precision(precision, recall) -> float:
    """Step-wise area under a binned PR curve, as torchmetrics computes it with fixed thresholds."""
    import torch

    p = torch.cat([precision.nan_to_num(0.0), torch.ones(1, dtype=precision.dtype)])
    r = torch.cat([recall.nan_to_num(0.0), torch.zeros(1, dtype=recall.dtype)])
    return float(-torch.sum((r[1:] - r[:-1]) * p[:-1]))
