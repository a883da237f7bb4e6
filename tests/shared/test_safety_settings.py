"""Settings that contradict the data or an existing run are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safety_runs import TINY, aerotune, copy_tree, refused, trained_run
from snapshot import snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_root) -> Path:
    return trained_run(tmp_path_factory, synth_root)


def test_rerun_with_another_patch_size_keeps_the_runs_cache(tmp_path, run, synth_root):
    """The refusal comes before RUN/cache is rebuilt: the old run's cache is byte for byte the same."""
    mine = copy_tree(run, tmp_path / "run")
    cache_before = snapshot(mine / "cache")
    refused(
        [tmp_path, synth_root],
        "train",
        "--data",
        synth_root,
        "--out",
        mine,
        "--patch-size",
        "64",
        *TINY,
        needles=("patch_size",),
    )
    assert snapshot(mine / "cache") == cache_before


def test_rerun_with_another_model_is_refused(tmp_path, run):
    mine = copy_tree(run, tmp_path / "run")
    refused(
        [tmp_path],
        "train",
        "--data",
        mine / "cache",
        "--out",
        mine,
        "--set",
        "model.base_filters=8",
        "--set",
        "model.depth=3",
        "--set",
        "train.batch_size=16",
        needles=("model.base_filters",),
    )


def test_cache_with_another_classes_file_is_refused(tmp_path, run):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"Background": "#000000", "Thing": "#FFFFFF"}))
    refused(
        [tmp_path, run],
        "train",
        "--data",
        run / "cache",
        "--out",
        tmp_path / "new",
        "--classes",
        other,
        *TINY,
        needles=("other.json",),
    )
    assert not (tmp_path / "new").exists()


def test_cache_with_a_contradicting_patch_size_is_refused(tmp_path, run):
    refused(
        [tmp_path, run],
        "train",
        "--data",
        run / "cache",
        "--out",
        tmp_path / "new",
        "--patch-size",
        "64",
        *TINY,
        needles=("patch_size",),
    )


def test_cache_gives_its_own_patch_size(tmp_path, run):
    """No --patch-size with a 32-pixel cache: the cache's own cut is used, not the default 256."""
    before = snapshot(run)
    proc = aerotune("train", "--data", run / "cache", "--out", tmp_path / "new", "--epochs", "1", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "new" / "config.json").read_text())["data"]["patch_size"] == 32
    assert snapshot(run) == before


@pytest.mark.parametrize("data", ["folder", "cache"])
def test_patch_size_the_unet_cannot_divide(tmp_path, run, synth_root, data):
    source = synth_root if data == "folder" else run / "cache"
    size = ["--patch-size", "40"] if data == "folder" else ["--set", "model.depth=7"]  # 40 = 2.5 x 16
    refused(
        [tmp_path, run, synth_root],
        "train",
        "--data",
        source,
        "--out",
        tmp_path / "new",
        *size,
        needles=("patch_size",),
    )
    assert not (tmp_path / "new").exists()


def test_tune_patch_size_the_unet_cannot_divide(tmp_path, run, synth_root):
    refused(
        [tmp_path, synth_root],
        "tune",
        "--data",
        synth_root,
        "--out",
        tmp_path / "new",
        "--patch-size",
        "40",
        "--trials",
        "2",
        needles=("patch_size",),
    )
    assert not (tmp_path / "new").exists()


def test_resume_after_the_dataset_changed_is_refused(tmp_path, run, synth_root):
    """Resuming would rebuild RUN/cache from the changed files under the run's saved split: refused first."""
    data = copy_tree(synth_root, tmp_path / "data")
    mine = copy_tree(run, tmp_path / "run")
    image = sorted(data.glob("Tile 1/images/*.jpg"))[0]
    image.unlink()
    (image.parent.parent / "masks" / f"{image.stem}.png").unlink()
    refused(
        [tmp_path],
        "train",
        "--data",
        data,
        "--out",
        mine,
        "--patch-size",
        "32",
        "--epochs",
        "2",
        *TINY,
        needles=("changed",),
    )
