"""The tuning stage's records (study.json, trials.json, summary.json): round trips, old files, damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aerotune.config import RunConfig
from aerotune.errors import RunError
from aerotune.tune.records import StudyRecord, StudySummary, TrialRecord, read_tune_run

OLD_STUDY = {  # a study.json as aerotune wrote it before records were versioned (no version, no sampler_scope)
    "study_name": "old",
    "storage": "/runs/old/journal.log",
    "direction": "minimize",
    "metric": "val_loss",
    "sampler": "tpe",
    "seed": 0,
    "min_resource": 1,
    "max_resource": 3,
    "reduction_factor": 3,
    "space": {"train.learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
    "base_config": RunConfig().to_dict(),
    "cache": "/runs/old/cache",
    "baseline_trial": 0,
    "baseline_values": {"train.learning_rate": 0.007},
    "heartbeat": 10,
    "reference_epochs": 3455,
}


def test_study_record_round_trip_and_old_files():
    old = StudyRecord.from_json(OLD_STUDY, where="study.json")
    assert old.sampler_scope == "bracket" and old.startup_trials == 10 and not old.maximize
    again = StudyRecord.from_json(json.loads(json.dumps(old.to_json())))
    assert again == old and old.to_json()["version"] == StudyRecord.VERSION
    # The fingerprint of an old study is what it was: runtime settings left out, no sampler_scope key.
    assert "sampler_scope" not in old.fingerprint() and "device" not in old.fingerprint()["base_config"]["train"]


def test_damaged_or_newer_files_are_one_line_errors():
    with pytest.raises(RunError, match="'cache' is missing") as missing:
        StudyRecord.from_json({k: v for k, v in OLD_STUDY.items() if k != "cache"}, where="run/study.json")
    assert "\n" not in str(missing.value) and "run/study.json" in str(missing.value)
    with pytest.raises(RunError, match="newer aerotune"):
        StudyRecord.from_json({**OLD_STUDY, "version": StudyRecord.VERSION + 1})
    with pytest.raises(RunError, match="expected a JSON object"):
        TrialRecord.from_json([1, 2])


def test_read_tune_run(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "study.json").write_text(json.dumps(OLD_STUDY))
    rows = [
        {"number": 0, "state": "COMPLETE", "status": "complete", "value": 0.5, "a_field_from_later": 1},
        {"number": 1, "state": "PRUNED", "status": "pruned", "values": [0.9]},
    ]
    (run / "trials.json").write_text(json.dumps(rows))
    found = read_tune_run(run)
    assert found.summary is None and found.best_trial is None and found.baseline_trial == 0
    assert [t.number for t in found.trials] == [0, 1] and found.trials[1].values == [0.9]
    StudySummary(
        epochs_spent=4,
        counts={"trials": 2},
        study_name="old",
        metric="val_loss",
        direction="minimize",
        best_trial=0,
        best_value=0.5,
    ).write(run / "summary.json")
    assert read_tune_run(run).best_trial == 0 and read_tune_run(run).trial_dir(0) == run / "trials" / "0000"
    (run / "trials.json").write_text("{not json")
    with pytest.raises(RunError, match="trials.json: cannot read"):
        read_tune_run(run)


def test_a_retry_of_a_retry_names_its_own_predecessor_and_starts_clean():
    """Trial 0 is interrupted and retried as 1, which is interrupted in turn and retried as 2: each row names the
    trial it retries, and a retry does not inherit its predecessor's status, reason or epochs."""
    import optuna

    from aerotune.tune.export import trial_records
    from aerotune.tune.optuna_compat import study_storage, trial_id
    from aerotune.tune.optuna_study import MAX_RETRIES, retry_trial

    desc = StudyRecord.from_json(OLD_STUDY, where="study.json")
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="old")
    study.enqueue_trial({"train.learning_rate": 0.007}, user_attrs={"baseline": True})
    for n in range(MAX_RETRIES + 1):
        trial = study.ask()
        assert trial.user_attrs == {"baseline": True}  # not its predecessor's status, reason or epochs
        assert sorted(study_storage(study).get_trial(trial_id(trial)).intermediate_values) == list(range(1, n + 1))
        trial.suggest_float("train.learning_rate", 0.001, 0.1, log=True)
        trial.report(0.9, n + 1)
        for key, value in {"status": "interrupted", "reason": "stopped by the user", "epochs": 1}.items():
            trial.set_user_attr(key, value)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        retry_trial(study, study.trials[trial.number])

    rows = {r.number: r for r in trial_records(study, desc)}
    assert [rows[n].retry_of for n in sorted(rows)] == [None, 0, 1, 2]  # the last is not retried again
    assert all(r.baseline for r in rows.values())
    assert "retried as trial 1" in rows[0].reason and "retried as trial 2" in rows[1].reason
    assert "retried" not in rows[3].reason
    assert len(study.trials) == MAX_RETRIES + 1  # the chain stops after MAX_RETRIES retries
    assert study.trials[1].params == study.trials[0].params
    assert study.trials[1].system_attrs["retry_history"] == [0]
    assert study.trials[2].system_attrs["retry_history"] == [0, 1]
