"""benchmarks/hpo_replay: the real-study check (check.py), the budget table (budgets.py) and the SMAC replay
(smac_replay.py, skipped without smac) on a tiny made-up table: 4 configurations x 3 epochs."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo_tables import CURVES
from hpo_tables import rows as _rows

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "hpo_replay"))
import budgets  # noqa: E402
import check  # noqa: E402
import replay  # noqa: E402
from analysis import summarize  # noqa: E402


def _table() -> replay.Table:
    return replay.load_table(_rows(), epochs=3)


def _study(trials: list[tuple[dict, list[float], list[int]]]) -> dict:
    """A study as ``check.study_record`` writes it: (params, values, epoch ticks) per trial."""
    return {
        "epochs": max(t for _, _, ticks in trials for t in ticks),
        "trials": [
            {"number": i, "status": "complete", "params": p, "values": v, "epoch_ticks": k}
            for i, (p, v, k) in enumerate(trials)
        ],
    }


P = {"train.learning_rate": 0.001, "train.batch_size": 8, "model.activation": "relu"}


def test_compare_measures_real_studies_against_the_real_random_search():
    budget = 6
    real = {
        # random search: two full trainings, final best 0.50 at tick 6
        "rs": _study([(P, [0.9, 0.8, 0.7], [1, 2, 3]), (P, [0.6, 0.55, 0.50], [4, 5, 6])]),
        # the other method reaches 0.50 at tick 2 (its second trial's first epoch), then better
        "hb_tpe": _study([(P, [0.9], [1]), (P, [0.5, 0.45], [2, 3]), (P, [0.6, 0.6, 0.6], [4, 5, 6])]),
    }

    def rep(seed: int, events: list[list[float]]) -> dict:
        return {"seed": seed, "events": events}

    replayed = {  # per seed: random search final best 0.5 (seed 0) and 0.4 (seed 1)
        "rs": [rep(0, [[1, 0.7], [6, 0.5]]), rep(1, [[1, 0.4]])],
        "hb_tpe": [rep(0, [[3, 0.5]]), rep(1, [[5, 0.6]])],  # seed 0 reaches at 3, seed 1 never
    }
    out = check.compare(real, replayed, seed=0, budget=budget)
    assert out["real_rs_final_best"] == 0.5
    hb = out["hb_tpe"]
    assert hb["real"]["reach"] == 2 and hb["real"]["share"] == pytest.approx(2 / 6, abs=1e-3)
    assert hb["real"]["best_at"]["1.00"] == 0.45 and hb["real"]["trials"] == 3
    assert hb["replay_same_seed"]["reach"] == 3
    assert hb["replay_reached_share"] == 0.5
    assert hb["real_reach_percentile"] == 0.0  # fewer epochs than every replayed seed
    assert out["rs"]["real"]["reach"] == 6 and out["rs"]["replay_same_seed"]["reach"] == 6
    text = check.markdown(out)
    assert "| HyperBand + TPE, bracket scope (default) | 3 | 2 (0.33) | 3 |" in text


def test_table_gap_is_in_noise_units():
    table = _table()  # sd 0.02 at every epoch
    study = _study([(P, [0.92, 0.82, 0.77], [1, 2, 3])])  # recorded 0.90, 0.80, 0.75: +1 sd each
    gap = check.table_gap(study, table)
    assert gap["all"] == {"trials": 1, "epochs": 3, "median_z": 1.0, "robust_sd_z": 0.0, "best_diff_median": 0.02}
    assert gap["on_grid"] == gap["all"]  # lr 0.001 is recorded
    off = _study([({**P, "train.learning_rate": 0.003}, [0.92, 0.82, 0.77], [1, 2, 3])])  # half-way on a log scale
    assert check.table_gap(off, table)["on_grid"]["trials"] == 0


@pytest.mark.parametrize("method", ["rs", "hb_tpe", "sha_tpe_r3", "hb_tpe_eta2", "hb_tpe_study"])
def test_tune_command_is_the_replayed_study(method, tmp_path):
    """The command line check.py runs parses to the settings the replay uses for the same method and seed."""
    from aerotune.commands import build_parser
    from aerotune.commands.tune import settings_from_args

    table = _table()
    space = tmp_path / "space.json"
    space.write_text(json.dumps(replay.space_for(table)))
    cmd = check.tune_command(method, 5, 9, tmp_path / "data", space, tmp_path / "out")
    assert cmd[1:4] == ["-m", "aerotune", "tune"]
    got = settings_from_args(build_parser().parse_args(cmd[3:]))
    want = replay._settings(method, 5, table, budget=9, data=tmp_path / "data", out=tmp_path / "out")
    for field in (
        "sampler",
        "pruner",
        "min_resource",
        "reduction_factor",
        "sampler_scope",
        "seed",
        "study_name",
        "max_epochs_total",
        "baseline",
        "startup_trials",
        "metric",
        "direction",
    ):
        assert getattr(got, field) == getattr(want, field), field
    assert got.space.params == want.space.params
    assert got.config.train.epochs == 27 and got.config.train.threads == 1 and got.config.model.base_filters == 8


def test_budget_table_from_replays():
    table = _table()
    rows = _rows()
    labels = {m: replay.METHODS[m][0] for m in ("rs", "hb_tpe")}
    out = {}
    for trainings in (2, 4):
        studies = [replay.replay_fast(table, m, s, trainings * 3) for s in range(3) for m in labels]
        out[trainings] = budgets.budget_row(summarize(studies, rows, table, trainings * 3, labels))
    for r in out.values():
        assert r["rs"]["reached"] == 1.0 and 0 < r["rs"]["share_median"] <= 1
    text = budgets.markdown(out, labels, seeds=3, configs=4, epochs=3)
    assert "| 2 (6) |" in text and "First budget with a median share of at most 1/5" in text


def test_smac_replay_respects_the_budget():
    pytest.importorskip("smac", reason="SMAC3 has its own environment: benchmarks/hpo_replay/requirements-smac.txt")
    import smac_replay

    table = _table()
    native = smac_replay.replay_smac(table, seed=0, budget=12)
    resumed = smac_replay.replay_smac(table, seed=0, budget=12, resume=True)
    for study in (native, resumed):
        assert study["epochs"] == 12 and [t for t, _ in study["events"]] == list(range(1, 13))
        assert math.isfinite(study["picked"])
    assert resumed["trials"] >= native["trials"]  # resumed promotions cost fewer epochs
    assert np.isfinite(min(v for _, v in native["events"]))


def test_noise_scale_zero_replays_the_recorded_curves():
    table = _table()
    row = table.lookup(0.01, 8, "relu")
    quiet = replay.scaled(table, 0.0)
    assert replay.replayed_curve(quiet, row, np.random.default_rng(0)) == CURVES[(0.01, 8)]
    assert replay.replayed_curve(table, row, np.random.default_rng(0)) != CURVES[(0.01, 8)]
    assert replay.scaled(table, 1.0) is table and table.sigma[0] == pytest.approx(0.02)  # the original is kept
