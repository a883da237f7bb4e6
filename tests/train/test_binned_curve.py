"""``curves.BinnedCurve``: torchmetrics' binned precision-recall counts, exactly, in one pass."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.classification import MulticlassPrecisionRecallCurve

from aerotune.curves import BinnedCurve


@pytest.mark.parametrize("thresholds", [101, 11, 3])
def test_counts_equal_torchmetrics(thresholds):
    g = torch.Generator().manual_seed(thresholds)
    ours = BinnedCurve(6, thresholds)
    theirs = MulticlassPrecisionRecallCurve(num_classes=6, thresholds=thresholds, validate_args=False)
    for _ in range(3):
        probs = torch.randn(4000, 6, generator=g).softmax(dim=1)
        on_edges = torch.randint(0, thresholds, (64, 6), generator=g)
        probs[:64] = torch.linspace(0, 1, thresholds)[on_edges]  # scores exactly on a threshold
        target = torch.randint(0, 6, (4000,), generator=g)
        target[:10] = 2  # a class with extra pixels
        ours.update(probs, target)
        theirs.update(probs, target)
    assert torch.equal(ours.confmat, theirs.confmat)
    assert torch.equal(ours.thresholds, theirs.thresholds)


def test_a_class_never_true_counts_only_negatives():
    curve = BinnedCurve(3, 5)
    curve.update(torch.tensor([[0.2, 0.8, 0.0], [0.6, 0.4, 0.0]]), torch.tensor([1, 0]))
    table = curve.confmat
    assert table[:, 2, 1].sum() == 0  # class 2: no true pixel
    assert table[0, 2, 0, 1] == 2  # at threshold 0 both pixels are predicted class 2 (score >= 0)
    assert table[-1, 2, 0, 1] == 0  # at threshold 1 neither is
    assert table[2, 1].tolist() == [[1, 0], [0, 1]]  # threshold 0.5: pixel 0 (true 1, 0.8) hit, pixel 1 rejected
