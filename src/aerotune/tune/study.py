"""``run_tune(settings) -> TuneResult``: an Optuna study with HyperBand over epochs.

Every trial is one ``train.fit`` run in ``RUN/trials/<number>``; each epoch reports its metric to Optuna,
and a trial that passes a rung simply trains on (nothing is retrained from scratch). The baseline
(trial 0, the reference's initial parameters) is never pruned, so its whole learning curve can be
compared with the tuned model's. Workers share the study through its storage; ``StudyLock`` makes the
trial count and the epoch cap exact across them (see ``storage.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from aerotune.errors import RunError
from aerotune.files import write_json
from aerotune.outputs import check_output, writing
from aerotune.tune.description import describe, first_difference, read_earlier
from aerotune.tune.export import export_study, load_run_study
from aerotune.tune.optuna_study import StudyWideHyperband, open_study, setup_study
from aerotune.tune.records import StudyRecord
from aerotune.tune.settings import TuneResult, TuneSettings, WorkerBudget, plan_tune
from aerotune.tune.worker import run_worker, run_worker_processes

log = logging.getLogger(__name__)

__all__ = [
    "StudyWideHyperband",
    "TuneResult",
    "TuneSettings",
    "export_study",
    "load_run_study",
    "plan_tune",
    "run_tune",
]


def run_tune(settings: TuneSettings) -> TuneResult:
    """Create or resume the study in ``settings.out``, run its workers, export and summarise it.

    Raises:
        AerotuneError: on bad settings or data, before anything runs (a run folder this call made is
            removed again).
    """
    from aerotune.data.patches import is_cache
    from aerotune.data.run_data import check_data
    from aerotune.memory import check_train_memory

    settings.validate()
    out = Path(settings.out)
    # Everything is checked before anything is written: the folder, the data, a resumed study's settings.
    check_output(out, "tune-run", inputs=[settings.data])
    settings = settings.with_sampler(earlier_sampler(out))
    check_train_memory(settings.config)  # a patch that cannot fit: said before the data is read
    check_data(settings.data, settings.config.data)
    cache_dir = Path(settings.data) if is_cache(settings.data) else out / "cache"
    desc = _resumed(settings, out, describe(settings, cache_dir))
    warning = plan_tune(settings).budget_warning()
    if warning:
        log.warning("%s", warning)
    t0 = time.time()
    # A study folder this call made is removed again on a failure or interrupt until some trial has finished an
    # epoch (as train removes its run), so a corrected rerun is never refused by a study that did nothing. A study
    # in a database outlives its folder once it is set up, so that folder is kept, as is any folder that existed.
    opened: list[bool] = []

    def keep() -> bool:
        return any((out / "trials").glob("*/checkpoints/last.pt")) or bool(opened and settings.storage is not None)

    with writing(out, "tune-run", inputs=[settings.data], keep=keep):
        return _run_study(settings, out, desc, opened, t0)


def earlier_sampler(out: Path) -> str | None:
    """The sampler of the study an earlier run left in ``out``, if any."""
    old = read_earlier(out)
    return None if old is None else str(old.sampler)


def _resumed(settings: TuneSettings, out: Path, desc: StudyRecord) -> StudyRecord:
    """``desc``, checked against the study an earlier run left in ``out`` (same settings, same files) if any."""
    from aerotune.data.run_data import check_cache_current

    old = read_earlier(out)
    if old is None:
        return desc
    if old.fingerprint() != desc.fingerprint():
        key = first_difference(old.fingerprint(), desc.fingerprint())
        idle = "" if any((out / "trials").glob("*/checkpoints/last.pt")) else " (it holds no finished epoch)"
        raise RunError(
            f"{out}: the run folder holds a study{idle} with a different {key}; repeat the same "
            "settings to resume it, or choose a new --out"
        )
    check_cache_current(
        settings.data, settings.config.data, out / "cache", fix="choose a new --out for a study of the new files"
    )
    return replace(desc, baseline_trial=old.baseline_trial)


def _run_study(settings: TuneSettings, out: Path, desc: StudyRecord, opened: list[bool], t0: float) -> TuneResult:
    """Cut the patches, open and set up the study, run its workers and export it (inside the run folder's guard)."""
    from aerotune.data.dataset import make_split
    from aerotune.data.run_data import cache_for

    cache = cache_for(settings.data, settings.config.data, out / "cache")
    desc = replace(desc, cache=str(cache.root.resolve()))
    split_path = out / "split.json"
    if not split_path.is_file():
        write_json(split_path, make_split(cache, settings.config.data).to_dict())
    study = open_study(desc, out, settings.storage, heartbeat=settings.heartbeat)
    desc = replace(desc, baseline_trial=setup_study(study.study, study.lock, desc))
    desc.write(out / StudyRecord.FILE)
    opened.append(True)
    budget = WorkerBudget(
        trials=settings.trials,
        timeout=settings.timeout,
        max_epochs_total=settings.max_epochs_total,
        workers=settings.workers,
    )
    try:
        if settings.workers == 1:
            run_worker(out, settings.storage, budget, index=0, opened=study)
        else:
            study.close()
            run_worker_processes(out, settings.storage, budget)
            study = open_study(desc, out, settings.storage, heartbeat=settings.heartbeat)
    finally:
        result = export_study(out, study.study, wall_seconds=time.time() - t0)
        study.close()
    return result
