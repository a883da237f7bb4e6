"""A bad test portion (--test-fraction / --test-tiles) is one line, exit 2, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_runs import TINY, aerotune, copy_tree, refused, trained_run, tuned_run, unchanged

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_root) -> Path:
    return trained_run(tmp_path_factory, synth_root)


@pytest.mark.parametrize(
    "options",
    [
        ("--test-fraction", "0"),
        ("--test-fraction", "1"),
        ("--test-fraction", "a fifth"),
        ("--test-tiles", "Tile 1", "--test-fraction", "0.2"),
    ],
)
def test_bad_test_options_are_refused_by_the_parser(tmp_path, synth_root, options):
    with unchanged(tmp_path, synth_root):
        proc = aerotune("train", "--data", synth_root, "--out", tmp_path / "new", *options)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("aerotune train: error: argument --test-"), lines[0]


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (("--test-tiles", "Tile 9"), "'Tile 9', which is not a tile folder"),
        (("--test-tiles", "Tile 1, Tile 2"), "leaving none to train on"),
        (("--test-tiles", "Tile 1", "--set", "data.split=tile"), "the tile split needs 2"),
        (("--set", "data.test_fraction=1.5"), "data.test_fraction"),
    ],
)
def test_bad_test_portion_is_refused_before_training(tmp_path, synth_root, options, needle):
    refused(
        [tmp_path, synth_root],
        "train",
        "--data",
        synth_root,
        "--out",
        tmp_path / "new",
        "--patch-size",
        "32",
        *TINY,
        *options,
        needles=(needle,),
    )
    assert not (tmp_path / "new").exists()


def test_bad_test_tiles_on_a_patch_cache_is_refused(tmp_path, run):
    refused(
        [tmp_path, run],
        "tune",
        "--data",
        run / "cache",
        "--out",
        tmp_path / "study",
        "--test-tiles",
        "Tile 3",
        *TINY,
        needles=("Tile 3",),
    )
    assert not (tmp_path / "study").exists()


def test_resuming_a_run_with_another_test_portion_is_refused(tmp_path, run, synth_root):
    mine = copy_tree(run, tmp_path / "run")
    refused(
        [tmp_path, synth_root],
        "train",
        "--data",
        synth_root,
        "--out",
        mine,
        "--patch-size",
        "32",
        "--epochs",
        "2",
        *TINY,
        "--test-fraction",
        "0.25",
        needles=("data.test_fraction",),
    )


def test_resuming_a_study_with_another_test_portion_is_refused(tmp_path, tmp_path_factory, synth_root):
    study = copy_tree(tuned_run(tmp_path_factory, synth_root), tmp_path / "study")
    cache = trained_run(tmp_path_factory, synth_root) / "cache"
    refused(
        [tmp_path, cache],
        "tune",
        "--data",
        cache,
        "--out",
        study,
        "--trials",
        "2",
        "--epochs",
        "1",
        *TINY,
        "--startup-trials",
        "1",
        "--baseline",
        "dice_weight=1e39",
        "--test-tiles",
        "Tile 2",
        needles=("base_config",),
    )
