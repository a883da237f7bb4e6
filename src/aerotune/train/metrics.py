"""Segmentation metrics accumulated over an epoch on the model's device, in bounded memory.

Everything comes from two small integer tensors updated batch by batch without leaving the device
(no host synchronisation, no Python per pixel):

* a confusion matrix of argmax predictions (pixels with the ignore label are skipped), giving per class
  IoU, precision, recall, F1, pixel accuracy, the majority rate and mean IoU (with and without a class
  named "Unlabeled");
* the reference's Keras precision/recall: every (pixel, class) pair of the one-hot target against the
  softmax score thresholded at 0.5 (strictly above, as torchmetrics' ``BinaryStatScores``), pooled over
  classes. At most one class can score above 0.5, so this needs only the top softmax score of each pixel:
  ``tp`` counts pixels whose top class is the truth with a score above 0.5, ``tp + fp`` pixels whose top
  score is above 0.5, and ``tp + fn`` all valid pixels.
"""

from __future__ import annotations

import torch


class SegmentationMetrics:
    """Accumulates metrics batch by batch; :meth:`compute` returns a flat dict of floats."""

    def __init__(
        self, class_names: list[str] | tuple[str, ...], *, ignore_index: int, device: torch.device | str = "cpu"
    ) -> None:
        self.names = list(class_names)
        self.ignore_index = ignore_index
        c = len(self.names)
        self.counts = torch.zeros(c * c + 1, dtype=torch.long, device=device)  # last bin: ignored pixels
        self.pooled = torch.zeros(2, dtype=torch.long, device=device)  # softmax > 0.5 anywhere; and on the truth
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        self.batches = 0

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor | float | None = None) -> None:
        """Add a batch: logits ``(B, C, H, W)`` (any float dtype), target ``(B, H, W)`` class ids."""
        c = len(self.names)
        logits = logits.detach().float()
        target = target.detach().to(logits.device)
        top, pred = logits.max(dim=1)
        # the top softmax score is 1 / sum(exp(l - max)): above 0.5 when that sum is below 2
        confident = torch.exp(logits - top.unsqueeze(1)).sum(dim=1) < 2.0
        valid = target != self.ignore_index
        bins = torch.where(valid, target * c + pred, c * c)
        self.counts += torch.bincount(bins.flatten(), minlength=c * c + 1).to(self.counts.device)
        confident = confident & valid
        hit = confident & (pred == target)
        self.pooled += torch.stack([confident.sum(), hit.sum()]).to(self.pooled.device)
        if loss is not None:
            self.loss_sum += torch.as_tensor(loss, dtype=torch.float32).detach().to(self.loss_sum.device)
            self.batches += 1

    def mean_loss(self) -> float:
        """The mean batch loss so far (NaN before any batch with a loss); one host sync."""
        return float(self.loss_sum) / self.batches if self.batches else float("nan")

    def compute(self, prefix: str = "") -> dict[str, float]:
        c = len(self.names)
        cm = self.counts[: c * c].view(c, c).cpu().double()  # rows: truth, columns: prediction
        tp = cm.diag()
        truth = cm.sum(1)
        pred = cm.sum(0)
        out: dict[str, float] = {}
        if self.batches:
            out["loss"] = self.mean_loss()
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
        positive, hit = self.pooled.cpu().double()
        valid = cm.sum()
        out["precision_ref"] = _f(hit / positive)
        out["recall_ref"] = _f(hit / valid)
        return {f"{prefix}{k}": v for k, v in out.items()}

    def confusion_matrix(self) -> list[list[int]]:
        c = len(self.names)
        return self.counts[: c * c].view(c, c).cpu().tolist()


def _f(x: torch.Tensor) -> float:
    v = float(x)
    return v if v == v else float("nan")


def _nanmean(x: torch.Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")
