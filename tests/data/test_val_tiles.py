"""Naming the validation tiles a dataset defines (``--val-tiles``, ``data.val_tiles``) and the split as an option
(``--split``) of train and tune; every contradiction refused in one line before anything is written."""

from __future__ import annotations

import json

import pytest

from aerotune.commands import main
from aerotune.config import DataConfig
from aerotune.data.dataset import make_split
from aerotune.data.patches import prepare_patches
from aerotune.errors import ConfigError, DatasetError

from helpers import PALETTE, make_tiled, write_tile_tree
from safety import assert_refused

TINY = ["--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def three_tiles(tmp_path_factory):
    return make_tiled(tmp_path_factory.mktemp("val") / "d", tiles=3, per_tile=2, size=(64, 64))


def test_named_validation_tiles_are_the_validation_set(three_tiles, tmp_path):
    cache = prepare_patches(three_tiles, tmp_path / "c", DataConfig(patch_size=32), PALETTE)
    split = make_split(cache, DataConfig(patch_size=32, split="tile", val_tiles="Tile 2, Tile 3"))
    assert split.method == "tile" and split.val_groups == ["Tile 2", "Tile 3"]
    tiles = cache.patch_tile
    assert {tiles[i] for i in split.val} == {"Tile 2", "Tile 3"} and {tiles[i] for i in split.train} == {"Tile 1"}
    with pytest.raises(DatasetError, match=r"'Tile 9', which is not a tile folder .*'Tile 1', 'Tile 2', 'Tile 3'"):
        make_split(cache, DataConfig(patch_size=32, split="tile", val_tiles="Tile 9"))


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"val_tiles": "Tile 1"}, "data.split = 'random' contradicts it; use --split tile"),
        ({"val_tiles": "Tile 1", "split": "image"}, "contradicts it"),
        ({"val_tiles": "Tile 1", "split": "tile", "test_tiles": "Tile 1"}, "both name 'Tile 1'"),
        ({"val_tiles": " , ", "split": "tile"}, "data.val_tiles"),
    ],
)
def test_contradicting_settings(settings, needle):
    with pytest.raises(ConfigError, match=needle):
        DataConfig(**settings).validate()


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        (("--val-tiles", "Tile 9"), ("'Tile 9', which is not a tile folder", "'Tile 1', 'Tile 2', 'Tile 3'")),
        (("--val-tiles", "Tile 1,Tile 2,Tile 3"), ("every tile left to train on",)),
        (("--val-tiles", "Tile 1", "--split", "random"), ("contradicts it", "--split tile")),
        (("--val-tiles", "Tile 1", "--test-tiles", "Tile 1"), ("both name 'Tile 1'",)),
        (("--val-tiles", "Tile 1", "--test-tiles", "Tile 2,Tile 3"), ("none to train on",)),
    ],
)
@pytest.mark.parametrize("command", ["train", "tune"])
def test_bad_validation_options_are_refused(three_tiles, tmp_path, options, needles, command):
    assert_refused(tmp_path, command, "--data", three_tiles, "--out", tmp_path / "run", *options, needles=needles)


def test_the_tile_split_of_a_flat_set_names_the_option(tmp_path):
    root = write_tile_tree(tmp_path / "d", columns=1, rows=2, size=32)
    needles = ("split 'tile' needs at least 2 tiles", "--split random")
    options = ("--split", "tile", "--patch-size", "32", "--classes", root / "classes.toml")
    assert_refused(tmp_path, "train", "--data", root, "--out", tmp_path / "run", *options, needles=needles)


def test_train_validates_on_the_named_tiles(three_tiles, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(three_tiles), "--out", str(run), "--patch-size", "32", "--epochs", "1"]
    assert main([*args, "--val-tiles", "Tile 3", *TINY]) == 0
    split = json.loads((run / "split.json").read_text())
    assert split["method"] == "tile" and split["val_groups"] == ["Tile 3"]
    assert json.loads((run / "config.json").read_text())["data"]["val_tiles"] == "Tile 3"
    other = tmp_path / "image"
    assert main([*args[:3], "--out", str(other), *args[5:], "--split", "image", *TINY]) == 0
    assert json.loads((other / "split.json").read_text())["method"] == "image"
    capsys.readouterr()
