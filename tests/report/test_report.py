"""The report stage: a tuning run and training runs in, a self-contained HTML/Markdown/JSON report out."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aerotune.commands import main
from aerotune.curves import pr_summary
from aerotune.errors import RunError
from aerotune.report import make_report
from aerotune.report.collect import gather
from aerotune.report.evaluate import pick_patches
from aerotune.train.fit import fit

from report_runs import tiny_config

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


@pytest.fixture(scope="module")
def two_runs(tiny_cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    fit(tiny_config(**{"train.epochs": 2}), tiny_cache, tmp / "a")
    fit(
        tiny_config(**{"train.epochs": 2, "train.learning_rate": 0.003, "model.activation": "swish"}),
        tiny_cache,
        tmp / "b",
    )
    return tmp / "a", tmp / "b"


def test_tuning_report_writes_html_markdown_json_and_figures(tuning_report):
    out = tuning_report.out
    assert tuning_report.html == out / "report.html" and tuning_report.html.is_file()
    assert tuning_report.markdown.is_file() and tuning_report.json.is_file()
    data = json.loads(tuning_report.json.read_text())
    for name in (
        "patches",
        "loss",
        "precision_recall",
        "class_iou",
        "confusion",
        "budget",
        "best_so_far",
        "trial_curves",
        "importances",
    ):
        png = out / data["figures"][name]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({data['figures'][name]})" in tuning_report.markdown.read_text(), name
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".")]  # built aside, renamed into place


def test_html_is_self_contained(tuning_report):
    page = tuning_report.html.read_text()
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', page)
    assert len(srcs) == len(json.loads(tuning_report.json.read_text())["figures"])
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_report_has_every_section_the_reference_showed_and_more(tuning_report):
    data = tuning_report.data
    page = tuning_report.html.read_text()
    md = tuning_report.markdown.read_text()
    # The reference: best vs initial parameters, final validation losses, precision/recall at 0.5.
    params = {r["name"]: r for r in data["parameters"]}
    assert {"train.learning_rate", "model.activation", "train.batch_size"} <= set(params)
    assert params["train.learning_rate"]["baseline"] == 0.01
    models = data["models"]
    for k in ("baseline", "tuned"):
        assert math.isfinite(models[k]["final_val_loss"])
        for split in ("train", "val"):
            assert 0 <= models[k][split]["precision_ref"] <= 1 and 0 <= models[k][split]["recall_ref"] <= 1
        assert len(models[k]["per_class"]) == 6 and 0 <= models[k]["ap_pooled"] <= 1
        cm = np.asarray(models[k]["confusion"])
        assert cm.shape == (6, 6) and cm.sum() == data["val_patches_evaluated"] * 32 * 32
    # Beyond it: the protocol, mean IoU with/without Unlabeled, the majority rate, the study.
    for key in ("data", "patch_size", "scale", "split", "patch_seed"):
        assert key in data["protocol"]
    labels = [r["label"] for r in data["headline"]]
    assert "mean IoU without Unlabeled" in labels and any("majority" in label for label in labels)
    study = data["study"]
    summary = json.loads((Path(data["run"]) / "summary.json").read_text())
    assert [t["state"] for t in study["trials"]].count("PRUNED") == summary["counts"]["pruned"]
    assert study["epochs_spent"] == summary["epochs_spent"] and study["reference_epochs"] == 3455
    assert study["importances"] and set(study["importances"]) == {"train.learning_rate", "model.activation"}
    assert data["verdict"]["status"] in ("better", "worse", "mixed")
    for text in (
        "Protocol",
        "Best parameters against the initial ones",
        "Precision and recall at 0.5",
        "Trials",
        "Per-class metrics",
        "Confusion matrices",
        "of the reference",
    ):
        assert text in page and text in md, text


def test_tuned_is_the_best_trial_and_baseline_the_baseline_trial(tuning_run, tuning_report):
    summary = json.loads((tuning_run / "summary.json").read_text())
    data = tuning_report.data
    assert data["tuned_run"] == str((tuning_run / "trials" / f"{summary['best_trial']:04d}").resolve())
    assert data["baseline_run"] == str((tuning_run / "trials" / "0000").resolve())


def test_evaluation_reproduces_the_training_runs_validation_loss(tuning_run, tuning_report):
    """The report's numbers come from a fresh evaluation; it must agree with what training logged."""
    for key, folder in (("tuned", Path(tuning_report.data["tuned_run"])), ("baseline", tuning_run / "trials/0000")):
        logged = json.loads((folder / "metrics.json").read_text())["best_val_loss"]
        assert tuning_report.data["models"][key]["val"]["loss"] == pytest.approx(logged, rel=1e-4)


