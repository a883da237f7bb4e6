"""The speed switches: device-side metrics equal torchmetrics' figures; every switch trains to the same result."""

import math

import pytest
import torch
from torchmetrics.classification import BinaryStatScores, MulticlassConfusionMatrix

from aerotune.config import DataConfig, RunConfig, load_config
from aerotune.data.patches import prepare_patches
from aerotune.errors import ConfigError
from aerotune.train.fit import fit
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.step import resolve_speed

from helpers import PALETTE, make_tiled

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

TINY = {
    "model.base_filters": 4,
    "model.depth": 3,
    "train.batch_size": 4,
    "train.progress": False,
    "data.patch_size": 32,
    "train.epochs": 2,
}
NAMES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]


def reference_figures(batches, ignore_index=255):
    """What train/metrics.py computed before it moved to the device: torchmetrics on the host."""
    confusion = MulticlassConfusionMatrix(6, ignore_index=ignore_index)
    pooled = BinaryStatScores(threshold=0.5)
    for logits, target in batches:
        logits = logits.float()
        confusion.update(logits.argmax(dim=1), target)
        valid = target != ignore_index
        if valid.any():
            probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[valid]
            pooled.update(probs.reshape(-1), torch.nn.functional.one_hot(target[valid], 6).reshape(-1))
    s = pooled.compute().double()
    return confusion.compute(), float(s[0] / (s[0] + s[1])), float(s[0] / (s[0] + s[3]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_device_metrics_equal_the_torchmetrics_figures(dtype):
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(4):
        # sharp enough logits that many pixels score above 0.5, blunt enough that many do not
        logits = (torch.randn(3, 6, 16, 16, generator=g) * (0.5 + i)).to(dtype)
        target = torch.randint(0, 5, (3, 16, 16), generator=g)  # class 5 absent: it must not count in the means
        target[:, :3] = 255
        if i == 3:
            target[:] = 255  # a batch with nothing to score
        batches.append((logits, target))
    m = SegmentationMetrics(NAMES, ignore_index=255)
    for logits, target in batches:
        m.update(logits, target, torch.tensor(0.5))
    cm, precision_ref, recall_ref = reference_figures(batches)
    assert m.confusion_matrix() == cm.tolist()
    got = m.compute("val_")
    assert got["val_precision_ref"] == pytest.approx(precision_ref, abs=1e-12)
    assert got["val_recall_ref"] == pytest.approx(recall_ref, abs=1e-12)
    assert got["val_loss"] == pytest.approx(0.5)
    cmd = cm.double()
    tp, truth, pred = cmd.diag(), cmd.sum(1), cmd.sum(0)
    iou = tp / (truth + pred - tp)
    assert got["val_pixel_accuracy"] == pytest.approx(float(tp.sum() / cmd.sum()))
    assert got["val_mean_iou"] == pytest.approx(float(iou[:5].mean()))
    assert got["val_iou_Road"] == pytest.approx(float(iou[2]))
    assert got["val_iou_Unlabeled"] == 0.0 and math.isnan(got["val_recall_Unlabeled"])  # predicted, never true


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speed")
    root = make_tiled(tmp / "d", tiles=2, per_tile=2, size=(64, 64))
    return prepare_patches(root, tmp / "c", DataConfig(patch_size=32), PALETTE)


def config(**extra) -> RunConfig:
    """The reference's recipe: its dropout is what the fast-dropout switch is about, its constant rate what lets a
    run continue to more epochs as an unbroken one."""
    return load_config(None, preset="reference").with_overrides({**TINY, **extra})


def test_auto_switches_resolve_per_device():
    s = resolve_speed(config().train, torch.device("cpu"))
    assert (s.channels_last, s.fused_adam, s.compile, s.fast_dropout) == (False, True, False, True)
    s = resolve_speed(config(**{"train.channels_last": "on", "train.fused_adam": "off"}).train, torch.device("cpu"))
    assert (s.channels_last, s.fused_adam) == (True, False)
    assert resolve_speed(config().train, torch.device("cuda")).channels_last
    with pytest.raises(ConfigError, match="train.channels_last"):
        config(**{"train.channels_last": "yes please"})


@pytest.mark.parametrize("switch", [{"train.channels_last": "on"}, {"train.fused_adam": "off"}])
def test_each_switch_trains_to_the_same_result(cache, tmp_path, switch):
    base = fit(config(), cache, tmp_path / "base")
    other = fit(config(**switch), cache, tmp_path / "other")
    for a, b in zip(base.history, other.history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3)
        assert b["val_pixel_accuracy"] == pytest.approx(a["val_pixel_accuracy"], abs=0.02)


def test_torch_dropout_trains_to_a_similar_result(cache, tmp_path):
    # other random masks, so only statistically the same: the losses agree loosely
    base = fit(config(), cache, tmp_path / "base")
    other = fit(config(**{"train.fast_dropout": "off"}), cache, tmp_path / "other")
    assert other.history[-1]["val_loss"] == pytest.approx(base.history[-1]["val_loss"], rel=0.05)
    assert other.history[-1]["train_loss"] != base.history[-1]["train_loss"]  # the switch did change the masks


def test_resume_with_channels_last_matches_an_unbroken_run_and_switches_may_change(cache, tmp_path):
    fast = {"train.channels_last": "on", "train.fused_adam": "on"}
    a = fit(config(**fast, **{"train.epochs": 3}), cache, tmp_path / "a")
    fit(config(**fast), cache, tmp_path / "b")
    b = fit(config(**fast, **{"train.epochs": 3}), cache, tmp_path / "b")
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history], rel=1e-5)
    # how the step is computed is not part of the run's identity: resuming with other switches is allowed
    c = fit(config(**{"train.epochs": 4}), cache, tmp_path / "b")
    assert c.epochs == 4


@pytest.mark.slow
def test_compiled_step_trains_to_the_same_result(cache, tmp_path):
    small = {"train.epochs": 1, "model.depth": 2}
    base = fit(config(**small), cache, tmp_path / "eager")
    compiled = fit(config(**small, **{"train.compile": "on"}), cache, tmp_path / "compiled")
    assert compiled.history[0]["val_loss"] == pytest.approx(base.history[0]["val_loss"], rel=1e-3)
