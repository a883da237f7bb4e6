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


class BinnedCurve:
    """The same ``(thresholds, classes, 2, 2)`` counts as torchmetrics' ``MulticlassPrecisionRecallCurve``
    with ``thresholds`` equally spaced thresholds, in one pass over the scores instead of one per threshold.

    Each score is put in the bin of the thresholds it reaches (``score >= t``, the same float comparison);
    a reversed running sum over the bins then counts, for every threshold, the pairs predicted positive.
    """

    def __init__(self, num_classes: int, thresholds: int = 101) -> None:
        import torch

        self.num_classes = num_classes
        self.thresholds = torch.linspace(0, 1, thresholds)
        self._counts = torch.zeros(num_classes * 2 * (thresholds + 1), dtype=torch.int64)

    def update(self, probs, target) -> None:
        """``probs`` (pixels, classes) scores, ``target`` (pixels,) class ids."""
        import torch

        t = len(self.thresholds)
        edges = self.thresholds.to(probs.device)
        reached = torch.bucketize(probs.float().contiguous(), edges, right=True)  # how many thresholds <= score
        truth = torch.nn.functional.one_hot(target.long(), self.num_classes)
        classes = torch.arange(self.num_classes, device=probs.device)
        index = (classes * 2 + truth) * (t + 1) + reached
        self._counts += torch.bincount(index.flatten(), minlength=self._counts.numel()).cpu()

    @property
    def confmat(self):
        """``(thresholds, classes, 2, 2)`` counts: ``[t, c, truth, predicted]``."""
        import torch

        t = len(self.thresholds)
        counts = self._counts.view(self.num_classes, 2, t + 1)
        # pairs whose score reaches threshold i: those in bins i+1 .. t
        positive = counts.flip(-1).cumsum(-1).flip(-1)[..., 1:]  # (classes, truth, thresholds)
        total = counts.sum(-1, keepdim=True)
        out = torch.empty((t, self.num_classes, 2, 2), dtype=torch.int64)
        out[..., 1] = positive.permute(2, 0, 1)
        out[..., 0] = (total - positive).permute(2, 0, 1)
        return out
