"""Every private Optuna API aerotune uses (``aerotune.tune.optuna_compat``): this fails loudly when one changes.

If a test here fails after an Optuna upgrade, fix ``optuna_compat.py`` (and the pin in pyproject.toml), not
the callers.
"""

from __future__ import annotations

import optuna

from aerotune.tune import optuna_compat
from aerotune.tune.optuna_study import StudyWideHyperband
from aerotune.tune.storage import HeartbeatJournalStorage


def test_heartbeat_interface_is_the_one_our_journal_storage_implements():
    abstract = set(optuna_compat.BaseHeartbeat.__abstractmethods__)
    assert optuna_compat.STALE_TRIAL_IDS_METHOD in abstract
    assert abstract == {
        "record_heartbeat",
        "_get_stale_trial_ids",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
    }, abstract
    assert not HeartbeatJournalStorage.__abstractmethods__  # it implements every one of them
    assert issubclass(HeartbeatJournalStorage, optuna.storages.JournalStorage)


def test_trial_id_and_study_storage():
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    trial = study.ask()
    frozen = study.trials[1]
    storage = optuna_compat.study_storage(study)
    assert isinstance(optuna_compat.trial_id(trial), int) and isinstance(optuna_compat.trial_id(frozen), int)
    assert storage.get_trial(optuna_compat.trial_id(trial)).number == trial.number == 2
    assert storage.get_trial(optuna_compat.trial_id(frozen)).number == 1


def test_hyperband_still_narrows_the_sampler_to_a_bracket_and_the_wrapper_does_not():
    assert optuna_compat.hyperband_filters_study()
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9, reduction_factor=3)
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    frozen = study.trials[-1]
    assert optuna.pruners._filter_study(study, frozen) is not study  # a bracket's view of the study
    study.pruner = StudyWideHyperband(pruner)
    assert optuna.pruners._filter_study(study, frozen) is study
