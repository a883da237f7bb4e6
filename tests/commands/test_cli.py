"""The command line, run for real in a subprocess: the happy path and every bad input."""

import json
from pathlib import Path

import pytest

from helpers import PALETTE, aerotune, assert_one_line_error, make_tiled, random_ids, save_mask, write_pair

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def test_end_to_end_synth_prepare_train(tmp_path):
    data = tmp_path / "my data"
    assert aerotune("data", "synth", data, "--scenes", "4", "--size", "128", "--seed", "1").returncode == 0
    proc = aerotune("data", "inspect", data, "--patch-size", "64")
    assert proc.returncode == 0 and "no problems found" in proc.stdout and "Land" in proc.stdout
    proc = aerotune("data", "prepare", data, "--out", tmp_path / "cache", "--patch-size", "64")
    assert proc.returncode == 0, proc.stderr
    assert "16 patches" in proc.stdout
    proc = aerotune(
        "train",
        "--data",
        tmp_path / "cache",
        "--patch-size",
        "64",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--set",
        "model.base_filters=4",
        "--set",
        "model.depth=3",
        "--set",
        "train.batch_size=4",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 1
    assert 0 <= metrics["final"]["val_mean_iou"] <= 1


def _dataset_with(tmp_path: Path, problem: str) -> Path:
    root = make_tiled(tmp_path / "data set", tiles=1, per_tile=2, size=(64, 64))
    folder = root / "Tile 1"
    if problem == "unpaired":
        (folder / "masks" / "image_part_002.png").unlink()
    elif problem == "size":
        write_pair(folder, "image_part_002", 64, 64)
        save_mask(PALETTE.decode(random_ids(48, 64)), folder / "masks" / "image_part_002.png")
    elif problem == "corrupt":
        (folder / "masks" / "image_part_002.png").write_bytes(b"\x89PNG broken")
    elif problem == "small":
        write_pair(folder, "image_part_002", 40, 64)
    elif problem == "unknown":
        rgb = PALETTE.decode(random_ids(64, 64))
        rgb[0, 0] = (0, 0, 0)
        save_mask(rgb, folder / "masks" / "image_part_002.png")
    return root


@pytest.mark.parametrize(
    "problem, needles",
    [
        ("unpaired", ["image_part_002.jpg", "image has no mask"]),
        ("size", ["image_part_002.png", "mask is 64x48 but its image is 64x64"]),
        ("corrupt", ["image_part_002.png", "cannot read mask"]),
        ("small", ["image_part_002.jpg", "smaller than one 64 patch"]),
        ("unknown", ["#000000 (1 px in", "image_part_002.png", "--unknown-colors ignore"]),
    ],
)
@pytest.mark.parametrize("command", ["prepare", "train"])
def test_bad_dataset_gives_one_line_and_leaves_nothing(tmp_path, problem, needles, command):
    root = _dataset_with(tmp_path, problem)
    out = tmp_path / "out"
    if command == "prepare":
        proc = aerotune("data", "prepare", root, "--out", out, "--patch-size", "64")
    else:
        proc = aerotune("train", "--data", root, "--out", out, "--patch-size", "64", "--epochs", "1")
    assert_one_line_error(proc, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data set"]  # no partial cache or run folder


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--set", "train.batch_sise=4"], ["unknown setting 'train.batch_sise'", "train.batch_size"]),
        (["--set", "train.epochs=many"], ["train.epochs = 'many' is not a whole number"]),
        (["--set", "model.activation=gelu"], ["model.activation = 'gelu' is invalid", "relu"]),
        (["--set", "train.learning_rate=-1"], ["train.learning_rate = -1.0 is invalid"]),
        (["--set", "nonsense"], ["expected key=value"]),
        (["--config", "missing.toml"], ["missing.toml: file not found"]),
        (["--classes", "missing.json"], ["missing.json: classes file not found"]),
    ],
)
def test_bad_settings(tmp_path, args, needles):
    root = make_tiled(tmp_path / "d", tiles=1, per_tile=2, size=(64, 64))
    proc = aerotune("train", "--data", root, "--out", tmp_path / "run", *args, cwd=tmp_path)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "run").exists()


def test_bad_config_file(tmp_path):
    root = make_tiled(tmp_path / "d", tiles=1, per_tile=2, size=(64, 64))
    (tmp_path / "c.toml").write_text("[train]\nepochs = 2\nbogus = 1\n")
    assert_one_line_error(
        aerotune("train", "--data", root, "--out", tmp_path / "r", "--config", tmp_path / "c.toml"),
        "c.toml",
        "unknown key 'bogus'",
    )
    (tmp_path / "c.toml").write_text("[train\n")
    assert_one_line_error(
        aerotune("train", "--data", root, "--out", tmp_path / "r", "--config", tmp_path / "c.toml"),
        "c.toml: cannot parse",
    )


def test_missing_dataset_folder(tmp_path):
    assert_one_line_error(aerotune("data", "inspect", tmp_path / "nope"), "nope: dataset folder not found")


def test_inspect_exit_code_and_json(tmp_path):
    root = _dataset_with(tmp_path, "unknown")
    proc = aerotune("data", "inspect", root, "--json")
    assert proc.returncode == 1
    found = json.loads(proc.stdout)
    assert any(c["color"] == "#000000" and c["class"] is None for c in found["colors"])
