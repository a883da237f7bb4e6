"""``aerotune report RUN --seeds K``: the seed verdict, its retrainings kept in RUN/seeds, reused and resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aerotune.commands import main
from aerotune.config import RunConfig
from aerotune.report.seed_stats import comparison, spread, t_two_sided, welch

TINY = {
    "model.base_filters": 4,
    "model.depth": 3,
    "train.batch_size": 8,
    "train.progress": False,
    "data.patch_size": 32,
    "train.epochs": 2,
    "train.threads": 1,
    "data.test_tiles": "Tile 2",
}


@pytest.fixture(scope="module")
def study(tiny_cache, tmp_path_factory) -> Path:
    """A tiny study of 3 trials of 2 epochs: the reference (trial 0), the default recipe (trial 1), one more;
    Tile 2's 4 images held out as its test portion."""
    from aerotune.tune.space_parse import parse_space
    from aerotune.tune.study import TuneSettings, run_tune

    run = tmp_path_factory.mktemp("seeds") / "study"
    run_tune(
        TuneSettings(
            data=tiny_cache.root,
            out=run,
            config=RunConfig().with_overrides(TINY),
            space=parse_space({"learning_rate": {"_type": "loguniform", "_value": [1e-3, 2e-2]}}),
            trials=3,
            sampler="random",
            study_name="seeds-test",
            heartbeat=2,
        )
    )
    return run


@pytest.fixture()
def run(study, tmp_path) -> Path:
    """A copy of the study of this test's own (its RUN/seeds starts empty)."""
    return shutil.copytree(study, tmp_path / "study", symlinks=True)


def seed_runs(run: Path) -> dict[str, float]:
    """Each finished retraining's metrics.json modification time, by folder name."""
    return {p.parent.name: p.stat().st_mtime_ns for p in sorted((run / "seeds").glob("*/metrics.json"))}


def numbers(report: Path) -> dict:
    seeds = json.loads((report / "report.json").read_text())["seeds"]
    return {k: (m["val_loss"]["values"], m["mean_iou"]["values"]) for k, m in seeds["models"].items()}


def report_args(run: Path, out: Path, *more: str) -> list[str]:
    return ["report", str(run), "--out", str(out), "--max-patches", "8", "--thresholds", "11", *more]


# ------------------------------------------------------------------ the statistics


def test_welch_p_values_match_students_t():
    assert t_two_sided(2.0, 10) == pytest.approx(0.07339, abs=1e-5)  # scipy.stats.t.sf(2, 10) * 2
    assert t_two_sided(12.706, 1) == pytest.approx(0.05, abs=1e-4)
    assert t_two_sided(2.776, 4) == pytest.approx(0.05, abs=1e-4)
    w = welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.5])
    assert w.t == pytest.approx(-3.4125, abs=1e-4) and w.df == pytest.approx(3.806, abs=1e-3)
    assert w.p == pytest.approx(0.0291, abs=1e-3)
    assert welch([0.5], [0.4]).p is None  # one seed measures no noise
    assert welch([0.5, 0.5], [0.4, 0.4]).p == 0.0 and welch([0.5, 0.5], [0.5, 0.5]).p == 1.0
    c = comparison([0.30, 0.31, 0.32], [0.20, 0.21, 0.22], higher_is_better=True)
    assert c.better and c.beyond_noise
    s = spread([0.1, 0.3])
    assert s.mean == pytest.approx(0.2) and s.sd == pytest.approx(0.1414, abs=1e-4) and s.max == 0.3


# ------------------------------------------------------------------ K: asked for, or from the study's budget


def test_default_k_follows_the_studys_own_epochs(run):
    from dataclasses import replace

    from aerotune.report.collect import gather
    from aerotune.report.seeds import plan_seeds

    src = gather(run)
    spent = src.study.summary.epochs_spent
    plan = plan_seeds(src, None, external_baseline=False)
    assert plan.k == 0 and "--seeds K" in plan.note and f"the study's own {spent}" in plan.note
    assert plan_seeds(src, 0, external_baseline=False).note == ""  # --seeds 0: off, nothing to say
    rich = replace(src, study=replace(src.study, summary=replace(src.study.summary, epochs_spent=10_000)))
    plan = plan_seeds(rich, None, external_baseline=False)
    trials = sorted(set(plan.models.values()))
    assert plan.k == 3 and len(plan.jobs) == 3 * len(trials) and plan.epochs_total == 3 * len(trials) * 2
    assert not (run / "seeds").exists()  # planned and checked: nothing written


# ------------------------------------------------------------------ the seed verdict, reused and resumed


