"""The report's verdict on a run's test images (whole, stitched) when it has them; validation patches otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aerotune.config import DataConfig
from aerotune.data.palette import Palette
from aerotune.data.patches import prepare_patches
from aerotune.errors import RunError
from aerotune.predict.evaluate import evaluate_scenes
from aerotune.predict.scene import Predictor
from aerotune.report import make_report
from aerotune.train.fit import fit

from report_runs import tiny_config

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

HELD = {"data.test_fraction": 0.25, "data.split": "image", "train.epochs": 2}


@pytest.fixture(scope="module")
def runs(tiny_cache, tmp_path_factory) -> dict[str, Path]:
    """Two runs with the same test portion, one without any; on the tiny cache (8 images in 2 tiles)."""
    tmp = tmp_path_factory.mktemp("held")
    fit(tiny_config(**HELD), tiny_cache, tmp / "base")
    fit(tiny_config(**HELD, **{"train.learning_rate": 0.003}), tiny_cache, tmp / "tuned")
    fit(tiny_config(**{"train.epochs": 1}), tiny_cache, tmp / "plain")
    return {"base": tmp / "base", "tuned": tmp / "tuned", "plain": tmp / "plain"}


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    return make_report(runs["tuned"], baseline=runs["base"], out=tmp_path_factory.mktemp("rep") / "r")


def test_verdict_is_computed_on_the_test_images(runs, report, synth_root, tmp_path):
    data, v = report.data, report.data["verdict"]
    split = json.loads((runs["tuned"] / "split.json").read_text())
    assert data["whole_images"]["sets"]["test"]["images"] == split["test_images"]
    tuned, base = data["models"]["tuned"]["whole"]["test"], data["models"]["baseline"]["whole"]["test"]
    assert v["basis"] == "test" and v["test_mean_iou"] == {
        "baseline": base["mean_iou"],
        "tuned": tuned["mean_iou"],
        "change": tuned["mean_iou"] - base["mean_iou"],
    }
    wins = [tuned["mean_iou"] > base["mean_iou"], tuned["pixel_accuracy"] > base["pixel_accuracy"]]
    assert v["status"] == ("better" if all(wins) else "worse" if not any(wins) else "mixed")
    # The same numbers as `aerotune evaluate` on the run's test split (the code is shared, the call is not).
    ev = evaluate_scenes(
        Predictor.load(runs["tuned"]), synth_root, tmp_path / "ev", split="test", run_split=split, model_name="t"
    )
    assert ev.data["images"] == split["test_images"]
    assert ev.data["tta"]["none"]["pooled"]["mean_iou"] == pytest.approx(tuned["mean_iou"])
    # The validation-patch numbers stay beside it.
    assert v["mean_iou"]["tuned"] == data["models"]["tuned"]["val"]["mean_iou"]


def test_report_says_which_numbers_decided_and_why(report):
    md, page = report.markdown.read_text(), report.html.read_text()
    for text in (md, page):
        assert "Verdict on the 2 test image(s), whole and stitched" in text
        assert "biased upward" in text and "validation loss" in text
        assert "mean IoU, test images (whole, stitched)" in text
        assert "mean IoU, validation images (whole, stitched)" in text  # a split by image holds out whole images
    assert "test mean IoU (whole images)" in page and "test portion" in md


def test_validation_images_are_the_runs_held_out_images(runs, report, tiny_cache):
    split = json.loads((runs["tuned"] / "split.json").read_text())
    assert report.data["whole_images"]["sets"]["validation"]["images"] == split["val_groups"]
    assert not set(split["val_groups"]) & set(split["test_images"])


def test_without_a_test_portion_the_verdict_stays_on_the_validation_patches(runs, tmp_path):
    data = make_report(runs["plain"], out=tmp_path / "r").data
    assert "whole_images" not in data and "whole" not in data["models"]["tuned"]
    v = data["verdict"]
    assert v["basis"] == "validation" and "test_mean_iou" not in v and "--test-fraction" in v["basis_text"]
    assert not any("whole" in r["label"] for r in data["headline"])


def test_a_baseline_without_the_same_test_images_is_not_judged_on_them(runs, tmp_path):
    data = make_report(runs["tuned"], baseline=runs["plain"], out=tmp_path / "r").data
    assert data["verdict"]["basis"] == "validation" and "test_mean_iou" not in data["verdict"]
    assert "test" in data["models"]["tuned"]["whole"] and "test" not in data["models"]["baseline"].get("whole", {})
    assert any("did not hold out the same test images" in n for n in data["notes"])


def test_a_tuning_run_with_a_test_portion_is_judged_on_it(tiny_cache, tmp_path):
    from aerotune.tune.space_parse import parse_space
    from aerotune.tune.study import TuneSettings, run_tune

    run = tmp_path / "study"
    run_tune(
        TuneSettings(
            data=tiny_cache.root,
            out=run,
            config=tiny_config(**{"train.threads": 1, "train.epochs": 2, "data.test_tiles": "Tile 2"}),
            space=parse_space({"learning_rate": {"_type": "loguniform", "_value": [1e-3, 5e-2]}}),
            trials=3,
            sampler="random",
            study_name="held-test",
            heartbeat=2,
            baseline={"learning_rate": 0.01},
        )
    )
    split = json.loads((run / "split.json").read_text())
    assert split["test_images"] == [f"Tile 2/image_part_00{i}" for i in range(1, 5)]
    for trial in (run / "trials").iterdir():
        assert json.loads((trial / "split.json").read_text()) == split
    data = make_report(run, out=tmp_path / "r").data
    assert data["verdict"]["basis"] == "test" and "the best trial" in data["verdict"]["basis_text"]
    assert data["whole_images"]["sets"]["test"]["images"] == split["test_images"]


def test_changed_files_are_refused_rather_than_judged(synth_root, tmp_path):
    root = shutil.copytree(synth_root, tmp_path / "data")
    cache = prepare_patches(root, tmp_path / "cache", DataConfig(patch_size=32), Palette.dubai())
    fit(tiny_config(**{**HELD, "train.epochs": 1}), cache, tmp_path / "held")
    fit(tiny_config(**{"data.split": "image", "train.epochs": 1}), cache, tmp_path / "val")
    image = next(root.glob("Tile 1/images/*"))
    image.write_bytes(image.read_bytes() + b"\0")  # the same picture, other bytes: another fingerprint
    with pytest.raises(RunError, match="files changed since .* drew its test images"):
        make_report(tmp_path / "held", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    # Without a test portion nothing is at stake: the whole validation images are left out, with a note.
    for gone in (False, True):
        if gone:
            shutil.rmtree(root)
        data = make_report(tmp_path / "val", out=tmp_path / "r").data
        assert "whole_images" not in data and data["verdict"]["basis"] == "validation"
        assert any("gone or its files changed" in n for n in data["notes"])
