"""Search spaces: NNI's format verbatim, the native TOML/YAML form, and clear errors before anything runs."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from aerotune.config import RunConfig
from aerotune.errors import SearchSpaceError
from aerotune.reference import REFERENCE_SPACE
from aerotune.tune.space_checks import resolve_baseline
from aerotune.tune.space_parse import default_space, load_space, parse_space, reference_space


def draw(space, n=200, seed=0):
    """Sample ``n`` configurations with Optuna's random sampler."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return out


def test_reference_space_keeps_nni_meaning():
    space = reference_space()
    assert set(space.params) == {"train.batch_size", "train.learning_rate", "model.activation"}
    bs = space.params["train.batch_size"]
    assert (bs.kind, bs.low, bs.high) == ("int", 1, 31)  # randint [1, 32): 32 excluded
    lr = space.params["train.learning_rate"]
    assert lr.log and (lr.low, lr.high) == (0.0001, 0.1)
    assert space.params["model.activation"].choices == ("relu", "tanh", "swish", None)
    values = draw(space)
    assert all(1 <= v["train.batch_size"] <= 31 for v in values)
    assert max(v["train.batch_size"] for v in values) == 31
    assert "none" in {v["model.activation"] for v in values}  # NNI null: no activation
    config = space.apply(RunConfig(), {"model.activation": None, "train.batch_size": 3})
    assert config.model.activation == "none" and config.train.batch_size == 3


def test_every_nni_type(tmp_path):
    raw = {
        "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
        "dropout_bottom": {"_type": "quniform", "_value": [0.05, 0.45, 0.1]},
        "learning_rate": {"_type": "qloguniform", "_value": [0.001, 0.1, 0.001]},
        "focal_gamma": {"_type": "normal", "_value": [2.0, 0.5]},
        "focal_alpha": {"_type": "qnormal", "_value": [0.25, 0.05, 0.05]},
        "dice_weight": {"_type": "lognormal", "_value": [0.0, 0.3]},
        "focal_weight": {"_type": "qlognormal", "_value": [0.0, 0.3, 0.5]},
        "base_filters": {"_type": "quniform", "_value": [8, 32, 8]},
        "augment": {"_type": "choice", "_value": [True, False]},
        "batch_size": {"_type": "randint", "_value": [4, 6]},
    }
    path = tmp_path / "space.json"
    path.write_text(json.dumps(raw))
    space = load_space(path)
    values = draw(space, 300)
    for v in values:
        assert 0.0 <= v["model.dropout"] <= 0.5
        q = v["model.dropout_bottom"]  # clip(round(x / 0.1) * 0.1, 0.05, 0.45)
        assert 0.05 <= q <= 0.45 and (
            math.isclose(q % 0.1, 0, abs_tol=1e-9) or q in (0.05, 0.45) or math.isclose(q % 0.1, 0.1, abs_tol=1e-9)
        )
        assert 0.001 <= v["train.learning_rate"] <= 0.1
        assert math.isclose(round(v["train.learning_rate"] / 0.001), v["train.learning_rate"] / 0.001)
        assert math.isclose(round(v["train.focal_alpha"] / 0.05), v["train.focal_alpha"] / 0.05)
        assert v["train.dice_weight"] > 0
        assert math.isclose(round(v["train.focal_weight"] / 0.5), v["train.focal_weight"] / 0.5)
        assert v["model.base_filters"] in (8, 16, 24, 32) and isinstance(v["model.base_filters"], int)
        assert v["train.batch_size"] in (4, 5)  # randint's upper bound is excluded
    gammas = [v["train.focal_gamma"] for v in values]
    mean = sum(gammas) / len(gammas)
    sd = (sum((g - mean) ** 2 for g in gammas) / len(gammas)) ** 0.5
    assert abs(mean - 2.0) < 0.15 and 0.4 < sd < 0.6  # the normal prior, through the quantile transform