def test_seeds_give_a_verdict_and_a_rerun_reuses_and_resumes(run, tmp_path, capsys, caplog):
    out = tmp_path / "report"
    assert main(report_args(run, out, "--seeds", "2")) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    s = data["seeds"]
    assert s["k"] == 2 and s["basis"] == "test" and s["test"].startswith("Welch's t-test")
    roles = list(s["models"])
    assert {"baseline", "tuned"} <= set(roles) and roles == [r for r in ("baseline", "default", "tuned") if r in roles]
    for m in s["models"].values():
        assert m["val_loss"]["n"] == 2 and m["mean_iou"]["n"] == 2 and m["mean_iou"]["sd"] is not None
        assert m["val_loss"]["min"] <= m["val_loss"]["mean"] <= m["val_loss"]["max"]
    first = s["comparisons"][0]
    assert (first["model"], first["than"]) == ("tuned", "baseline") and 0 <= first["mean_iou"]["p"] <= 1
    assert "seed noise (Welch's t-test, p" in s["verdict"] and s["verdict"] in printed
    trials = sorted({m["trial"] for m in s["models"].values()})
    assert s["cost"]["epochs"] == s["cost"]["epochs_now"] == 2 * 2 * len(trials) and "Cost:" in printed
    assert sorted(seed_runs(run)) == [f"{t:04d}-seed{k}" for t in trials for k in (43, 44)]  # train.seed 42 + 1, 2
    assert json.loads((run / "seeds" / ".aerotune.json").read_text())["kind"] == "seeds"
    for page in (out / "report.md", out / "report.html"):
        text = page.read_text()
        assert "Seed noise" in text and "mean ± sd (min–max)" in text and "Welch" in text
        assert "test mean IoU (whole images)" in text
    before, mtimes = numbers(out), seed_runs(run)

    # An interrupted report: one retraining gone, another stopped after its first epoch (its checkpoint kept).
    gone, cut = run / "seeds" / f"{trials[-1]:04d}-seed44", run / "seeds" / f"{trials[0]:04d}-seed43"
    shutil.rmtree(gone)
    stop_after_first_epoch(cut)
    caplog.set_level("INFO", logger="aerotune")
    assert main(report_args(run, out, "--seeds", "2")) == 0
    again = json.loads((out / "report.json").read_text())["seeds"]
    assert numbers(out) == before  # deterministic per seed: retrained, resumed and reused runs give the same numbers
    assert again["cost"]["epochs_now"] == 2 + 1
    kept = {k: v for k, v in seed_runs(run).items() if k not in (gone.name, cut.name)}
    assert kept == {k: v for k, v in mtimes.items() if k not in (gone.name, cut.name)}  # reused, not rewritten
    logged = caplog.text
    assert logged.count("reusing the finished retraining") == len(kept)
    assert (
        f"resuming trial {trials[0]} with seed 43" in logged and f"retraining trial {trials[-1]} with seed 44" in logged
    )


def stop_after_first_epoch(path: Path) -> None:
    """Train ``path``'s retraining again from scratch and stop it after its first epoch, as Ctrl-C would: its
    checkpoint written, no metrics.json."""
    from aerotune.data.dataset import Split
    from aerotune.data.patches import open_cache
    from aerotune.outputs import mark
    from aerotune.train.fit import Callback, fit

    config = RunConfig.from_dict(json.loads((path / "config.json").read_text()))
    split = Split.from_dict(json.loads((path / "split.json").read_text()))
    cache = open_cache(json.loads((path / "data.json").read_text())["cache"])
    shutil.rmtree(path)
    path.mkdir()
    mark(path, "train-run")

    class Stop(Callback):
        def on_epoch_end(self, epoch, record):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, cache, path, split=split, callback=Stop())
    assert (path / "checkpoints" / "last.pt").is_file() and not (path / "metrics.json").exists()


def test_a_real_ctrl_c_keeps_finished_retrainings_for_the_rerun(run, tmp_path, capsys):
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aerotune", *report_args(run, out, "--seeds", "2")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not seed_runs(run) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first retraining has finished
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the report finished before the signal arrived")
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == (
        "aerotune: interrupted; rerun the same command to resume"
    )
    assert not out.exists()  # no half report
    finished = seed_runs(run)
    assert finished  # the finished retraining(s) stay
    assert main(report_args(run, out, "--seeds", "2")) == 0
    after = seed_runs(run)
    assert {k: after[k] for k in finished} == finished  # reused as they were
    data = json.loads((out / "report.json").read_text())["seeds"]
    assert data["cost"]["epochs_now"] <= data["cost"]["epochs"] - 2 * len(finished)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("value", ["-1", "x", "21", "2.5"])
def test_a_bad_seeds_value_is_a_one_line_refusal(run, tmp_path, capsys, value):
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exc:
        main(report_args(run, out, "--seeds", value))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--seeds" in err and value in err
    assert not out.exists() and not (run / "seeds").exists()


def test_seeds_on_what_cannot_be_retrained_are_refused(run, tmp_path, capsys):
    from aerotune.errors import RunError
    from aerotune.report import make_report

    out = tmp_path / "report"
    with pytest.raises(RunError, match="--seeds 25 is out of range"):
        make_report(run, out=out, seeds=25)
    trial = run / "trials" / "0000"  # a training run: no study to retrain
    listing = sorted(p.name for p in trial.iterdir())
    assert main(report_args(trial, out, "--seeds", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a tuning run" in err and "--seeds 0" in err
    assert not out.exists() and sorted(p.name for p in trial.iterdir()) == listing
