"""What a report compares, gathered from run folders: the tuned run, an optional baseline, an optional study.

A training run folder is read through :func:`aerotune.train.records.read_training_run`, a tuning run folder
through :func:`aerotune.tune.records.read_tune_run`: the report never opens those files itself. Models are
evaluated again later (``evaluate.py``) on the tuned run's validation patches, so baseline and tuned numbers
always describe the same pixels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aerotune.errors import RunError
from aerotune.train.records import TrainingRun, read_training_run
from aerotune.tune.records import TuneRun, is_tune_run, read_tune_run

log = logging.getLogger(__name__)


@dataclass
class Sources:
    """What one report compares: the tuned run, an optional baseline, an optional study."""

    tuned: TrainingRun
    baseline: TrainingRun | None
    study: TuneRun | None
    kind: str  # "tuning" or "training"
    notes: list[str] = field(default_factory=list)
    #: False when baseline and tuned runs use different losses: their loss values are not comparable.
    comparable_loss: bool = True
    #: A study's trial 1: aerotune's default recipe untuned, between the reference (baseline) and the tuned model.
    default: TrainingRun | None = None


def gather(run: str | Path, baseline: str | Path | None = None) -> Sources:
    """Resolve which folders are tuned and baseline for a report of ``run``."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: run folder not found; give a training run or a tuning run folder")
    notes: list[str] = []
    study = None
    if is_tune_run(run):
        study = read_tune_run(run)
        if study.best_trial is None:
            raise RunError(_no_best_trial(run, study))
        tuned = read_training_run(study.trial_dir(study.best_trial))
        base = None
        if baseline is not None:
            base = read_training_run(baseline)
        elif study.baseline_trial is not None:
            if study.baseline_trial == study.best_trial:
                notes.append(
                    "The best trial is the baseline trial itself: tuning found nothing better than the "
                    "initial parameters."
                )
            base = read_training_run(study.trial_dir(study.baseline_trial))
        else:
            notes.append("The study has no baseline trial, so the report shows the tuned model alone.")
        kind = "tuning"
    else:
        tuned = read_training_run(run)
        base = read_training_run(baseline) if baseline is not None else None
        kind = "training"
    comparable = True
    if base is not None and base.path.resolve() != tuned.path.resolve():
        comparable = _check_comparable(tuned, base, notes)
    return Sources(tuned, base, study, kind, notes, comparable, default_trial(study) if baseline is None else None)


def default_trial(study: TuneRun | None) -> TrainingRun | None:
    """The study's default-recipe trial (trial 1) when it completed, for the report's middle column."""
    if study is None:
        return None
    row = next((t for t in study.trials if t.default_recipe and t.state == "COMPLETE"), None)
    return read_training_run(study.trial_dir(row.number)) if row is not None else None


def _no_best_trial(run: Path, study: TuneRun) -> str:
    """Why a study has no trial to report on, and the fix: wait for it, or (every trial diverged) tune again."""
    finished = [t for t in study.trials if t.state not in ("RUNNING", "WAITING")]
    if finished and len(finished) == len(study.trials) and all(t.status == "diverged" for t in finished):
        return (
            f"{run}: the study is over and every one of its {len(finished)} trial(s) diverged (the loss became "
            "non-finite), most likely because the learning rate is too high; tune again into a new --out with a "
            "lower learning-rate range in the space (--space FILE) or a lower --set train.learning_rate"
        )
    return f"{run}: the study has no complete trial yet; let it run longer (aerotune tune resumes)"


def _check_comparable(tuned: TrainingRun, base: TrainingRun, notes: list[str]) -> bool:
    """Refuse runs of other classes; note other patches or splits; return whether their losses compare."""
    t_cache = _read_manifest(tuned.cache_path)
    b_cache = _read_manifest(base.cache_path)
    if t_cache and b_cache and t_cache.get("palette") != b_cache.get("palette"):
        raise RunError(
            f"{base.path}: baseline was trained on other classes than {tuned.path}; compare runs of the same dataset"
        )
    same_cache = tuned.cache_path.resolve() == base.cache_path.resolve() or (
        t_cache.get("inputs_hash") is not None and t_cache.get("inputs_hash") == b_cache.get("inputs_hash")
    )
    if not same_cache or tuned.split.to_dict() != base.split.to_dict():
        notes.append(
            "The baseline was trained on other patches or another split; both models are evaluated on the "
            "tuned run's validation patches, some of which the baseline may have seen in training. Its "
            "loss curves are on its own validation set."
        )
    if _loss_settings(tuned) != _loss_settings(base):
        notes.append(
            "Baseline and tuned runs use different loss settings, so their losses are not comparable; "
            "compare mean IoU instead."
        )
        return False
    return True


def _loss_settings(run: TrainingRun) -> tuple:
    t = run.config.train
    return t.loss, t.dice_weight, t.focal_weight, t.focal_gamma, t.focal_alpha


def _read_manifest(cache: Path) -> dict[str, Any]:
    try:
        return json.loads((cache / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