def test_same_saved_seed_same_patches(tuning_run, tuning_report):
    data = tuning_report.data
    val = json.loads((tuning_run / "trials" / "0000" / "split.json").read_text())["val"]
    assert data["seed"] == 7 and len(data["shown_patches"]) == 10 and set(data["shown_patches"]) <= set(val)
    assert pick_patches(len(val), 10, 7) == pick_patches(len(val), 10, 7)
    assert pick_patches(len(val), 10, 7) != pick_patches(len(val), 10, 8)
    assert pick_patches(4, 10, 0) == [0, 1, 2, 3]


def test_binned_curves_match_torchmetrics_and_the_pooled_curve_is_the_one_hot_curve():
    from torchmetrics.classification import (
        BinaryAveragePrecision,
        MulticlassAveragePrecision,
        MulticlassPrecisionRecallCurve,
    )

    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (5000,), generator=gen)
    probs = (torch.randn(5000, 4, generator=gen) + 2 * torch.nn.functional.one_hot(target, 4)).softmax(1)
    curve = MulticlassPrecisionRecallCurve(num_classes=4, thresholds=101)
    for chunk in range(0, 5000, 1000):
        curve.update(probs[chunk : chunk + 1000], target[chunk : chunk + 1000])
        assert curve.confmat.shape == (101, 4, 2, 2)  # bounded: counts per threshold, never the scores
    pr_class, ap_class, pooled, ap_pooled = pr_summary(curve.confmat)
    expected = MulticlassAveragePrecision(num_classes=4, average=None, thresholds=101)(probs, target)
    assert ap_class == pytest.approx(expected.tolist(), abs=1e-6)
    onehot = torch.nn.functional.one_hot(target, 4)
    binned = BinaryAveragePrecision(thresholds=101)(probs.reshape(-1), onehot.reshape(-1))
    assert ap_pooled == pytest.approx(float(binned), abs=1e-6)
    exact = float(BinaryAveragePrecision()(probs.reshape(-1), onehot.reshape(-1)))
    assert ap_pooled == pytest.approx(exact, abs=0.01)  # binning costs little
    assert len(pooled["precision"]) == len(pr_class[0]["recall"]) == 101


def test_training_run_alone_has_no_comparison(two_runs, tmp_path):
    result = make_report(two_runs[0], out=tmp_path / "r")
    data = result.data
    assert "baseline" not in data["models"] and data["verdict"]["status"] == "single"
    assert data["labels"]["tuned"] == "model" and "study" not in data
    page = result.html.read_text()
    text = re.sub(r"<[^>]+>", " ", page.split("<main>")[1])  # the visible text
    assert 'class="baseline"' not in page and "tuned" not in text


