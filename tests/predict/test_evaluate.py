"""Whole-image evaluation: confusion maths, split selection, files written, folders refused."""

import json
from pathlib import Path

import numpy as np
import pytest

from aerotune.config import RunConfig
from aerotune.errors import RunError
from aerotune.model.checkpoint import load_checkpoint
from aerotune.predict.evaluate import confusion, evaluate_scenes, metrics
from aerotune.predict.run import segment_array
from aerotune.predict.scene import Predictor
from aerotune.train.fit import fit

from helpers import aerotune, assert_one_line_error

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def run(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "run"
    config = RunConfig().with_overrides(
        {
            "model.base_filters": 4,
            "model.depth": 3,
            "train.epochs": 1,
            "data.patch_size": 32,
            "train.progress": False,
            "data.split": "tile",
        }
    )
    fit(config, tiny_cache, out)
    return out


def test_confusion_and_metrics():
    truth = np.array([[0, 0, 1, 255], [2, 2, 1, 1]], np.uint8)  # 255: ignored
    pred = np.array([[0, 1, 1, 0], [2, 0, 1, 1]], np.uint8)
    cm = confusion(truth, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    m = metrics(cm, ["a", "b", "c"])
    assert m["pixels"] == 7 and m["pixel_accuracy"] == pytest.approx(5 / 7)
    assert m["iou"] == pytest.approx({"a": 1 / 3, "b": 3 / 4, "c": 1 / 2})
    assert m["mean_iou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert metrics(np.diag([4, 0]), ["a", "b"])["iou"]["b"] is None  # absent and never predicted: no score


def test_evaluate_held_out_tile_matches_a_direct_count(run, synth_root, tmp_path):
    predictor = Predictor.load(run)
    split = load_checkpoint(run / "checkpoints" / "best.pt")["split"]
    result = evaluate_scenes(predictor, synth_root, tmp_path / "eval", split="tile", run_split=split, tta="flips")
    held = split["val_groups"]
    assert result.data["images"] and all(name.split("/")[0] in held for name in result.data["images"])
    assert set(result.data["tta"]) == {"none", "flips"}
    # pooled counts agree with segmenting each held-out image in memory and counting by hand
    from aerotune.data.masks import read_mask_rgb
    from aerotune.data.sources import discover

    cm = np.zeros((6, 6), np.int64)
    for s in discover(synth_root).samples:
        if s.tile in held:
            truth, _ = predictor.palette.encode(read_mask_rgb(s.mask))
            cm += confusion(truth, segment_array(predictor, s.image), 6)
    assert result.data["tta"]["none"]["pooled"]["confusion"] == cm.tolist()
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["tta"]["none"]["pooled"]["mean_iou"] == pytest.approx(metrics(cm, saved["classes"])["mean_iou"])
    assert "| none |" in (tmp_path / "eval" / "evaluation.md").read_text()
    assert "Confusion matrix" in (tmp_path / "eval" / "evaluation.html").read_text()
    evaluate_scenes(predictor, synth_root, tmp_path / "eval", split="all")  # our own folder: replaced


def test_evaluate_refusals(run, synth_root, tmp_path):
    predictor = Predictor.load(run)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("keep me")
    with pytest.raises(RunError, match="not an aerotune evaluation"):
        evaluate_scenes(predictor, synth_root, tmp_path / "theirs")
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "keep me"
    with pytest.raises(RunError, match="--split image needs a run that held out whole images"):
        evaluate_scenes(predictor, synth_root, tmp_path / "e", split="image", run_split={"method": "tile"})
    assert not (tmp_path / "e").exists()


def test_cli_evaluate(run, synth_root, tmp_path):
    proc = aerotune("evaluate", run, "--data", synth_root, "--out", tmp_path / "eval")
    assert proc.returncode == 0, proc.stderr
    assert "TTA none: pixel accuracy" in proc.stdout
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["split"] == "tile"  # the run's own split
    proc = aerotune("evaluate", run, "--data", synth_root, "--out", tmp_path / "eval", "--split", "image")
    assert_one_line_error(proc, "needs a run that held out whole images")


def test_cli_evaluate_finds_suffixed_pairs(run, synth_root, tmp_path):
    """A dataset laid out like DeepGlobe (``x_sat.jpg`` beside ``x_mask.png`` in one folder) is evaluated with the
    layout options; the same pictures score exactly as in the usual layout, and without the options the refusal
    names them."""
    from helpers import deepglobe_layout

    flat = deepglobe_layout(synth_root, tmp_path / "flat")
    usual = aerotune("evaluate", run, "--data", synth_root, "--out", tmp_path / "usual", "--split", "all")
    assert usual.returncode == 0, usual.stderr
    proc = aerotune("evaluate", run, "--data", flat, "--out", tmp_path / "flat-eval", "--split", "all")
    assert_one_line_error(proc, "--image-suffix _sat --mask-suffix _mask")
    assert not (tmp_path / "flat-eval").exists()
    opts = ["--image-suffix", "_sat", "--mask-suffix", "_mask"]
    proc = aerotune("evaluate", run, "--data", flat, "--out", tmp_path / "flat-eval", "--split", "all", *opts)
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "flat-eval" / "metrics.json").read_text())["tta"]["none"]["pooled"]
    want = json.loads((tmp_path / "usual" / "metrics.json").read_text())["tta"]["none"]["pooled"]
    assert got["pixel_accuracy"] == want["pixel_accuracy"] and got["mean_iou"] == want["mean_iou"]


def test_metrics_show_the_majority_class_rate():
    cm = np.array([[6, 0], [3, 1]])  # truth: 6 of class a, 4 of class b; predicting a everywhere scores 0.6
    m = metrics(cm, ["a", "b"])
    assert m["majority_rate"] == pytest.approx(0.6) and m["majority_class"] == "a"
    assert m["pixel_accuracy"] == pytest.approx(0.7)


def _with_masks(synth_root, tmp_path, change) -> Path:
    """A copy of the synthetic set whose masks ``change(rgb)`` alters (in place)."""
    import shutil

    from PIL import Image

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    for mask in sorted(root.glob("*/masks/*.png")):
        rgb = np.array(Image.open(mask).convert("RGB"))
        change(rgb)
        Image.fromarray(rgb).save(mask)
    return root


def _black_corner(rgb):
    rgb[:4, :4] = 0


def test_evaluate_refuses_unknown_colours_like_prepare(run, synth_root, tmp_path):
    from safety import assert_refused

    root = _with_masks(synth_root, tmp_path, _black_corner)
    base = ("evaluate", run, "--data", root, "--out", tmp_path / "eval", "--split", "all")
    assert_refused(tmp_path, *base, needles=("#000000 (128 px in", "--unknown-colors ignore", "Building"))
    proc = aerotune(*base, "--unknown-colors", "ignore")
    assert proc.returncode == 0, proc.stderr
    assert "majority-class rate" in proc.stdout
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["unknown_colors"] == "ignore" and saved["tta"]["none"]["unknown_pixels"] == 128
    pooled = saved["tta"]["none"]["pooled"]
    assert 0 < pooled["majority_rate"] <= 1 and pooled["majority_class"] in saved["classes"]
    assert "majority-class rate" in (tmp_path / "eval" / "evaluation.md").read_text()


def test_evaluate_refuses_masks_of_another_palette_before_writing(run, synth_root, tmp_path):
    from safety import assert_refused

    root = _with_masks(synth_root, tmp_path, lambda rgb: rgb.__setitem__(slice(None), 255 - rgb))
    base = ("evaluate", run, "--data", root, "--out", tmp_path / "eval", "--split", "all")
    assert_refused(tmp_path, *base, needles=("palette looks wrong", "evaluate on masks labelled with them"))
    assert_refused(tmp_path, *base, "--unknown-colors", "ignore", needles=("no mask pixel has a colour",))
