"""What the tuning stage writes for the stages that read it: ``study.json``, ``trials.json``, ``summary.json``.

Each file is one typed record, defined here once. Readers (``aerotune report``, the benchmarks) use
:func:`read_tune_run` (and :func:`aerotune.tune.export.load_run_study` for the Optuna study itself) instead of
opening the files or the storage on their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aerotune.config import Value, keys_with_role
from aerotune.errors import RunError
from aerotune.records import JSONDict, Record, read_records
from aerotune.reference import REFERENCE_EPOCHS

#: Training settings that say how a worker runs, not what it trains: they may differ between workers.
RUNTIME_KEYS = tuple(key.split(".", 1)[1] for key in keys_with_role("runtime") if key.startswith("train."))

_FIX = "give the folder of a tuning run (aerotune tune --out RUN), or wait until it has written its summary"


@dataclass(frozen=True)
class StudyRecord(Record):
    """``study.json``: what a study is (its settings, space and base config); written before any trial runs."""

    FILE = "study.json"

    study_name: str
    storage: str
    direction: str
    metric: str
    sampler: str
    seed: int | None
    min_resource: int
    max_resource: int
    reduction_factor: int
    space: JSONDict
    base_config: JSONDict
    cache: str
    startup_trials: int = 10
    sampler_scope: str = "bracket"
    pruner: str = "hyperband"
    baseline_trial: int | None = None
    baseline_values: dict[str, Value] | None = None
    #: Trial 1: aerotune's default recipe untuned (the base config's values of the searched settings); None when
    #: the base config is the reference's recipe or there is no baseline.
    default_values: dict[str, Value] | None = None
    heartbeat: int = 10
    reference_epochs: int = REFERENCE_EPOCHS

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def fingerprint(self) -> JSONDict:
        """What must match for a worker to join or resume the study (runtime settings may differ)."""
        data = self.to_json()
        base = json.loads(json.dumps(self.base_config))
        for k in RUNTIME_KEYS:
            base["train"].pop(k, None)
        for k, none in (("test_fraction", 0.0), ("test_tiles", None)):  # studies made before the test portion
            if base.get("data", {}).get(k, none) == none:
                base.get("data", {}).pop(k, None)
        keys = (
            "space",
            "metric",
            "direction",
            "sampler",
            "seed",
            "min_resource",
            "max_resource",
            "reduction_factor",
            "startup_trials",
            "baseline_values",
        )
        found = {**{k: data[k] for k in keys}, "base_config": base}
        if self.sampler_scope != "bracket":  # studies made before the option keep their fingerprint
            found["sampler_scope"] = self.sampler_scope
        if self.pruner != "hyperband":  # likewise for the pruner
            found["pruner"] = self.pruner
        if self.default_values is not None:  # studies made before the default-recipe trial
            found["default_values"] = self.default_values
        return found


@dataclass(frozen=True)
class TrialRecord(Record):
    """One row of ``trials.json`` (and ``trials.csv``): a trial as the study saw it."""

    number: int
    state: str  # Optuna's: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    status: str  # ours: complete, pruned, budget, diverged, out of memory, stale heartbeat, error, ...
    params: dict[str, Value] = field(default_factory=dict)
    epochs: int = 0
    values: list[float] = field(default_factory=list)  # the tuned metric after each epoch
    value: float | None = None  # the trial's objective (COMPLETE only)
    duration_s: float | None = None
    reason: str = ""
    baseline: bool = False
    default_recipe: bool = False  # trial 1: aerotune's default recipe, untuned
    bracket: int | None = None
    retry_of: int | None = None
    resumed_from: int | None = None
    epoch_ticks: list[int] = field(default_factory=list)
    run_dir: str | None = None
    worker: str | None = None
    datetime_start: str | None = None
    datetime_complete: str | None = None


@dataclass(frozen=True)
class StudySummary(Record):
    """``summary.json``: what a study produced so far."""

    FILE = "summary.json"

    epochs_spent: int  # epochs trained by all trials (the study's budget counter)
    counts: dict[str, int]  # trials by outcome: complete, pruned, failed, ...
    study_name: str
    metric: str
    direction: str
    epochs_completed: int = 0
    reference_epochs: int = REFERENCE_EPOCHS
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Value] = field(default_factory=dict)
    best_checkpoint: str | None = None
    baseline_trial: int | None = None
    baseline_value: float | None = None
    baseline_params: dict[str, Value] | None = None
    wall_seconds: float | None = None


@dataclass(frozen=True)
class TuneRun:
    """A tuning run folder, read: its study, its trials and (once exported) its summary."""

    path: Path
    study: StudyRecord
    trials: list[TrialRecord]
    summary: StudySummary | None

    @property
    def best_trial(self) -> int | None:
        return self.summary.best_trial if self.summary else None

    @property
    def baseline_trial(self) -> int | None:
        """study.json is written before the baseline trial exists; the summary knows its number."""
        if self.study.baseline_trial is not None:
            return self.study.baseline_trial
        return self.summary.baseline_trial if self.summary else None

    def trial_dir(self, number: int) -> Path:
        return self.path / "trials" / f"{number:04d}"


def is_tune_run(path: str | Path) -> bool:
    return (Path(path) / StudyRecord.FILE).is_file()


def read_study(out: Path) -> StudyRecord:
    """``study.json`` of a tuning run folder."""
    if not is_tune_run(out):
        raise RunError(f"{out}: not a tuning run folder (no study.json); run aerotune tune --out {out} first")
    return StudyRecord.read(out / StudyRecord.FILE, fix=_FIX)


def read_tune_run(path: str | Path) -> TuneRun:
    """Read a tuning run folder (``study.json``, ``trials.json``, ``summary.json`` when there)."""
    path = Path(path)
    study = read_study(path)
    trials = read_records(TrialRecord, path / "trials.json", fix=_FIX)
    summary = StudySummary.read(path / StudySummary.FILE, fix=_FIX) if (path / StudySummary.FILE).is_file() else None
    return TuneRun(path, study, trials, summary)
