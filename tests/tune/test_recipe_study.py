"""A study under the default recipe: trial 0 trains the reference's recipe, trial 1 the default recipe untuned, and
the report compares reference | default recipe | tuned."""

from __future__ import annotations

import json

import pytest

from aerotune.config import RunConfig
from aerotune.report import make_report
from aerotune.tune.space_parse import parse_space
from aerotune.tune.study import TuneSettings, run_tune

pytestmark = pytest.mark.slow  # tunes and reports

TINY = {
    "model.base_filters": 4,
    "model.depth": 3,
    "train.batch_size": 8,
    "train.progress": False,
    "train.threads": 1,
    "data.patch_size": 32,
    "train.epochs": 3,
}
SPACE = {
    "learning_rate": {"_type": "loguniform", "_value": [1e-3, 3e-2]},
    "norm": {"_type": "choice", "_value": ["none", "batch", "group"]},
}


@pytest.fixture(scope="module")
def study(tiny_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe-study") / "run"
    result = run_tune(
        TuneSettings(
            data=tiny_cache.root,
            out=out,
            config=RunConfig().with_overrides(TINY),
            space=parse_space(SPACE),
            trials=5,
            sampler="random",
            study_name="recipe",
            heartbeat=2,
        )
    )
    return out, result


def test_trial_0_is_the_reference_recipe_and_trial_1_the_default_untuned(study):
    out, _ = study
    trials = {t["number"]: t for t in json.loads((out / "trials.json").read_text())}
    ref = json.loads((out / "trials" / "0000" / "config.json").read_text())
    default = json.loads((out / "trials" / "0001" / "config.json").read_text())
    assert trials[0]["baseline"] and not trials[0]["default_recipe"]
    assert trials[1]["default_recipe"] and not trials[1]["baseline"]
    assert (ref["model"]["norm"], ref["train"]["optimizer"], ref["train"]["schedule"], ref["data"]["augment"]) == (
        "none",
        "adam",
        "constant",
        False,
    )
    assert (ref["train"]["learning_rate"], ref["model"]["dropout"]) == (0.007, 0.2)
    base = RunConfig().with_overrides(TINY).to_dict()
    for section in ("model", "train", "data"):
        for key in ("norm", "optimizer", "schedule", "augment", "jitter", "window", "learning_rate"):
            if key in base[section]:
                assert default[section][key] == base[section][key], (section, key)
    # both are never pruned: they train every epoch, so the report's columns are full runs
    assert trials[0]["epochs"] == trials[1]["epochs"] == 3
    # params are the searched settings; the reference's recipe is recorded beside them, not as searched values
    assert set(trials[0]["params"]) == {"train.learning_rate", "model.norm"}
    assert trials[0]["params"] == {"train.learning_rate": 0.007, "model.norm": "none"}


def test_the_report_shows_reference_default_and_tuned(study, tmp_path):
    out, result = study
    report = make_report(out, out=tmp_path / "report", seed=0)
    data = json.loads(report.json.read_text())
    assert {"baseline", "default", "tuned"} <= set(data["models"])
    assert data["labels"]["baseline"] == "reference" and data["labels"]["default"] == "default recipe"
    md = report.markdown.read_text()
    assert "| reference | default recipe |" in md.replace("  ", " ") or ("reference" in md and "default recipe" in md)
    norm = next(r for r in data["parameters"] if r["name"] == "model.norm")
    assert norm["baseline"] == "none" and "default" in norm and norm["changed"]
    assert any("what the recipe gave" in n for n in data["notes"])