def test_cli_report_with_baseline_prints_the_path(two_runs, tmp_path, capsys):
    out = tmp_path / "cli"
    assert (
        main(
            [
                "report",
                str(two_runs[1]),
                "--baseline",
                str(two_runs[0]),
                "--out",
                str(out),
                "--seed",
                "3",
                "--max-patches",
                "20",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert str(out / "report.html") in printed.splitlines()[0]
    data = json.loads((out / "report.json").read_text())
    assert data["train_patches_evaluated"] == 20 and data["seed"] == 3
    changed = {r["name"] for r in data["parameters"] if r["changed"]}
    assert changed == {"train.learning_rate", "model.activation"}
    # A second report into the same folder replaces the first.
    assert main(["report", str(two_runs[1]), "--out", str(out)]) == 0
    assert "baseline" not in json.loads((out / "report.json").read_text())["models"]


def test_missing_run_is_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err and "run folder not found" in err
    assert not (tmp_path / "r").exists()


def test_refuses_to_overwrite_a_folder_that_is_not_a_report(two_runs, tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("x")
    with pytest.raises(RunError, match="not an aerotune report"):
        make_report(two_runs[0], out=tmp_path / "keep")
    assert (tmp_path / "keep" / "precious.txt").is_file()


def test_failure_leaves_nothing_half_written(two_runs, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(RunError, match="split.json"):
        make_report(two_runs[0], baseline=broken, out=tmp_path / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_importances_skipped_with_a_note_when_the_study_cannot_be_loaded(tuning_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tuning_run, copy)
    (copy / "journal.log").unlink()
    result = make_report(copy, out=tmp_path / "r", max_train_patches=8)
    study = result.data["study"]
    assert study["importances"] is None and "not shown" in study["importance_note"]
    assert "importances" not in result.data["figures"]
    assert study["importance_note"] in result.html.read_text()


def test_ignored_pixels_are_skipped_by_every_metric(tiny_cache, tmp_path):
    """A cache whose masks carry the ignore label: the confusion matrix counts only labelled pixels."""
    from aerotune.data.patches import open_cache

    cache_dir = tmp_path / "cache"
    shutil.copytree(tiny_cache.root, cache_dir)
    masks = np.memmap(cache_dir / "masks.u8", dtype=np.uint8, mode="r+", shape=tiny_cache.masks.shape)
    masks[:, :4, :] = 255
    masks.flush()
    del masks
    cache = open_cache(cache_dir)
    fit(tiny_config(**{"train.epochs": 1}), cache, tmp_path / "run")
    result = make_report(tmp_path / "run", out=tmp_path / "r", max_train_patches=8)
    cm = np.asarray(result.data["models"]["tuned"]["confusion"])
    assert cm.sum() == result.data["val_patches_evaluated"] * 28 * 32


def test_gather_rejects_a_study_without_complete_trials(tuning_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tuning_run, copy)
    trials = json.loads((copy / "trials.json").read_text())
    for t in trials:
        t["state"] = "RUNNING"
    (copy / "trials.json").write_text(json.dumps(trials))
    (copy / "summary.json").unlink()
    with pytest.raises(RunError, match="no complete trial"):
        gather(copy)


def test_a_study_whose_every_trial_diverged_says_so(tuning_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(tuning_run, copy)
    trials = json.loads((copy / "trials.json").read_text())
    for t in trials:
        t.update(state="FAIL", status="diverged", value=None, reason="val_loss became non-finite in epoch 1")
    (copy / "trials.json").write_text(json.dumps(trials))
    (copy / "summary.json").unlink()
    with pytest.raises(RunError) as caught:
        gather(copy)
    text = str(caught.value)
    assert f"every one of its {len(trials)} trial(s) diverged" in text and "learning rate" in text
    assert "--set train.learning_rate" in text and "--space" in text and "run longer" not in text
    assert main(["report", str(copy), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "diverged" in err[0] and not (tmp_path / "r").exists()


def test_patch_figure_uses_the_palette_and_names_ignored_pixels():
    from aerotune.data.palette import Palette
    from aerotune.report import figures

    palette = Palette.dubai()
    truth = np.zeros((2, 16, 16), np.uint8)
    truth[0, :4] = 255
    images = np.zeros((2, 16, 16, 3), np.uint8)
    with figures.style():
        fig = figures.patches_figure(images, truth, truth, None, palette)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [*palette.names, "ignored (unknown colour)"]
    shown = fig.axes[1].images[0].get_array()  # the ground-truth panel, drawn in the palette's colours
    assert tuple(shown[8, 8]) == palette.colors[0] and tuple(shown[0, 0]) == figures.ignored_color(palette)


def test_report_reads_the_study_through_the_tuning_records(tuning_run, tuning_report):
    """The study section is what aerotune.tune wrote: its trials, counts, budget and durations."""
    from aerotune.tune.records import read_tune_run

    run = read_tune_run(tuning_run)
    study = tuning_report.data["study"]
    assert study["best_trial"] == run.summary.best_trial and study["baseline_trial"] == run.baseline_trial == 0
    assert len(study["trials"]) == run.summary.counts["trials"] == 6
    assert study["epochs_spent"] == run.summary.epochs_spent
    assert all(t["duration"] is not None for t in study["trials"] if t["state"] == "COMPLETE")
    complete = sum(t["state"] == "COMPLETE" for t in study["trials"])
    assert (study["importances"] is not None) == (complete >= 3), study["importance_note"]


def test_report_json_reads_back_as_its_record_and_renders_the_same(tuning_report):
    from aerotune.report.records import ReportRecord
    from aerotune.report.render import render_html, render_markdown

    data = json.loads(tuning_report.json.read_text())
    record = ReportRecord.from_json(data)
    assert json.loads(json.dumps(record.to_json())) == data
    assert render_markdown(record) == tuning_report.markdown.read_text()
    assert render_html(record, tuning_report.out) == tuning_report.html.read_text()
    # a report.json of an older aerotune: sections it did not have yet are defaulted
    old = ReportRecord.from_json({k: v for k, v in data.items() if k not in ("colors_from", "seconds", "figures")})
    assert (
        old.colors_from == "masks" and old.figures == {} and old.models["tuned"].per_class[0].name == data["classes"][0]
    )
    damaged = json.loads(json.dumps(data))
    damaged["models"]["tuned"]["val_patches"] = "many"
    with pytest.raises(RunError, match="field 'models'.*field 'val_patches' is a str"):
        ReportRecord.from_json(damaged)
