"""Refusals that carry their fix: search spaces, predict and evaluate inputs, patch sizes that cannot fit."""

from __future__ import annotations

import json

import pytest

from aerotune.config import DataConfig, RunConfig
from aerotune.errors import ConfigError, DatasetError, SearchSpaceError, one_line
from aerotune.memory import check_prepare_memory, check_train_memory
from aerotune.tune.space_parse import load_space

from helpers import make_tiled, write_pair
from safety import assert_refused, run_cli


@pytest.mark.parametrize(
    "name, text, needles",
    [
        ("empty.toml", "", ["empty.toml: the search space is empty", "train.learning_rate = {type"]),
        ("empty.json", "{}", ["the search space is empty", '"_type": "loguniform"']),
        ("list.json", "[1, 2]", ["list.json: expected a search space: a table of setting -> distribution"]),
        (
            "cache.toml",
            "[data]\npatch_size = {type = 'int', low = 64, high = 256}\n",
            ["cache.toml: 'data.patch_size' cannot be searched", "--set data.patch_size=VALUE (or --patch-size"],
        ),
        (
            "negative.toml",
            "[train]\nlearning_rate = {type = 'float', low = -0.1, high = 0.1}\n",
            ["negative.toml: train.learning_rate = -0.1 is not allowed"],
        ),
    ],
)
def test_search_space_messages_name_the_file_and_the_fix(tmp_path, name, text, needles):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as info:
        load_space(path, RunConfig())
    message = str(info.value)
    assert "\n" not in message and all(n in message for n in needles), message


def test_predict_on_a_folder_without_images_lists_every_extension(tmp_path):
    from aerotune.predict.run import list_images

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        list_images([tmp_path / "empty"])
    for suffix in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"):
        assert suffix in str(info.value)
    assert "images/ folder" in str(info.value)
    help_text = " ".join(run_cli("predict", "--help").stdout.decode().split())
    assert ".webp" in help_text and ".bmp" in help_text and ".tiff" in help_text


def test_evaluate_without_masks_says_the_masks_folder_is_missing(tmp_path):
    from aerotune.predict.evaluate import evaluate_scenes

    write_pair(tmp_path / "data", "a", 32, 32)
    for mask in (tmp_path / "data" / "masks").iterdir():
        mask.unlink()
    (tmp_path / "data" / "masks").rmdir()
    with pytest.raises(DatasetError, match=r"no image/mask pairs to evaluate .*masks: folder missing"):
        evaluate_scenes(object(), tmp_path / "data", tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_evaluate_of_an_onnx_model_by_its_split_points_to_the_run(tmp_path):
    make_tiled(tmp_path / "data", tiles=1, per_tile=1, size=(32, 32))
    for split in ("test", "tile"):
        assert_refused(
            tmp_path,
            "evaluate",
            tmp_path / "model.onnx",
            "--data",
            tmp_path / "data",
            "--out",
            tmp_path / "eval",
            "--split",
            split,
            needles=("an exported .onnx model carries none", "evaluate the run folder"),
        )


def test_a_patch_size_that_cannot_fit_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"data.patch_size = 100000 needs about 80.0 GB of memory per patch"):
        check_prepare_memory(DataConfig(patch_size=100000), total=16 * 10**9)
    check_prepare_memory(DataConfig(patch_size=256), total=16 * 10**9)
    config = RunConfig().with_overrides({"data.patch_size": 8192})
    with pytest.raises(ConfigError, match=r"data.patch_size = 8192 .* per patch to train \(model.base_filters = 16\)"):
        check_train_memory(config, total=16 * 10**9)
    root = make_tiled(tmp_path / "data", tiles=1, per_tile=1, size=(32, 32))
    huge = "1048576"  # 2 TB a patch: more than any machine that runs these tests
    assert_refused(tmp_path, "data", "prepare", root, "--out", tmp_path / "cache", "--patch-size", huge,
                   needles=(f"data.patch_size = {huge} needs about", "--patch-size"))  # fmt: skip
    assert_refused(tmp_path, "train", "--data", root, "--out", tmp_path / "run", "--patch-size", huge,
                   "--set", "model.depth=2", needles=(f"data.patch_size = {huge} needs about",))  # fmt: skip


def test_a_long_message_keeps_its_fix():
    line = one_line(ValueError("colours: " + "#000000 in a.png, " * 500 + "; pass --unknown-colors ignore"))
    assert len(line) <= 2000 and line.endswith("; pass --unknown-colors ignore") and " … " in line
    assert json.dumps(line)
