"""``run_tune(settings) -> TuneResult``: an Optuna study with HyperBand over epochs.

Every trial is one ``train.fit`` run in ``RUN/trials/<number>``; each epoch reports its metric to Optuna,
and a trial that passes a rung simply trains on (nothing is retrained from scratch). The baseline
(trial 0, the reference's initial parameters) is never pruned, so its whole learning curve can be
compared with the tuned model's. Workers share the study through its storage; ``StudyLock`` makes the
trial count and the epoch cap exact across them (see ``storage.py``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import multiprocessing
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aerotune.config import RunConfig
from aerotune.errors import AerotuneError, ConfigError, RunError, first_line
from aerotune.files import write_json
from aerotune.train.fit import Callback
from aerotune.tune.methods import PRUNERS, make_pruner
from aerotune.tune.plan import Plan, make_plan
from aerotune.tune.space import (
    REFERENCE_BASELINE,
    SearchSpace,
    check_space,
    default_space,
    resolve_baseline,
)
from aerotune.tune.storage import redact

log = logging.getLogger(__name__)

REFERENCE_EPOCHS = 3455
EPOCHS_KEY = "aerotune:epochs_claimed"
SETTINGS_KEY = "aerotune:settings"
BASELINE_KEY = "aerotune:baseline"
SAMPLERS = ("tpe", "random")
METRIC_NAMES = ("loss", "pixel_accuracy", "majority_rate", "mean_iou", "mean_iou_labelled", "mean_f1",
                "precision_ref", "recall_ref")
#: Settings that say how a worker runs, not what it trains: they may differ between workers.
_RUNTIME_KEYS = ("threads", "progress", "device")


@dataclass(frozen=True)
class TuneSettings:
    """Everything ``run_tune`` needs. Only ``data`` and ``out`` are required.

    Attributes:
        data: dataset folder or patch cache.
        out: the run folder; an existing one is resumed.
        config: the training config every trial starts from (``train.epochs`` is HyperBand's max resource).
        space: the search space; None is the reference's.
        metric: a key of the training history, e.g. ``val_loss`` or ``val_mean_iou``.
        direction: minimize or maximize; None: minimize for losses, maximize otherwise.
        sampler: tpe or random (classic HyperBand).
        seed: seeds the sampler (per trial number, so a resumed study does not replay its draws).
        study_name: None: the run folder's name (it also seeds Optuna's bracket assignment).
        storage: None for the run folder's journal, or an RDB URL such as ``postgresql://...``.
        min_resource, reduction_factor: HyperBand's r and eta.
        trials: total trials in the study (the baseline included; retries of dead trials not counted).
        timeout: seconds after which no new trial starts (per call).
        max_epochs_total: hard cap on epochs over all trials and workers.
        workers: trial processes on this machine.
        baseline: settings of trial 0 (None: no baseline); by default the reference's initial parameters.
        heartbeat: seconds between heartbeats; a trial silent for 3 beats is stale, failed and retried.
        startup_trials: TPE's random start-up trials (counted per HyperBand bracket when
            ``sampler_scope`` is ``bracket``, over the whole study when it is ``study``).
        sampler_scope: ``bracket`` (Optuna's behaviour: the sampler learns only from the trials of the
            bracket it samples for) or ``study`` (it learns from every trial; pruning is unchanged).
        pruner: ``hyperband`` (default), ``sha`` (asynchronous successive halving) or ``none`` (every
            trial trains all epochs); see ``tune/methods.py``.
    """

    data: str | Path
    out: str | Path
    config: RunConfig = field(default_factory=RunConfig)
    space: SearchSpace | None = None
    metric: str = "val_loss"
    direction: str | None = None
    sampler: str = "tpe"
    seed: int = 0
    study_name: str | None = None
    storage: str | None = None
    min_resource: int = 1
    reduction_factor: int = 3
    trials: int = 72
    timeout: float | None = None
    max_epochs_total: int | None = None
    workers: int = 1
    baseline: dict[str, Any] | None = field(default_factory=lambda: dict(REFERENCE_BASELINE))
    heartbeat: int = 10
    startup_trials: int = 10
    sampler_scope: str = "bracket"
    pruner: str = "hyperband"

    @property
    def name(self) -> str:
        return self.study_name or Path(self.out).resolve().name

    @property
    def resolved_direction(self) -> str:
        if self.direction:
            return self.direction
        return "minimize" if self.metric.endswith("loss") else "maximize"

    @property
    def resolved_space(self) -> SearchSpace:
        return self.space or default_space()

    def validate(self) -> TuneSettings:
        """Check everything that can be checked before a folder is made; raise ``AerotuneError``."""
        self.config.validate()
        def bad(what: str, value: Any, expected: str) -> ConfigError:
            return ConfigError(f"{what} = {value!r} is invalid; use {expected}")
        if self.direction not in (None, "minimize", "maximize"):
            raise bad("--direction", self.direction, "minimize or maximize")
        if self.sampler not in SAMPLERS:
            raise bad("--sampler", self.sampler, " or ".join(SAMPLERS))
        if self.sampler_scope not in ("bracket", "study"):
            raise bad("--sampler-scope", self.sampler_scope, "bracket or study")
        if self.pruner not in PRUNERS:
            raise bad("--pruner", self.pruner, " or ".join(PRUNERS))
        check_metric(self.metric)
        if self.trials < 1:
            raise bad("--trials", self.trials, "a positive whole number")
        if self.workers < 1:
            raise bad("--workers", self.workers, "a positive whole number")
        if self.timeout is not None and self.timeout <= 0:
            raise bad("--timeout", self.timeout, "a positive number of seconds")
        if self.max_epochs_total is not None and self.max_epochs_total < 1:
            raise bad("--max-epochs-total", self.max_epochs_total, "a positive whole number")
        if self.reduction_factor < 2:
            raise bad("--reduction-factor", self.reduction_factor, "a whole number of at least 2")
        if not 1 <= self.min_resource <= self.config.train.epochs:
            raise bad("--min-resource", self.min_resource,
                      f"a whole number between 1 and the training epochs ({self.config.train.epochs})")
        if self.heartbeat < 1:
            raise bad("--heartbeat", self.heartbeat, "a positive whole number of seconds")
        if self.startup_trials < 0:
            raise bad("--startup-trials", self.startup_trials, "a non-negative whole number")
        if not self.name or any(c in self.name for c in "\n\r"):
            raise bad("--study-name", self.name, "a one-line name")
        check_space(self.resolved_space, self.config)
        if self.baseline is not None:
            resolve_baseline(self.baseline, self.resolved_space, self.config)
        return self


def check_metric(metric: str) -> None:
    prefix, _, name = metric.partition("_")
    ok = prefix in ("val", "train") and (name in METRIC_NAMES or
                                          name.split("_", 1)[0] in ("iou", "precision", "recall", "f1"))
    if not ok:
        raise ConfigError(f"--metric = {metric!r} is invalid; use val_ or train_ followed by one of "
                          f"{', '.join(METRIC_NAMES)} or iou_/precision_/recall_/f1_<class>, e.g. val_mean_iou")


@dataclass
class TuneResult:
    """What a study produced (also in ``RUN/summary.json``)."""

    run_dir: Path
    study_name: str
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    baseline_trial: int | None
    baseline_value: float | None
    epochs_spent: int
    counts: dict[str, int]
    summary: dict[str, Any] = field(default_factory=dict)


def plan_tune(settings: TuneSettings) -> Plan:
    """The HyperBand plan of a study (``--dry-run``), checked but without touching the disk."""
    settings.validate()
    return make_plan(study_name=settings.name, min_resource=settings.min_resource,
                     max_resource=settings.config.train.epochs, reduction_factor=settings.reduction_factor,
                     trials=settings.trials, baseline=settings.baseline is not None,
                     max_epochs_total=settings.max_epochs_total)


# ---------------------------------------------------------------- the study description


def _fingerprint(study: dict[str, Any]) -> dict[str, Any]:
    """What must match for a worker to join or resume a study."""
    base = json.loads(json.dumps(study["base_config"]))
    for k in _RUNTIME_KEYS:
        base["train"].pop(k, None)
    keys = ("space", "metric", "direction", "sampler", "seed", "min_resource", "max_resource", "reduction_factor",
            "startup_trials", "baseline_values")
    found = {**{k: study.get(k) for k in keys}, "base_config": base}
    if study.get("sampler_scope", "bracket") != "bracket":  # studies made before the option keep their print
        found["sampler_scope"] = study["sampler_scope"]
    if study.get("pruner", "hyperband") != "hyperband":
        found["pruner"] = study["pruner"]
    return found


def _describe(settings: TuneSettings, cache_root: Path) -> dict[str, Any]:
    space = settings.resolved_space
    baseline = (resolve_baseline(settings.baseline, space, settings.config)
                if settings.baseline is not None else None)
    return {
        "study_name": settings.name,
        "storage": redact(settings.storage) if settings.storage else str(Path(settings.out).resolve() / "journal.log"),
        "direction": settings.resolved_direction,
        "metric": settings.metric,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "startup_trials": settings.startup_trials,
        "sampler_scope": settings.sampler_scope,
        "pruner": settings.pruner,
        "min_resource": settings.min_resource,
        "max_resource": settings.config.train.epochs,
        "reduction_factor": settings.reduction_factor,
        "space": space.to_dict(),
        "base_config": settings.config.to_dict(),
        "cache": str(cache_root.resolve()),
        "baseline_trial": None,
        "baseline_values": baseline,
        "heartbeat": settings.heartbeat,
        "reference_epochs": REFERENCE_EPOCHS,
    }


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for k in [*a, *(k for k in b if k not in a)]:
        if a.get(k) != b.get(k):
            return k
    return "?"


def _write_json(path: Path, data: Any) -> None:
    write_json(path, data, default=str)


# ---------------------------------------------------------------- run


def run_tune(settings: TuneSettings) -> TuneResult:
    """Create or resume the study in ``settings.out``, run its workers, export and summarise it.

    Raises:
        AerotuneError: on bad settings or data, before anything runs (a run folder this call made is
            removed again).
    """
    from aerotune.data.dataset import make_split
    from aerotune.data.patches import cache_for

    settings.validate()
    out = Path(settings.out)
    created = not out.exists()
    t0 = time.time()
    try:
        out.mkdir(parents=True, exist_ok=True)
        cache = cache_for(settings.data, settings.config.data, out / "cache")
        desc = _describe(settings, cache.root)
        old_path = out / "study.json"
        if old_path.is_file():
            old = json.loads(old_path.read_text())
            if _fingerprint(old) != _fingerprint(desc):
                key = _first_difference(_fingerprint(old), _fingerprint(desc))
                raise RunError(f"{out}: the run folder holds a study with a different {key}; repeat the same "
                               "settings to resume it, or choose a new --out")
            desc["baseline_trial"] = old.get("baseline_trial")
        split_path = out / "split.json"
        if not split_path.is_file():
            _write_json(split_path, make_split(cache, settings.config.data).to_dict())
        study = _open_study(desc, out, settings.storage, heartbeat=settings.heartbeat)
        desc["baseline_trial"] = _setup_study(study.study, study.lock, desc)
        _write_json(out / "study.json", desc)
    except AerotuneError:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    budget = WorkerBudget(trials=settings.trials, timeout=settings.timeout,
                          max_epochs_total=settings.max_epochs_total, workers=settings.workers)
    try:
        if settings.workers == 1:
            run_worker(out, settings.storage, budget, index=0, opened=study)
        else:
            study.close()
            _run_worker_processes(out, settings.storage, budget)
            study = _open_study(desc, out, settings.storage, heartbeat=settings.heartbeat)
    finally:
        result = export_study(out, study.study, wall_seconds=time.time() - t0)
        study.close()
    return result


@dataclass(frozen=True)
class WorkerBudget:
    trials: int
    timeout: float | None = None
    max_epochs_total: int | None = None
    workers: int = 1


@dataclass
class _OpenStudy:
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


def _retry_callback():
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" notes
        return RetryHeartbeatStaleTrialCallback(max_retry=3, inherit_intermediate_values=True)


def _open_study(desc: dict[str, Any], out: Path, storage_url: str | None, *, heartbeat: int) -> _OpenStudy:
    import optuna

    from aerotune.tune.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage, lock = open_storage(storage_url, out, heartbeat=heartbeat, stale_callback=_retry_callback(),
                                 name=desc["study_name"])
    pruner = make_pruner(desc)
    try:
        with lock.hold():
            study = optuna.create_study(study_name=desc["study_name"], storage=storage,
                                        direction=desc["direction"], pruner=pruner, sampler=make_sampler(desc, 0),
                                        load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - e.g. an existing study with another direction
        if isinstance(exc, AerotuneError):
            raise
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RunError(f"study {desc['study_name']!r}: cannot open it in {desc['storage']} ({first})") from None
    return _OpenStudy(study, lock, storage)


def make_sampler(desc: dict[str, Any], number: int):
    """A sampler seeded for the next trial number: reproducible with one worker, and a resumed study
    does not replay the draws of its first run."""
    import optuna

    seed = desc.get("seed")
    seed = None if seed is None else (int(seed) * 1_000_003 + number * 7919) % (2**32)
    if desc["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                      n_startup_trials=int(desc.get("startup_trials", 10)))


def _setup_study(study, lock, desc: dict[str, Any]) -> int | None:
    """Check the study matches ``desc`` (joining workers must agree) and enqueue the baseline once."""
    from aerotune.tune.space import parse_space

    with lock.hold():
        attrs = study.user_attrs
        mine = _fingerprint(desc)
        have = attrs.get(SETTINGS_KEY)
        if have is None:
            study.set_user_attr(SETTINGS_KEY, mine)
        elif json.loads(json.dumps(have)) != json.loads(json.dumps(mine)):
            key = _first_difference(have, mine)
            raise RunError(f"study {desc['study_name']!r} in {desc['storage']} was made with a different {key}; "
                           "repeat its settings to join it, or choose another --study-name")
        if BASELINE_KEY in attrs:
            return attrs[BASELINE_KEY]
        number = None
        if desc["baseline_values"] is not None:
            space = parse_space(desc["space"], where="study.json")
            number = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(space.fixed_params(desc["baseline_values"]), user_attrs={"baseline": True},
                                skip_if_exists=False)
        study.set_user_attr(BASELINE_KEY, number)
        return number


def _run_worker_processes(out: Path, storage_url: str | None, budget: WorkerBudget) -> None:
    ctx = multiprocessing.get_context("spawn")
    gpus = _gpu_count()
    level = logging.getLogger("aerotune").getEffectiveLevel()
    procs = []
    for i in range(budget.workers):
        env = {"CUDA_VISIBLE_DEVICES": str(i % gpus)} if gpus > 1 else {}
        p = ctx.Process(target=_worker_process, args=(str(out), storage_url, budget, i, env, level),
                        name=f"aerotune-worker-{i}")
        p.start()
        procs.append(p)
        log.info("started worker %d (pid %d)", i, p.pid)
    try:
        for p in procs:
            p.join()
            if p.exitcode:
                log.warning("worker %s ended with exit code %s; its trial, if any, is retried", p.name, p.exitcode)
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


def _worker_process(out: str, storage_url: str | None, budget: WorkerBudget, index: int, env: dict[str, str],
                    level: int) -> None:
    os.environ.update(env)
    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s worker {index} %(name)s: %(message)s")
    logging.getLogger("aerotune").setLevel(level)
    try:
        run_worker(Path(out), storage_url, budget, index=index)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


# ---------------------------------------------------------------- one worker


def run_worker(out: Path, storage_url: str | None, budget: WorkerBudget, *, index: int = 0,
               opened: _OpenStudy | None = None) -> int:
    """Run trials of the study in ``out`` until the budget is used; return how many this worker ran."""
    from aerotune.data.dataset import Split
    from aerotune.data.patches import open_cache

    desc = json.loads((out / "study.json").read_text())
    study = opened or _open_study(desc, out, storage_url, heartbeat=int(desc.get("heartbeat", 10)))
    worker = _Worker(out, desc, study, budget, open_cache(desc["cache"]),
                     Split.from_dict(json.loads((out / "split.json").read_text())), index)
    try:
        return worker.loop()
    finally:
        if opened is None:
            study.close()


class _Worker:
    def __init__(self, out: Path, desc: dict[str, Any], opened: _OpenStudy, budget: WorkerBudget, cache, split,
                 index: int) -> None:
        from aerotune.tune.space import parse_space

        self.out, self.desc, self.budget, self.cache, self.split = out, desc, budget, cache, split
        self.study, self.lock, self.storage = opened.study, opened.lock, opened.storage
        self.space = parse_space(desc["space"], where="study.json")
        self.base = RunConfig.from_dict(desc["base_config"], where="study.json")
        cores = os.cpu_count() or 1
        runtime: dict[str, Any] = {}
        if budget.workers > 1:
            runtime["train.progress"] = False
            if self.base.train.threads == 0:
                runtime["train.threads"] = max(1, cores // budget.workers)
        self.runtime = runtime
        self.heartbeat = int(desc.get("heartbeat", 10))
        self.index = index
        self.maximize = desc["direction"] == "maximize"

    # -- scheduling

    def loop(self) -> int:
        deadline = None if self.budget.timeout is None else time.monotonic() + self.budget.timeout
        ran = 0
        while True:
            trial, why = self._next_trial(deadline)
            if trial is None and why:
                log.info("worker %d: no more trials (%s)", self.index, why)
                return ran
            if trial is None:  # others are still running; wait for them to finish or go stale
                time.sleep(min(self.heartbeat, 2))
                continue
            self._run(trial)
            ran += 1

    def _next_trial(self, deadline: float | None):
        import optuna
        from optuna.trial import TrialState

        with self.lock.hold(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental-feature and heartbeat-with-ask notes
            optuna.storages.fail_stale_trials(self.study)
            if deadline is not None and time.monotonic() > deadline:
                return None, "timeout"
            cap = self.budget.max_epochs_total
            if cap is not None and self.study.user_attrs.get(EPOCHS_KEY, 0) >= cap:
                return None, f"epoch budget of {cap} spent"
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            counted = sum(1 for t in trials if "failed_trial" not in t.system_attrs)
            if waiting or counted < self.budget.trials:
                self.study.sampler = make_sampler(self.desc, len(trials))
                return self.study.ask(), ""
            if any(t.state == TrialState.RUNNING for t in trials):
                return None, ""
            return None, f"{self.budget.trials} trials done"

    def claim_epoch(self) -> int | None:
        """Count one more epoch against the cap; None when the cap is reached."""
        with self.lock.hold():
            spent = int(self.study.user_attrs.get(EPOCHS_KEY, 0))
            cap = self.budget.max_epochs_total
            if cap is not None and spent >= cap:
                return None
            self.study.set_user_attr(EPOCHS_KEY, spent + 1)
            return spent + 1

    # -- one trial

    def _run(self, trial) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        from aerotune.train.fit import fit
        from aerotune.tune.space import config_values
        from aerotune.tune.storage import Heartbeat

        number = trial.number
        baseline = bool(trial.user_attrs.get("baseline"))
        run_dir = self.out / "trials" / f"{number:04d}"
        cb = _TrialCallback(self, trial, exempt=baseline)
        state, status, reason, value = TrialState.FAIL, "failed", "", None
        t0 = time.time()
        try:
            with Heartbeat(self.storage, trial._trial_id, self.heartbeat):
                values = self.space.suggest(trial)
                if baseline:
                    values = {**values, **(self.desc["baseline_values"] or {})}
                values = config_values(self.space, values)
                trial.set_user_attr("params", values)
                trial.set_user_attr("run_dir", str(run_dir.relative_to(self.out)))
                trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
                self._resume_from_previous(trial, run_dir)
                log.info("trial %d%s: %s", number, " (baseline)" if baseline else "",
                         ", ".join(f"{k}={v}" for k, v in values.items()))
                try:
                    config = self.base.with_overrides({**values, **self.runtime}, where=f"trial {number}")
                    result = fit(config, self.cache, run_dir, split=self.split, callback=cb)
                except KeyboardInterrupt:
                    self._tell(trial, TrialState.FAIL, "interrupted", "stopped by the user; retried on resume",
                               None, cb, t0)
                    with contextlib.suppress(Exception):
                        _retry_callback()(self.study, self.study._storage.get_trial(trial._trial_id))
                    raise
                except UpdateFinishedTrialError:
                    log.warning("trial %d was failed by another worker (stale heartbeat); dropping it", number)
                    return
                except Exception as exc:  # noqa: BLE001 - a failing trial never ends the study
                    if _is_oom(exc):
                        status, reason = "out of memory", first_line(exc)
                        _free_memory()
                    elif isinstance(exc, AerotuneError):
                        status, reason = "error", first_line(exc)
                    else:
                        status, reason = "error", f"{type(exc).__name__}: {first_line(exc)}"
                        log.exception("trial %d failed", number)
                    result = None
            if result is not None:
                state, status, reason, value = self._outcome(result, cb)
        except UpdateFinishedTrialError:
            log.warning("trial %d was failed by another worker (stale heartbeat); dropping it", number)
            return
        self._tell(trial, state, status, reason, value, cb, t0)
        log.info("trial %d: %s after %d epoch(s)%s%s", number, status, cb.epochs_done,
                 "" if value is None else f", {self.desc['metric']} {value:.4f}", f" ({reason})" if reason else "")

    def _outcome(self, result, cb: _TrialCallback):
        from optuna.trial import TrialState

        if cb.failure:
            return TrialState.FAIL, cb.failure[0], cb.failure[1], None
        if result.status == "diverged":
            return TrialState.FAIL, "diverged", result.reason, None
        if cb.pruned:
            return TrialState.PRUNED, "pruned", f"pruned after epoch {cb.epochs_done}", None
        if cb.out_of_budget:
            return TrialState.PRUNED, "budget", "the study's epoch budget (--max-epochs-total) was spent", None
        if result.status != "completed":
            return TrialState.FAIL, result.status, result.reason, None
        metric = self.desc["metric"]
        vals = [r[metric] for r in result.history if metric in r and math.isfinite(r[metric])]
        if not vals:
            return TrialState.FAIL, "error", f"no finite {metric} in the training history", None
        return TrialState.COMPLETE, "complete", "", (max(vals) if self.maximize else min(vals))

    def _tell(self, trial, state, status: str, reason: str, value: float | None, cb: _TrialCallback,
              t0: float) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            trial.set_user_attr("status", status)
            trial.set_user_attr("reason", reason)
            trial.set_user_attr("epochs", cb.epochs_done)
            trial.set_user_attr("epoch_ticks", cb.ticks)
            trial.set_user_attr("seconds", round(time.time() - t0, 3))
            self.study.tell(trial, value if state.name == "COMPLETE" else None, state=state)
        except UpdateFinishedTrialError:
            log.warning("trial %d was already finished by another worker", trial.number)

    def _resume_from_previous(self, trial, run_dir: Path) -> None:
        """A retried trial continues from its predecessor's last checkpoint when that is on this machine."""
        frozen = next(t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number)
        history = frozen.system_attrs.get("retry_history") or []
        if not history or (run_dir / "checkpoints" / "last.pt").is_file():
            return
        for prev in reversed(history):
            src = self.out / "trials" / f"{prev:04d}" / "checkpoints"
            if (src / "last.pt").is_file():
                (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
                for name in ("last.pt", "best.pt"):
                    if (src / name).is_file():
                        shutil.copy2(src / name, run_dir / "checkpoints" / name)
                trial.set_user_attr("resumed_from", prev)
                log.info("trial %d continues trial %d from its last checkpoint", trial.number, prev)
                return


class _TrialCallback(Callback):
    """Reports each epoch's metric to Optuna and applies pruning and the study's epoch cap."""

    def __init__(self, worker: _Worker, trial, *, exempt: bool) -> None:
        self.worker, self.trial, self.exempt = worker, trial, exempt
        self.metric = worker.desc["metric"]
        self.max_epochs = int(worker.desc["max_resource"])
        self.pruned = self.out_of_budget = False
        self.failure: tuple[str, str] | None = None
        self.ticks: list[int] = list(trial.user_attrs.get("epoch_ticks", []))
        self.epochs_done = 0
        frozen = next(t for t in worker.study.get_trials(deepcopy=False) if t.number == trial.number)
        self.reported = set(frozen.intermediate_values)  # a retry inherits its predecessor's epochs

    def on_epoch_start(self, epoch: int) -> bool:
        if self.pruned or self.failure:
            return False
        tick = self.worker.claim_epoch()
        if tick is None:
            self.out_of_budget = True
            return False
        self.ticks.append(tick)
        return True

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self.epochs_done = epoch
        value = record.get(self.metric)
        if value is None:
            self.failure = ("error", f"metric {self.metric!r} is not in the training record")
            return
        if not math.isfinite(value):
            self.failure = ("diverged", f"{self.metric} became non-finite in epoch {epoch}")
            return
        if epoch in self.reported:
            return  # a retry that trains again an epoch its predecessor reported
        self.reported.add(epoch)
        self.trial.report(float(value), epoch)
        if epoch >= self.max_epochs:
            return  # the last epoch is not a rung: the trial completes
        prune = self.trial.should_prune()
        if prune and not self.exempt:
            self.pruned = True


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _free_memory() -> None:
    import gc

    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------- results


def load_run_study(out: str | Path, storage: str | None = None):
    """Open the study of a tuning run folder (for exports, dashboards and reports)."""
    out = Path(out)
    path = out / "study.json"
    if not path.is_file():
        raise RunError(f"{out}: not a tuning run folder (no study.json); run aerotune tune --out {out} first")
    desc = json.loads(path.read_text())
    url = storage
    if url is None and "://" in desc["storage"]:
        if "***" in desc["storage"]:
            raise RunError(f"{out}: the study is in {desc['storage']}; give its full URL with --storage")
        url = desc["storage"]
    elif url is None:  # the journal: trust the run folder over a path recorded before it was moved
        url = str(out / "journal.log")
    return _open_study(desc, out, url, heartbeat=int(desc.get("heartbeat", 10))), desc


def trial_records(study, desc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every trial as a plain dict (the rows of trials.json / trials.csv)."""
    from aerotune.tune.plan import bracket_of, bracket_shares, n_brackets

    trials = study.get_trials(deepcopy=False)
    retried = {}
    for t in trials:
        for n in t.system_attrs.get("retry_history", []) or []:
            retried[n] = t.number
    shares = bracket_shares(n_brackets(desc["min_resource"], desc["max_resource"], desc["reduction_factor"]),
                            desc["reduction_factor"])
    rows = []
    for t in trials:
        ua = t.user_attrs
        state = t.state.name
        status = ua.get("status")
        reason = ua.get("reason", "")
        if state == "FAIL" and status is None:
            status = "stale heartbeat" if t.number in retried else "failed"
            reason = "its worker stopped (no heartbeat)" if t.number in retried else "no reason recorded"
        if t.number in retried:
            reason = (reason + "; " if reason else "") + f"retried as trial {retried[t.number]}"
        if status is None:
            status = state.lower()
        values = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        duration = None
        if t.datetime_start is not None and t.datetime_complete is not None:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append({
            "number": t.number,
            "state": state,
            "status": status,
            "params": ua.get("params", {}),
            "epochs": max(t.intermediate_values) if t.intermediate_values else 0,
            "values": values,
            "value": t.value if state == "COMPLETE" else None,
            "duration_s": duration,
            "reason": reason,
            "baseline": bool(ua.get("baseline")),
            "bracket": bracket_of(desc["study_name"], t.number, shares),
            "retry_of": t.system_attrs.get("failed_trial"),
            "resumed_from": ua.get("resumed_from"),
            "epoch_ticks": ua.get("epoch_ticks", []),
            "run_dir": ua.get("run_dir"),
            "worker": ua.get("worker"),
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        })
    return rows


def export_study(out: str | Path, study=None, *, wall_seconds: float | None = None) -> TuneResult:
    """Write trials.csv/json, best_params.json, best_checkpoint.pt and summary.json; return the summary."""
    out = Path(out)
    desc = json.loads((out / "study.json").read_text())
    opened = None
    if study is None:
        opened, desc = load_run_study(out)
        study = opened.study
    try:
        rows = trial_records(study, desc)
        epochs_spent = int(study.user_attrs.get(EPOCHS_KEY, 0))
        baseline_number = study.user_attrs.get(BASELINE_KEY, desc.get("baseline_trial"))
    finally:
        if opened is not None:
            opened.close()
    _write_json(out / "trials.json", rows)
    _write_trials_csv(out / "trials.csv", rows)

    maximize = desc["direction"] == "maximize"
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = (max if maximize else min)(complete, key=lambda r: r["value"]) if complete else None
    baseline_row = next((r for r in rows if r["baseline"] and r["state"] == "COMPLETE"), None)
    if baseline_row is None:
        baseline_row = next((r for r in rows if r["number"] == baseline_number), None)
    count = lambda pred: sum(1 for r in rows if pred(r))  # noqa: E731
    counts = {
        "trials": len(rows),
        "complete": count(lambda r: r["state"] == "COMPLETE"),
        "pruned": count(lambda r: r["state"] == "PRUNED" and r["status"] != "budget"),
        "stopped_by_budget": count(lambda r: r["status"] == "budget"),
        "failed": count(lambda r: r["state"] == "FAIL"),
        "diverged": count(lambda r: r["status"] == "diverged"),
        "out_of_memory": count(lambda r: r["status"] == "out of memory"),
        "stale": count(lambda r: r["status"] == "stale heartbeat"),
        "running": count(lambda r: r["state"] == "RUNNING"),
        "waiting": count(lambda r: r["state"] == "WAITING"),
    }
    checkpoint = None
    if best is not None:
        src = out / "trials" / f"{best['number']:04d}" / "checkpoints" / "best.pt"
        if src.is_file():
            tmp = out / f"best_checkpoint.pt.tmp{os.getpid()}"
            shutil.copy2(src, tmp)
            os.replace(tmp, out / "best_checkpoint.pt")
            checkpoint = "best_checkpoint.pt"
        else:
            log.warning("the best trial's checkpoint %s is not on this machine", src)
        _write_json(out / "best_params.json", best["params"])
    summary = {
        "study_name": desc["study_name"],
        "metric": desc["metric"],
        "direction": desc["direction"],
        "epochs_spent": epochs_spent,
        "epochs_completed": sum(r["epochs"] for r in rows),
        "reference_epochs": REFERENCE_EPOCHS,
        "counts": counts,
        "best_trial": best["number"] if best else None,
        "best_value": best["value"] if best else None,
        "best_params": best["params"] if best else {},
        "best_checkpoint": checkpoint,
        "baseline_trial": baseline_row["number"] if baseline_row else None,
        "baseline_value": baseline_row["value"] if baseline_row else None,
        "baseline_params": baseline_row["params"] if baseline_row else None,
        "wall_seconds": round(wall_seconds, 1) if wall_seconds is not None else None,
    }
    _write_json(out / "summary.json", summary)
    return TuneResult(out, desc["study_name"], summary["best_trial"], summary["best_value"], summary["best_params"],
                      summary["baseline_trial"], summary["baseline_value"], epochs_spent, counts, summary)


def _write_trials_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys = sorted({k for r in rows for k in r["params"]})
    fields = ["number", "state", "status", "epochs", "value", "duration_s", "baseline", "bracket", "retry_of",
              *[f"param:{k}" for k in keys], "values", "reason", "run_dir"]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            row = {k: r.get(k) for k in fields if not k.startswith("param:")}
            row["values"] = json.dumps(r["values"])
            row.update({f"param:{k}": r["params"].get(k) for k in keys})
            w.writerow(row)
    os.replace(tmp, path)
