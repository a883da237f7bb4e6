import json

import pytest
import torch

from aerotune.config import DataConfig, RunConfig, load_config
from aerotune.data.patches import prepare_patches
from aerotune.errors import RunError
from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint
from aerotune.train.fit import fit

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


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    root = make_tiled(tmp / "d", tiles=2, per_tile=2, size=(64, 64))
    return prepare_patches(root, tmp / "c", DataConfig(patch_size=32), PALETTE)


def config(**extra) -> RunConfig:
    return RunConfig().with_overrides({**TINY, **extra})


def test_run_folder(cache, tmp_path):
    result = fit(config(), cache, tmp_path / "run")
    assert result.status == "completed" and result.epochs == 2
    for name in (
        "config.json",
        "split.json",
        "history.csv",
        "history.json",
        "metrics.json",
        "data.json",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
    ):
        assert (tmp_path / "run" / name).is_file(), name
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    keys = history[0].keys()
    for k in (
        "train_loss",
        "val_loss",
        "val_pixel_accuracy",
        "val_mean_iou",
        "val_iou_Land",
        "val_precision_ref",
        "val_recall_ref",
        "val_precision_Road",
        "val_recall_Water",
        "val_f1_Building",
    ):
        assert k in keys, k
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")  # weights_only=True
    model, cfg, palette = model_from_checkpoint(ckpt)
    assert cfg == config() and palette == PALETTE
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 6, 32, 32)


def test_deterministic_and_resume_matches_an_unbroken_run(cache, tmp_path):
    # Continuing a finished run with more epochs equals a longer run under a constant rate (the reference's
    # recipe); the default recipe's schedule keeps its first length (tests/train/test_recipe.py covers its resume).
    def config(**extra):
        return load_config(None, preset="reference").with_overrides({**TINY, **extra})

    a = fit(config(**{"train.epochs": 3}), cache, tmp_path / "a")
    b = fit(config(**{"train.epochs": 2}), cache, tmp_path / "b")
    b = fit(config(**{"train.epochs": 3}), cache, tmp_path / "b")  # resumes from epoch 2
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history], rel=1e-5)
    assert len(b.history) == 3


def test_resume_refuses_a_different_config(cache, tmp_path):
    fit(config(), cache, tmp_path / "a")
    with pytest.raises(RunError, match="different config"):
        fit(config(**{"train.learning_rate": 0.1}), cache, tmp_path / "a")


def test_non_finite_loss_ends_the_run_as_diverged(cache, tmp_path):
    # A focal weight beyond float32's range makes the loss infinite on the first batch.
    result = fit(config(**{"train.focal_weight": 1e39}), cache, tmp_path / "nan")
    assert result.status == "diverged" and "non-finite" in result.reason
    assert json.loads((tmp_path / "nan" / "metrics.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("precision", ["bf16"])
def test_cpu_autocast_runs(cache, tmp_path, precision):
    result = fit(config(**{"train.precision": precision, "train.epochs": 1}), cache, tmp_path / precision)
    assert result.status == "completed"
    assert result.metrics.precision == "bfloat16"
