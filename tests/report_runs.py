"""The report tests' tiny runs: a small training config and one real tuning run with its report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from aerotune.config import RunConfig
from aerotune.report import ReportResult, make_report

TINY = {
    "model.base_filters": 4,
    "model.depth": 3,
    "train.batch_size": 8,
    "train.progress": False,
    "data.patch_size": 32,
    "train.epochs": 3,
    "train.learning_rate": 0.01,
}


def tiny_config(**extra) -> RunConfig:
    return RunConfig().with_overrides({**TINY, **extra})


def make_tuning_run(cache, root: Path) -> Path:
    """A small real tuning run, written by ``aerotune.tune`` on the tiny cache.

    Six trials of at most 3 epochs (HyperBand from 1 epoch); trial 0 is the baseline (learning rate 0.01, relu).
    """
    from aerotune.tune.space_parse import parse_space
    from aerotune.tune.study import TuneSettings, run_tune

    space = parse_space(
        {
            "learning_rate": {"_type": "loguniform", "_value": [1e-3, 5e-2]},
            "activation_type": {"_type": "choice", "_value": ["relu", "swish"]},
        }
    )
    root.parent.mkdir(parents=True, exist_ok=True)
    run_tune(
        TuneSettings(
            data=cache.root,
            out=root,
            config=tiny_config(**{"train.threads": 1}),
            space=space,
            trials=6,
            sampler="random",
            study_name="report-test",
            heartbeat=2,
            baseline={"learning_rate": 0.01, "activation_type": "relu"},
        )
    )
    return root


def shared_tuning_report(tiny_cache, tmp_path_factory) -> tuple[Path, ReportResult]:
    """The tuning run and its report, built once per session in the session's base temp folder (the session
    fixtures ``tuning_run`` and ``tuning_report`` of conftest.py)."""
    root = tmp_path_factory.getbasetemp() / "shared-tuning"
    run, out = root / "run", root / "report"
    if not (out / "report.json").is_file():
        shutil.rmtree(root, ignore_errors=True)
        make_tuning_run(tiny_cache, run)
        make_report(run, out=out, seed=7)
    data = json.loads((out / "report.json").read_text())
    return run, ReportResult(
        out,
        out / "report.html",
        out / "report.md",
        out / "report.json",
        {k: out / v for k, v in data["figures"].items()},
        data,
    )
