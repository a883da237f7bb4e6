"""The test portion: whole images that no training or validation patch comes from, recorded with the run."""

from __future__ import annotations

import json

import pytest
import torch

from aerotune.config import DataConfig
from aerotune.data.dataset import make_split
from aerotune.data.holdout import choose_test_images, image_id
from aerotune.errors import ConfigError, DatasetError

from safety_runs import TINY, aerotune


def source_ids(cache) -> list[str]:
    return [image_id(s["tile"], s["stem"]) for s in cache.sources]


def patch_images(cache, indices: list[int]) -> set[str]:
    ids = source_ids(cache)
    return {ids[j] for j in cache.patch_source[indices].tolist()}


CASES = [
    (method, held)
    for method in ("random", "image", "tile")
    for held in ({"test_fraction": 0.25}, {"test_fraction": 0.4}, {"test_tiles": "Tile 1"})
    if not (method == "tile" and "test_tiles" in held)  # one tile left: refused (test_bad_test_portions_are_errors)
]


@pytest.mark.parametrize(("method", "held"), CASES)
def test_no_patch_of_a_test_image_trains_or_validates(tiny_cache, method, held):
    split = make_split(tiny_cache, DataConfig(patch_size=32, split=method, **held))
    test = set(split.test_images)
    assert test and test <= set(source_ids(tiny_cache))
    assert not test & patch_images(tiny_cache, split.train) and not test & patch_images(tiny_cache, split.val)
    # Every other patch is in exactly one of the two.
    others = [i for i, j in enumerate(tiny_cache.patch_source.tolist()) if source_ids(tiny_cache)[j] not in test]
    assert sorted(split.train + split.val) == others and not set(split.train) & set(split.val)
    assert split.dataset_hash == tiny_cache.manifest["inputs_hash"]
    again = make_split(tiny_cache, DataConfig(patch_size=32, split=method, **held))
    assert again == split and type(split).from_dict(json.loads(json.dumps(split.to_dict()))) == split


def test_fraction_is_stratified_by_tile_and_drawn_with_the_seed(tiny_cache):
    split = make_split(tiny_cache, DataConfig(patch_size=32, test_fraction=0.25))
    assert sorted(i.split("/")[0] for i in split.test_images) == ["Tile 1", "Tile 2"]  # 8 images, 2 tiles: 1 each
    draws = {
        tuple(make_split(tiny_cache, DataConfig(patch_size=32, test_fraction=0.25, split_seed=seed)).test_images)
        for seed in range(8)
    }
    assert len(draws) > 1  # the seed draws them
    tiles = make_split(tiny_cache, DataConfig(patch_size=32, test_tiles=" Tile 2 "))
    assert tiles.test_images == [i for i in source_ids(tiny_cache) if i.startswith("Tile 2/")]


def test_without_a_test_portion_the_split_is_as_before(tiny_cache):
    split = make_split(tiny_cache, DataConfig(patch_size=32))
    assert split.test_images == [] and "test_images" not in split.to_dict()
    assert len(split.train) + len(split.val) == len(tiny_cache)


def test_bad_test_portions_are_errors():
    images = [("Tile 1", "Tile 1/a"), ("Tile 1", "Tile 1/b"), ("Tile 2", "Tile 2/c")]
    with pytest.raises(DatasetError, match="'Tile 9', which is not a tile folder"):
        choose_test_images(images, DataConfig(test_tiles="Tile 9"), where="d")
    with pytest.raises(DatasetError, match="leaving none to train on"):
        choose_test_images(images, DataConfig(test_tiles="Tile 1,Tile 2"), where="d")
    with pytest.raises(DatasetError, match="the tile split needs 2"):
        choose_test_images(images, DataConfig(test_tiles="Tile 2", split="tile"), where="d")
    with pytest.raises(DatasetError, match="leaving none to train on"):
        choose_test_images([("", "a")], DataConfig(test_fraction=0.1), where="d")
    for bad in ({"test_fraction": 1.0}, {"test_fraction": -0.1}, {"test_tiles": " , "}):
        with pytest.raises(ConfigError, match="data.test_"):
            DataConfig(**bad).validate()
    with pytest.raises(ConfigError, match="not both"):
        DataConfig(test_fraction=0.2, test_tiles="Tile 1").validate()


@pytest.mark.slow  # trains through the CLI
def test_a_trained_run_records_its_test_images_and_keeps_them_on_resume(tmp_path, synth_root):
    run = tmp_path / "run"
    args = ("train", "--data", synth_root, "--out", run, "--patch-size", "32", *TINY, "--test-fraction", "0.25")
    proc = aerotune(*args, "--epochs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    split = json.loads((run / "split.json").read_text())
    manifest = json.loads((run / "cache" / "manifest.json").read_text())
    assert len(split["test_images"]) == 2 and split["dataset_hash"] == manifest["inputs_hash"]
    ids = [image_id(s["tile"], s["stem"]) for s in manifest["sources"]]
    used = {ids[manifest["patches"][i][0]] for i in split["train"] + split["val"]}
    assert not used & set(split["test_images"])
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["split"]["test_images"] == split["test_images"]
    proc = aerotune(*args, "--epochs", "2")  # resumed: the same test images
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "split.json").read_text()) == split
    assert len(json.loads((run / "history.json").read_text())) == 2
    evaluated = tmp_path / "eval"
    proc = aerotune("evaluate", run, "--data", synth_root, "--out", evaluated)  # default: the test images
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((evaluated / "metrics.json").read_text())
    assert data["split"] == "test" and data["images"] == split["test_images"]
