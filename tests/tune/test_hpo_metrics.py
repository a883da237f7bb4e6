"""benchmarks/hpo_replay/metrics.py and the user-facing figures of evidence.py on hand-made tables with known
answers: kept-model regret, P(within eps), bootstrap intervals, correlations over learners, noise calibration."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo_tables import row as _row

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "hpo_replay"))
import evidence  # noqa: E402
import metrics  # noqa: E402
import replay  # noqa: E402


def _quality_table() -> replay.Table:
    """Three configurations (lr 0.001, 0.01, 0.1 at batch 8); the middle one recorded at 3 seeds."""
    rows = [
        _row(0.001, 8, [0.9, 0.8, 0.70]),  # best loss 0.70
        _row(0.01, 8, [0.8, 0.7, 0.62]),  # seeds 42/1/2: best 0.62, 0.60, 0.64 -> quality 0.62
        _row(0.01, 8, [0.8, 0.7, 0.60], seed=1),
        _row(0.01, 8, [0.8, 0.7, 0.64], seed=2),
        _row(0.1, 8, [1.05, 1.04, 1.03]),  # never learns
    ]
    return replay.load_table(rows, epochs=3, chance_loss=1.0)


def test_quality_learners_and_eps():
    t = _quality_table()
    q = {dict(k)["train.learning_rate"]: t.quality[i] for i, k in enumerate(t.keys)}
    assert q == pytest.approx({0.001: 0.70, 0.01: 0.62, 0.1: 1.03})
    learns = {dict(k)["train.learning_rate"]: bool(t.learns[i]) for i, k in enumerate(t.keys)}
    assert learns == {0.001: True, 0.01: True, 0.1: False}
    # the seed noise of a run's best loss over learners: sd of 0.62, 0.60, 0.64 = 0.02
    assert t.eps == pytest.approx(0.02) and t.learn_threshold == pytest.approx(0.98)


def _log(config: int, first: int, values: list[float], complete: bool) -> dict:
    return {"config": config, "first": first, "values": values, "complete": complete}


def test_kept_model_regret_uses_the_quality_not_the_observed_minimum():
    t = _quality_table()
    i = {dict(k)["train.learning_rate"]: n for n, k in enumerate(t.keys)}
    trials = [
        _log(i[0.001], 1, [0.9, 0.8, 0.55], True),  # lucky noise: observed 0.55, quality 0.70
        _log(i[0.01], 4, [0.8, 0.7, 0.61], True),  # observed 0.61, quality 0.62 (the best)
        _log(i[0.1], 7, [0.50], False),  # pruned after one (absurdly lucky) epoch: never kept while others exist
    ]
    assert metrics.kept_config(trials, 2) == (i[0.001], False)  # nothing complete: the best epoch so far, flagged
    assert metrics.kept_config(trials, 3) == (i[0.001], True)
    assert metrics.kept_config(trials, 6) == (i[0.001], True)  # the study saw 0.55 < 0.61: it keeps the worse one
    assert metrics.regret(metrics.kept_config(trials, 6)[0], t.quality) == pytest.approx(0.08)
    assert metrics.regret(i[0.01], t.quality) == 0.0
    assert metrics.regret(None, t.quality) == math.inf
    assert metrics.kept_config([], 5) == (None, False)


def _study(method: str, seed: int, trials: list[dict]) -> dict:
    events = [[t["first"] + j, v] for t in trials for j, v in enumerate(t["values"])]
    return {"method": method, "seed": seed, "trials": len(trials), "events": events, "trials_log": trials}


def test_regime_gives_regret_and_p_within_eps_per_fraction():
    t = _quality_table()
    i = {dict(k)["train.learning_rate"]: n for n, k in enumerate(t.keys)}
    good, worse = i[0.01], i[0.001]
    studies = []
    for seed in range(10):  # budget 20 epochs; random search trains 2 configurations of 3 epochs
        kept = good if seed < 6 else worse  # 6 of 10 seeds end on the best configuration
        studies.append(
            _study("rs", seed, [_log(worse, 1, [0.9, 0.8, 0.7], True), _log(kept, 4, [0.8, 0.7, 0.6], True)])
        )
        studies.append(_study("hb", seed, [_log(good, 1, [0.8, 0.7, 0.6], True)]))
    r = evidence.regime(studies, t, budget=20, eps=t.eps)
    rs, hb = r["methods"]["rs"], r["methods"]["hb"]
    # at 1.0: rs regret is 0 in 6 seeds and 0.08 in 4 -> mean 0.032; P(within 0.02) = 0.6
    assert rs["at"]["1"]["regret"]["value"] == pytest.approx(0.032)
    assert rs["at"]["1"]["within_eps"]["value"] == pytest.approx(0.6)
    lo, hi = rs["at"]["1"]["within_eps"]["ci95"]
    assert lo < 0.6 < hi
    # at 0.1 (2 epochs) nothing is complete yet: flagged; at 0.2 (4 epochs) rs has only its first trial
    assert rs["at"]["0.1"]["no_complete_trial"] == 1.0 and rs["at"]["0.2"]["no_complete_trial"] == 0.0
    assert rs["at"]["0.2"]["regret"]["value"] == pytest.approx(0.08)
    assert rs["at"]["0.2"]["within_eps"]["value"] == 0.0
    # hb keeps the best configuration: regret 0, P = 1 (before its trial completes, by the flagged fallback), so it
    # matches random search's full-budget regret at the first point of the grid, and beats it by 0.032 at 0.2
    assert hb["at"]["0.2"]["regret"]["value"] == 0.0 and hb["at"]["0.2"]["within_eps"]["value"] == 1.0
    assert hb["saving_regret"]["fraction"] == pytest.approx(0.05)
    assert hb["regret_vs_rs_full_at_0.2"]["value"] == pytest.approx(-0.032)


def test_bootstrap_interval_contains_the_truth():
    rng = np.random.default_rng(1)
    hits = 0
    for k in range(40):
        x = rng.normal(0.3, 0.1, 100)
        est, lo, hi = metrics.bootstrap_ci(x, n=500, seed=k)
        assert lo < est < hi
        hits += lo <= 0.3 <= hi
    assert hits >= 34  # 95 % nominal over 40 draws: at least 34 with overwhelming probability
    p = (rng.random(200) < 0.7).astype(float)
    _, lo, hi = metrics.bootstrap_ci(p)
    assert lo < 0.7 < hi and hi - lo < 0.15


def test_correlations_over_learners_only():
    # learners: the loss after 1 epoch ranks them perfectly; non-learners scramble the ranking over all
    learners = np.array([[0.90, 0.8, 0.70], [0.92, 0.8, 0.72], [0.94, 0.8, 0.74], [0.96, 0.9, 0.76]])
    stuck = np.array([[0.50, 1.0, 1.01], [0.60, 1.0, 1.02], [0.55, 1.0, 1.03]])
    curves = np.vstack([learners, stuck])
    keep = np.array([True] * 4 + [False] * 3)
    final = curves[:, -1]
    out = metrics.early_ranking(curves, final, keep, epochs=(1, 3))
    assert out["configs"] == 4 and out["epoch_1"] == pytest.approx(1.0) and out["epoch_3"] == pytest.approx(1.0)
    everything = metrics.early_ranking(curves, final, np.ones(7, bool), epochs=(1,))
    assert everything["configs"] == 7 and everything["epoch_1"] < 0
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_noise_over_learners_is_recovered_from_a_table():
    """Learners recorded at 3 seeds with noise sd 0.02, non-learners with sd 0.001: the replayed noise is the
    learners' (the old pooled estimate sat in between)."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(30):
        lr, learner = 10 ** (-4 + c * 0.1), c < 15
        base = np.linspace(0.9, 0.75, 6) if learner else np.full(6, 1.04)
        for seed in (42, 1, 2):
            noise = rng.normal(0, 0.02 if learner else 0.001, 6)
            rows.append(_row(lr, 8, list(np.round(base + noise, 6)), seed=seed))
    t = replay.load_table(rows, epochs=6, chance_loss=1.03)
    assert t.learns.sum() == 15 and t.noise_configs == 15
    assert float(np.mean(t.sigma)) == pytest.approx(0.02, rel=0.15)
    old = replay.load_table(rows, epochs=6, chance_loss=1.03, noise_from="all")
    assert float(np.mean(old.sigma)) < 0.017


