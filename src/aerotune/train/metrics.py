"""Segmentation metrics accumulated over an epoch with torchmetrics, in bounded memory.

Two families:

* per class, from a confusion matrix of argmax predictions (pixels with the ignore label are
  skipped): IoU, precision, recall, F1, pixel accuracy, mean IoU (with and without a class named
  "Unlabeled");
* the reference's Keras precision/recall: every (pixel, class) pair of the one-hot target against the
  softmax score thresholded at 0.5, pooled over classes.
"""

from __future__ import annotations

import torch
from torchmetrics.classification import BinaryStatScores, MulticlassConfusionMatrix


class SegmentationMetrics:
    """Accumulates metrics batch by batch; :meth:`compute` returns a flat dict of floats."""

    def __init__(self, class_names: list[str] | tuple[str, ...], *, ignore_index: int) -> None:
        self.names = list(class_names)
        self.ignore_index = ignore_index
        c = len(self.names)
        self.confusion = MulticlassConfusionMatrix(c, ignore_index=ignore_index)
        self.pooled = BinaryStatScores(threshold=0.5)
        self.loss_sum = 0.0
        self.batches = 0

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: float | None = None) -> None:
        logits = logits.detach().float().cpu()
        target = target.detach().cpu()
        self.confusion.update(logits.argmax(dim=1), target)
        valid = target != self.ignore_index
        if valid.any():
            probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[valid]  # (N, C)
            onehot = torch.nn.functional.one_hot(target[valid], len(self.names))
            self.pooled.update(probs.reshape(-1), onehot.reshape(-1))
        if loss is not None:
            self.loss_sum += float(loss)
            self.batches += 1

    def compute(self, prefix: str = "") -> dict[str, float]:
        cm = self.confusion.compute().double()  # rows: truth, columns: prediction
        tp = cm.diag()
        truth = cm.sum(1)
        pred = cm.sum(0)
        out: dict[str, float] = {}
        if self.batches:
            out["loss"] = self.loss_sum / self.batches
        total = cm.sum().clamp_min(1)
        out["pixel_accuracy"] = float(tp.sum() / total)
        out["majority_rate"] = float(truth.max() / total)
        iou = tp / (truth + pred - tp)
        precision = tp / pred
        recall = tp / truth
        f1 = 2 * tp / (truth + pred)
        present = truth > 0  # classes absent from the targets do not count towards the means
        out["mean_iou"] = _nanmean(iou[present])
        keep = torch.tensor([n.lower() != "unlabeled" for n in self.names]) & present
        out["mean_iou_labelled"] = _nanmean(iou[keep])
        out["mean_f1"] = _nanmean(f1[present])
        for i, name in enumerate(self.names):
            out[f"iou_{name}"] = _f(iou[i])
            out[f"precision_{name}"] = _f(precision[i])
            out[f"recall_{name}"] = _f(recall[i])
            out[f"f1_{name}"] = _f(f1[i])
        s = self.pooled.compute().double()  # tp, fp, tn, fn, support
        out["precision_ref"] = _f(s[0] / (s[0] + s[1]))
        out["recall_ref"] = _f(s[0] / (s[0] + s[3]))
        return {f"{prefix}{k}": v for k, v in out.items()}

    def confusion_matrix(self) -> list[list[int]]:
        return self.confusion.compute().long().tolist()


def _f(x: torch.Tensor) -> float:
    v = float(x)
    return v if v == v else float("nan")


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")
