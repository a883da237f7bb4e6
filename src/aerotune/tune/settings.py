"""``TuneSettings``: everything one tuning study needs, checked before anything touches the disk."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aerotune.config import RunConfig, Value
from aerotune.errors import ConfigError
from aerotune.reference import reference_trial
from aerotune.tune.plan import Plan, make_plan
from aerotune.tune.records import StudySummary
from aerotune.tune.space import SearchSpace
from aerotune.tune.space_checks import check_space, resolve_baseline
from aerotune.tune.space_parse import default_space

SAMPLERS = ("tpe", "random")
#: A new study's sampler when ``--sampler`` is not given: the best on the Dubai learning-curve replay (docs/tuning.md).
DEFAULT_SAMPLER = "random"
SAMPLER_SCOPES = ("bracket", "study")
#: Early stopping over epochs: HyperBand (default), asynchronous successive halving, or none (full budget).
PRUNERS = ("hyperband", "sha", "none")
DIRECTIONS = ("minimize", "maximize")
METRIC_NAMES = (
    "loss",
    "pixel_accuracy",
    "majority_rate",
    "mean_iou",
    "mean_iou_labelled",
    "mean_f1",
    "precision_ref",
    "recall_ref",
)


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
        sampler: tpe, random (classic HyperBand), or None: random for a new study, the earlier one's on resume.
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
    """

    data: str | Path
    out: str | Path
    config: RunConfig = field(default_factory=RunConfig)
    space: SearchSpace | None = None
    metric: str = "val_loss"
    direction: str | None = None
    sampler: str | None = None  # None: DEFAULT_SAMPLER for a new study, the earlier study's on resume
    seed: int = 0
    study_name: str | None = None
    storage: str | None = None
    min_resource: int = 1
    reduction_factor: int = 3
    trials: int = 72
    timeout: float | None = None
    max_epochs_total: int | None = None
    workers: int = 1
    baseline: dict[str, Value] | None = field(default_factory=reference_trial)
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

    def with_sampler(self, earlier: str | None) -> TuneSettings:
        """These settings with the sampler decided: the one given, else the earlier study's (``earlier``, so a
        study made with another default resumes as it was made), else ``DEFAULT_SAMPLER``."""
        return replace(self, sampler=self.sampler or earlier or DEFAULT_SAMPLER)

    @property
    def resolved_space(self) -> SearchSpace:
        return self.space or default_space()

    def validate(self) -> TuneSettings:
        """Check everything that can be checked before a folder is made; raise ``AerotuneError``."""
        self.config.validate()

        def bad(what: str, value: Any, expected: str) -> ConfigError:
            return ConfigError(f"{what} = {value!r} is invalid; use {expected}")

        if self.direction is not None and self.direction not in DIRECTIONS:
            raise bad("--direction", self.direction, "minimize or maximize")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise bad("--sampler", self.sampler, " or ".join(SAMPLERS))
        if self.sampler_scope not in SAMPLER_SCOPES:
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
            raise bad(
                "--min-resource",
                self.min_resource,
                f"a whole number between 1 and the training epochs ({self.config.train.epochs})",
            )
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
    ok = prefix in ("val", "train") and (
        name in METRIC_NAMES or name.split("_", 1)[0] in ("iou", "precision", "recall", "f1")
    )
    if not ok:
        raise ConfigError(
            f"--metric = {metric!r} is invalid; use val_ or train_ followed by one of "
            f"{', '.join(METRIC_NAMES)} or iou_/precision_/recall_/f1_<class>, e.g. val_mean_iou"
        )


@dataclass(frozen=True)
class TuneResult:
    """What a study produced: its run folder and its summary (also in ``RUN/summary.json``)."""

    run_dir: Path
    summary: StudySummary

    @property
    def study_name(self) -> str:
        return self.summary.study_name

    @property
    def metric(self) -> str:
        return self.summary.metric

    @property
    def direction(self) -> str:
        return self.summary.direction

    @property
    def epochs_spent(self) -> int:
        """Epochs trained by all trials (the study's budget counter)."""
        return self.summary.epochs_spent

    @property
    def epochs_completed(self) -> int:
        return self.summary.epochs_completed

    @property
    def reference_epochs(self) -> int:
        return self.summary.reference_epochs

    @property
    def counts(self) -> dict[str, int]:
        """Trials by outcome: complete, pruned, failed, ..."""
        return self.summary.counts

    @property
    def best_trial(self) -> int | None:
        return self.summary.best_trial

    @property
    def best_value(self) -> float | None:
        return self.summary.best_value

    @property
    def best_params(self) -> dict[str, Value]:
        return self.summary.best_params

    @property
    def best_checkpoint(self) -> str | None:
        return self.summary.best_checkpoint

    @property
    def baseline_trial(self) -> int | None:
        return self.summary.baseline_trial

    @property
    def baseline_value(self) -> float | None:
        return self.summary.baseline_value

    @property
    def baseline_params(self) -> dict[str, Value] | None:
        return self.summary.baseline_params

    @property
    def wall_seconds(self) -> float | None:
        return self.summary.wall_seconds


@dataclass(frozen=True)
class WorkerBudget:
    trials: int
    timeout: float | None = None
    max_epochs_total: int | None = None
    workers: int = 1


def plan_tune(settings: TuneSettings) -> Plan:
    """The plan of a study (``--dry-run``) for the pruner it uses, checked but without touching the disk."""
    settings.validate()
    return make_plan(
        study_name=settings.name,
        min_resource=settings.min_resource,
        max_resource=settings.config.train.epochs,
        reduction_factor=settings.reduction_factor,
        trials=settings.trials,
        baseline=settings.baseline is not None,
        max_epochs_total=settings.max_epochs_total,
        pruner=settings.pruner,
        default_trial=has_default_trial(settings),
    )


def has_default_trial(settings: TuneSettings) -> bool:
    """Whether trial 1 is the default recipe untuned: there is a baseline and the base config differs from it."""
    if settings.baseline is None:
        return False
    baseline = resolve_baseline(settings.baseline, settings.resolved_space, settings.config)
    return any(getattr(getattr(settings.config, k.split(".")[0]), k.split(".")[1]) != v for k, v in baseline.items())
