"""Optuna glue: opening a study from its description, samplers, and the study-wide HyperBand wrapper."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aerotune.errors import AerotuneError, RunError, first_line
from aerotune.tune.description import first_difference
from aerotune.tune.records import StudyRecord

EPOCHS_KEY = "aerotune:epochs_claimed"
SETTINGS_KEY = "aerotune:settings"
BASELINE_KEY = "aerotune:baseline"


@dataclass
class OpenStudy:
    study: Any
    lock: Any
    storage: Any

    def close(self) -> None:
        self.lock.close()
        with contextlib.suppress(Exception):
            engine = getattr(self.storage, "engine", None)
            if engine is not None:
                engine.dispose()


class StudyWideHyperband:
    """Optuna's ``HyperbandPruner``, without hiding the other brackets' trials from the sampler.

    Optuna narrows the study a sampler sees to the current trial's bracket whenever ``study.pruner`` is
    a ``HyperbandPruner`` (``optuna.pruners._filter_study``), so TPE learns only from a third of a small
    study and spends its start-up trials once per bracket. Wrapping the pruner keeps its decisions
    (same brackets, rungs and promotions: ``prune`` is delegated) while TPE learns from every trial,
    ranking pruned ones by how far they got and their last value.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    def prune(self, study, trial) -> bool:
        return self.inner.prune(study, trial)


#: How often one trial is retried (after a stale heartbeat or an interrupt) before it is given up.
MAX_RETRIES = 3
#: The user attributes a retry keeps: what the trial is, not what happened to its predecessor.
RETRY_KEEPS = ("baseline", "default_recipe")


def retry_trial(study, trial) -> None:
    """Enqueue a retry of the failed ``trial`` (a ``FrozenTrial``): same parameters, its epochs' values inherited.

    Optuna's ``RetryHeartbeatStaleTrialCallback`` does the same but copies every user attribute (so a retry would
    start out with its predecessor's "status", "reason" and "epochs") and keeps ``failed_trial`` on the first trial
    of a chain. Here a retry starts clean; ``retry_history`` lists its predecessors, oldest first, so the one it
    retries is the last. Used as the storages' stale-trial callback and after an interrupt.
    """
    import optuna

    history = [*(trial.system_attrs.get("retry_history") or []), trial.number]
    if len(history) > MAX_RETRIES:
        return
    study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={k: trial.user_attrs[k] for k in RETRY_KEEPS if k in trial.user_attrs},
            system_attrs={"failed_trial": history[0], "retry_history": history},
            intermediate_values=trial.intermediate_values,
        )
    )


def retry_of(trial) -> int | None:
    """The trial that ``trial`` retries (the last of its ``retry_history``), or None."""
    history = trial.system_attrs.get("retry_history") or []
    return history[-1] if history else None


def open_study(desc: StudyRecord, out: Path, storage_url: str | None, *, heartbeat: int) -> OpenStudy:
    """Open (or create) the study of ``desc``."""
    import optuna

    from aerotune.tune.storage import open_storage

    storage, lock = open_storage(
        storage_url,
        out,
        heartbeat=heartbeat,
        stale_callback=retry_trial,
        name=desc.study_name,
    )
    pruner = make_pruner(desc)
    try:
        with lock.hold():
            study = optuna.create_study(
                study_name=desc.study_name,
                storage=storage,
                direction=desc.direction,
                pruner=pruner,
                sampler=make_sampler(desc, 0),
                load_if_exists=True,
            )
    except Exception as exc:  # noqa: BLE001 - e.g. an existing study with another direction
        if isinstance(exc, AerotuneError):
            raise
        where = f"study {desc.study_name!r}: cannot open it in {desc.storage}"
        raise RunError(f"{where} ({first_line(exc)})") from None
    return OpenStudy(study, lock, storage)


def make_pruner(desc: StudyRecord):
    """The study's early stopping over epochs, from its description (also used by benchmarks/hpo_replay).

    ``hyperband``: Optuna's ``HyperbandPruner(r, R, eta)`` (wrapped in ``StudyWideHyperband`` for
    ``sampler_scope = "study"``); ``sha``: ``SuccessiveHalvingPruner`` (asynchronous successive halving, one
    bracket, rungs at ``r * eta**k``); ``none``: every trial trains R epochs (the reference's full-budget search).
    """
    import optuna

    if desc.pruner == "none":
        return optuna.pruners.NopPruner()
    if desc.pruner == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=desc.min_resource, reduction_factor=desc.reduction_factor, min_early_stopping_rate=0
        )
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=desc.min_resource, max_resource=desc.max_resource, reduction_factor=desc.reduction_factor
    )
    return StudyWideHyperband(pruner) if desc.sampler_scope == "study" else pruner


def make_sampler(desc: StudyRecord, number: int):
    """A sampler seeded for the next trial number: reproducible with one worker, and a resumed study
    does not replay the draws of its first run."""
    import optuna

    seed = desc.seed
    seed = None if seed is None else (int(seed) * 1_000_003 + number * 7919) % (2**32)
    if desc.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=int(desc.startup_trials))


def setup_study(study, lock, desc: StudyRecord) -> int | None:
    """Check the study matches ``desc`` (joining workers must agree) and enqueue the baseline once."""
    from aerotune.tune.space_parse import parse_space

    with lock.hold():
        attrs = study.user_attrs
        mine = desc.fingerprint()
        have = attrs.get(SETTINGS_KEY)
        if have is None:
            study.set_user_attr(SETTINGS_KEY, mine)
        elif json.loads(json.dumps(have)) != json.loads(json.dumps(mine)):
            key = first_difference(have, mine)
            raise RunError(
                f"study {desc.study_name!r} in {desc.storage} was made with a different {key}; "
                "repeat its settings to join it, or choose another --study-name"
            )
        if BASELINE_KEY in attrs:
            return attrs[BASELINE_KEY]
        number = None
        if desc.baseline_values is not None:
            space = parse_space(desc.space, where="study.json")
            number = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(
                space.fixed_params(desc.baseline_values), user_attrs={"baseline": True}, skip_if_exists=False
            )
            if desc.default_values is not None:  # trial 1: the default recipe untuned, beside the reference's
                study.enqueue_trial(
                    space.fixed_params(desc.default_values), user_attrs={"default_recipe": True}, skip_if_exists=False
                )
        study.set_user_attr(BASELINE_KEY, number)
        return number