def test_native_toml_and_yaml_match_nni(tmp_path):
    toml = tmp_path / "space.toml"
    toml.write_text("""
[train.batch_size]
type = "int"
low = 1
high = 31

[train]
learning_rate = { type = "float", low = 0.0001, high = 0.1, log = true }

[activation_type]
_type = "choice"
_value = ["relu", "tanh", "swish", "none"]
""")
    yaml = tmp_path / "space.yaml"
    yaml.write_text("""
train.batch_size: {type: int, low: 1, high: 31}
learning_rate: {type: float, low: 0.0001, high: 0.1, log: true}
model.activation: {type: categorical, choices: [relu, tanh, swish, none]}
""")
    a, b = load_space(toml).to_dict(), load_space(yaml).to_dict()
    ref = reference_space().to_dict()
    for d in (a, b):
        assert d["train.batch_size"]["low"] == 1 and d["train.batch_size"]["high"] == 31
        assert d["train.learning_rate"] == {"type": "float", "low": 0.0001, "high": 0.1, "log": True}
    assert a["train.batch_size"]["type"] == ref["train.batch_size"]["type"] == "int"
    # The resolved (native) form parses back to the same space.
    assert parse_space(ref).to_dict() == ref


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"batch_sise": {"_type": "randint", "_value": [1, 32]}}, "unknown setting 'batch_sise'"),
        ({"lr": {"_type": "logrithmic", "_value": [0.1, 1]}}, "unknown _type 'logrithmic'"),
        ({"lr": {"_type": "uniform", "_value": [0.1, 0.01]}}, "low must be below high"),
        ({"lr": {"_type": "loguniform", "_value": [0, 0.1]}}, "needs low > 0"),
        ({"lr": {"_type": "uniform", "_value": [0.1]}}, "_value must be a list [low, high]"),
        ({"lr": {"_type": "uniform", "_value": ["a", 1]}}, "finite numbers"),
        ({"batch_size": {"_type": "randint", "_value": [4, 4]}}, "lower < upper"),
        ({"batch_size": {"_type": "uniform", "_value": [4, 64]}}, "train.batch_size is a whole number"),
        ({"dropout": {"_type": "uniform", "_value": [0.0, 1.5]}}, "model.dropout = 1.5 is not allowed"),
        ({"activation_type": {"_type": "choice", "_value": ["relu", "gelu"]}}, "model.activation = 'gelu'"),
        ({"activation_type": {"_type": "choice", "_value": [{"_name": "x"}]}}, "nested search spaces"),
        ({"activation_type": {"_type": "choice", "_value": []}}, "non-empty list"),
        ({"epochs": {"_type": "randint", "_value": [1, 5]}}, "HyperBand's resource"),
        ({"patch_size": {"_type": "choice", "_value": [64, 128]}}, "changes the patch cache"),
        ({"val_fraction": {"_type": "choice", "_value": [0.1, 0.2]}}, "same train/validation split"),
        ({"lr": {"type": "float", "low": 0.1}}, "type float needs high"),
        ({"lr": {"type": "float", "low": 0.01, "high": 0.1, "mean": 3}}, "unknown field 'mean'"),
        ({"lr": {"type": "beta", "low": 0.01, "high": 0.1}}, "unknown type 'beta'"),
        ({"lr": 0.01}, "expected a distribution"),
        ({"augment": {"_type": "uniform", "_value": [0, 1]}}, "true/false"),
        ({"lr": {"_type": "uniform", "_value": [0.01, 0.1], "x": 1}}, "unknown field 'x'"),
    ],
)
def test_bad_spaces_are_clear_errors(tmp_path, raw, words):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SearchSpaceError) as err:
        load_space(path)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_space_file(tmp_path):
    with pytest.raises(SearchSpaceError, match="file not found"):
        load_space(tmp_path / "missing.json")
    bad = tmp_path / "space.json"
    bad.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="cannot parse"):
        load_space(bad)


def test_baseline_resolution():
    space = reference_space()
    base = RunConfig()
    values = resolve_baseline({"batch_size": 16, "learning_rate": 0.007, "activation_type": "relu"}, space, base)
    assert values == {"train.batch_size": 16, "train.learning_rate": 0.007, "model.activation": "relu"}
    # NNI's null and the config's "none" are the same choice.
    assert resolve_baseline({"activation_type": None}, space, base)["model.activation"] == "none"
    with pytest.raises(SearchSpaceError, match="not among the space's choices"):
        resolve_baseline(
            {"activation_type": "relu"},
            parse_space({"activation_type": {"_type": "choice", "_value": ["tanh", "swish"]}}),
            base,
        )
    with pytest.raises(SearchSpaceError, match="unknown setting"):
        resolve_baseline({"nope": 1}, space, base)
    # Enqueued raw values map back to the same settings, also for quantile-sampled parameters.
    s = parse_space({"focal_gamma": {"_type": "normal", "_value": [2.0, 0.5]}})
    raw = s.fixed_params({"train.focal_gamma": 2.3})
    assert math.isclose(s.params["train.focal_gamma"].value(raw["train.focal_gamma:raw"]), 2.3, rel_tol=1e-6)


def test_reference_space_verbatim_json(tmp_path):
    path = tmp_path / "search_space.json"
    path.write_text(json.dumps(REFERENCE_SPACE))
    assert load_space(path).to_dict() == reference_space().to_dict()


def test_baseline_none_enqueues_nni_null():
    space = reference_space()
    values = resolve_baseline({"activation_type": None}, space, RunConfig())
    assert space.fixed_params(values)["model.activation"] is None


def test_the_default_space_searches_the_recipe_levers_and_holds_the_reference_trial():
    space = default_space()
    assert {"train.learning_rate", "train.weight_decay", "model.norm", "data.jitter", "train.dice_weight"} <= set(
        space.params
    )
    base = RunConfig()
    for values in draw(space, n=30):
        space.apply(base, values).validate()  # every draw is a valid config
    from aerotune.reference import reference_trial

    values = resolve_baseline(reference_trial(), space, base)
    assert values["model.norm"] == "none" and values["train.weight_decay"] == 0.0
    fixed = space.fixed_params(values)
    # weight decay 0 lies outside the log range: not handed to Optuna (the trial overlays it), the rest is
    assert "train.weight_decay" not in fixed and fixed["model.norm"] == "none" and fixed["train.batch_size"] == 16
