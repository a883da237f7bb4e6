"""A split, test portion or tile choice that leaves nothing to train or to validate on is refused before writing."""

from __future__ import annotations

import pytest

from aerotune.config import DataConfig
from aerotune.data.splits import make_split, planned_patches
from aerotune.errors import DatasetError

from helpers import make_tiled
from safety import assert_refused

TINY = ("--set", "model.base_filters=4", "--set", "model.depth=2", "--epochs", "1")


@pytest.fixture
def root(tmp_path):
    """4 images of 32x32 in 2 tiles: 16 patches of 16."""
    return make_tiled(tmp_path / "data", tiles=2, per_tile=2, size=(32, 32))


def test_a_validation_share_that_takes_every_patch_is_refused(tiny_cache):
    with pytest.raises(DatasetError, match=r"data.val_fraction = 0.999 puts all 128 patch\(es\) in validation"):
        make_split(tiny_cache, DataConfig(patch_size=32, val_fraction=0.999))
    split = make_split(tiny_cache, DataConfig(patch_size=32, val_fraction=0.99))
    assert len(split.train) >= 1 and len(split.val) >= 1


@pytest.mark.parametrize("command", ["train", "tune"])
def test_train_and_tune_refuse_it_before_writing(tmp_path, root, command):
    extra = ("--trials", "1") if command == "tune" else ()
    line = assert_refused(
        tmp_path,
        command,
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--patch-size",
        "16",
        "--set",
        "data.val_fraction=0.99",
        *TINY,
        *extra,
        needles=("data.val_fraction = 0.99 puts all 16 patch(es) in validation", "--set data.val_fraction=0.2"),
    )
    assert "internal error" not in line


def test_a_test_portion_and_validation_share_that_leave_nothing_are_refused(tmp_path, root):
    assert_refused(
        tmp_path,
        "train",
        "--data",
        root,
        "--out",
        tmp_path / "run",
        "--patch-size",
        "16",
        "--set",
        "data.split=random",
        "--test-fraction",
        "0.5",
        "--set",
        "data.val_fraction=0.95",
        *TINY,
        needles=("patch(es) left after the test images in validation",),
    )


def test_the_planned_patches_are_the_patches_prepare_cuts(tmp_path, root):
    from aerotune.data.palette import Palette
    from aerotune.data.patches import plan_cache, prepare_patches

    config = DataConfig(patch_size=16, split="tile")
    plan, _skipped, _ = plan_cache(root, config, Palette.dubai(), digest=False)
    planned = planned_patches(root, plan)
    cache = prepare_patches(root, tmp_path / "cache", config, Palette.dubai())
    assert len(planned) == len(cache) and planned.patch_tile == cache.patch_tile
    assert make_split(planned, config).val == make_split(cache, config).val
