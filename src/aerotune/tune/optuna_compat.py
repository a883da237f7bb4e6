"""Every private Optuna API aerotune relies on, in one place (tested by ``tests/tune/test_tune_optuna_compat.py``).

Optuna has no public way to add a heartbeat to a journal storage, to get a trial's storage id, or to stop
HyperBand from narrowing the study a sampler sees. These names are private and may change in any release;
``pyproject.toml`` pins Optuna to the tested major version, and the compat test fails loudly when one goes.
"""

from __future__ import annotations

from typing import Any

from optuna.storages._heartbeat import BaseHeartbeat

__all__ = [
    "BaseHeartbeat",
    "HeartbeatStorage",
    "STALE_TRIAL_IDS_METHOD",
    "hyperband_filters_study",
    "study_storage",
    "trial_id",
]

#: The method ``optuna.storages.fail_stale_trials`` calls on a ``BaseHeartbeat`` storage to find stale trials.
STALE_TRIAL_IDS_METHOD = "_get_stale_trial_ids"


class HeartbeatStorage(BaseHeartbeat):
    """``BaseHeartbeat`` with its private stale-trial query routed to the public :meth:`stale_trial_ids`."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    def stale_trial_ids(self, study_id: int) -> list[int]:
        raise NotImplementedError


def trial_id(trial: Any) -> int:
    """The storage id of a ``Trial`` or ``FrozenTrial`` (not its number)."""
    return trial._trial_id


def study_storage(study: Any) -> Any:
    """The storage object behind an ``optuna.Study``."""
    return study._storage


def hyperband_filters_study() -> bool:
    """Whether Optuna still narrows the sampler's view to the trial's bracket for a ``HyperbandPruner``.

    ``StudyWideHyperband`` exists because of that filter (``optuna.pruners._filter_study``); if it is gone,
    the wrapper is harmless but no longer needed.
    """
    import optuna.pruners

    return callable(getattr(optuna.pruners, "_filter_study", None))