def test_calibration_recovers_a_known_noise_scale():
    """Outcomes are the minimum of 8 noisy values around 1 (a study's best): real outcomes made at scale 0.6 are
    recovered from a grid of scales."""

    def outcomes(scale: float, n: int, seed: int) -> list[float]:
        r = np.random.default_rng(seed)
        return list((1 + scale * r.normal(0, 0.01, (n, 8))).min(1))

    real = {"a": outcomes(0.6, 60, 99)}
    cal = metrics.calibrate(lambda s: {"a": outcomes(s, 400, 1)}, real, [0, 0.25, 0.5, 0.75, 1.0])
    assert cal["scale"] == pytest.approx(0.6, abs=0.15)
    grid = [g["mean_percentile"] for g in cal["grid"]]
    assert grid == sorted(grid) and grid[0] == 0.0 and grid[-1] > 0.6  # no noise: every replay above the real ones
    assert metrics.percentile([1, 2, 3, 4], 2.5) == 0.5 and metrics.percentile([1, 2, 3], 2) == 0.5


def test_generic_table_of_settings_replays():
    """A table in record_dubai.py's form (configurations as dicts of settings, a native space) replays."""
    space = {
        "train.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        "model.norm": {"type": "categorical", "choices": ["none", "batch"]},
    }
    rows = []
    for lr, norm, curve in [
        (0.002, "none", [0.9, 0.85, 0.8]),
        (0.02, "none", [0.8, 0.7, 0.65]),
        (0.05, "batch", [0.7, 0.6, 0.55]),
        (0.005, "batch", [0.95, 0.9, 0.88]),
    ]:
        rows.append(
            {
                "params": {"train.learning_rate": lr, "model.norm": norm},
                "seed": 42,
                "status": "completed",
                "epochs": 3,
                "val_loss": curve,
                "val_mean_iou": [0.5] * 3,
            }
        )
    t = replay.load_table(rows, epochs=None, space=space, chance_loss=1.0)
    assert t.epochs == 3 and len(t.keys) == 4
    assert t.lookup({"train.learning_rate": 0.04, "model.norm": "batch"})["val_loss"] == [0.7, 0.6, 0.55]
    assert t.lookup({"train.learning_rate": 0.04, "model.norm": "none"})["val_loss"] == [0.8, 0.7, 0.65]
    study = replay.replay_fast(t, "hb_tpe", seed=0, budget=20)
    assert study["epochs"] == 20
    assert all(0 <= tr["config"] < 4 for tr in study["trials_log"])
    assert sum(len(tr["values"]) for tr in study["trials_log"]) == len(study["events"])


def test_baseline_trial_is_first_and_never_pruned(tmp_path):
    from hpo_tables import rows

    t = replay.load_table(rows(), epochs=3)
    study = replay.replay_fast(t, "sha_tpe", seed=0, budget=30, baseline={"train.learning_rate": 0.01, **_B})
    first = study["trials_log"][0]
    assert first["first"] == 1 and len(first["values"]) == 3 and first["complete"]
    assert t.keys[first["config"]] == replay.config_key(replay.params_of(_row(0.01, 8, [0.6, 0.55, 0.5])))


_B = {"train.batch_size": 8, "model.activation": "relu"}
