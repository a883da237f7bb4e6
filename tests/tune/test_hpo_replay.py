"""The learning-curve replay (benchmarks/hpo_replay) on a tiny made-up table: 4 configurations x 3 epochs."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo_tables import CURVES
from hpo_tables import row as _row
from hpo_tables import rows as _rows

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "hpo_replay"))
import replay  # noqa: E402
from analysis import anytime, epochs_to_reach  # noqa: E402

from aerotune.train.fit import Callback  # noqa: E402


def _table() -> replay.Table:
    return replay.load_table(_rows(), epochs=3)


def test_table_noise_and_lookup():
    table = _table()
    assert len(table.curves) == 4 and table.noise_configs == 1
    # three curves at -0.02, 0, +0.02 around their mean: sample sd 0.02 at every epoch, wholly per run
    np.testing.assert_allclose(table.sigma, [0.02] * 3, atol=1e-9)
    assert table.rho == pytest.approx(1.0)
    # a drawn learning rate is snapped to the nearest recorded one on a log scale (sqrt(1e-5) ~ 0.00316)
    assert table.lookup(0.003, 8, "relu")["val_loss"] == CURVES[(0.001, 8)]
    assert table.lookup(0.0033, 16, "relu")["val_loss"] == CURVES[(0.01, 16)]
    # not recorded: the nearest batch size, then the nearest learning rate
    assert table.lookup(0.02, 12, "relu")["val_loss"] == CURVES[(0.01, 8)]
    space = replay.space_for(table)
    assert space["learning_rate"] == {"_type": "loguniform", "_value": [0.001, 0.01]}
    assert space["batch_size"]["_value"] == [8, 16]


def test_replayed_noise_has_the_measured_spread():
    table = _table()
    row = table.lookup(0.01, 8, "relu")
    draws = np.array([replay.replayed_curve(table, row, np.random.default_rng(i)) for i in range(2000)])
    np.testing.assert_allclose(draws.mean(0), CURVES[(0.01, 8)], atol=0.003)
    np.testing.assert_allclose(draws.std(0), [0.02] * 3, rtol=0.1)
    silent = replay.load_table([_row(lr, b, v) for (lr, b), v in CURVES.items()], epochs=3)
    assert replay.replayed_curve(silent, row, np.random.default_rng(0)) == CURVES[(0.01, 8)]


class _StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs, self.started, self.ended = epochs, [], []

    def on_epoch_start(self, epoch: int) -> bool:
        self.started.append(epoch)
        return epoch <= self.epochs

    def on_epoch_end(self, epoch: int, record: dict) -> None:
        self.ended.append((epoch, record["val_loss"]))


def test_table_fit_follows_the_callback_protocol(tmp_path):
    from aerotune.config import RunConfig

    rows = [_row(lr, b, v) for (lr, b), v in CURVES.items()] + [_row(0.1, 8, [0.7], status="diverged")]
    table = replay.load_table(rows, epochs=3)
    fit = replay.table_fit(table, noise_seed=0)
    config = RunConfig().with_overrides({"train.epochs": 3, "train.learning_rate": 0.01, "train.batch_size": 8})
    cb = _StopAfter(2)
    result = fit(config, None, tmp_path / "0007", callback=cb)
    assert result.status == "stopped" and cb.started == [1, 2, 3]
    assert cb.ended == [(1, 0.60), (2, 0.55)] and result.best_val_loss == 0.55
    cb = _StopAfter(3)
    result = fit(config.with_overrides({"train.learning_rate": 0.1}), None, tmp_path / "0008", callback=cb)
    assert result.status == "diverged" and cb.started == [1, 2] and result.epochs == 1  # epoch 2 was claimed


@pytest.mark.parametrize("method", ["rs", "hb_tpe", "sha_tpe"])
def test_method_respects_the_budget(method):
    table = _table()
    study = replay.replay_fast(table, method, seed=3, budget=7)
    ticks = [t for t, _ in study["events"]]
    assert study["epochs"] == 7 and ticks == list(range(1, 8))  # every epoch claimed once, none past the cap
    if method == "rs":  # full trainings: 3 + 3 + the third cut after 1 epoch by the budget
        assert study["trials"] == 3 and study["complete"] == 2
    curve = anytime(study["events"], 7)
    assert list(curve) == sorted(curve, reverse=True) and math.isfinite(curve[-1])
    assert epochs_to_reach(curve, curve[-1]) <= 7 and epochs_to_reach(curve, -1.0) == math.inf


@pytest.mark.parametrize("method", ["hb", "sha_tpe"])
def test_in_memory_replay_is_run_tune(method, tmp_path):
    """The fast loop gives exactly the study ``aerotune tune``'s own worker gives with the table as training."""
    table = _table()
    fast = replay.replay_fast(table, method, seed=1, budget=10)
    real = replay.replay_aerotune(table, method, seed=1, budget=10, work=tmp_path)
    assert fast == real


def test_tpe_sees_every_bracket_whatever_the_scope():
    """Optuna 5's ``_BracketStudy`` filters ``get_trials`` only; TPE reads ``_get_trials``, so the two scopes
    give the same study (docs/tuning.md). If a later Optuna filters TPE too, this fails and the docs must change."""
    table = _table()
    bracket = replay.replay_fast(table, "hb_tpe", seed=2, budget=90)
    study = replay.replay_fast(table, "hb_tpe_study", seed=2, budget=90)
    assert bracket["trials"] > 20  # well past TPE's 10 start-up trials
    assert {**bracket, "method": None} == {**study, "method": None}
