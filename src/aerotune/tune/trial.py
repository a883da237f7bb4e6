"""One trial's link to Optuna during training: report each epoch, prune, and respect the study's epoch cap."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aerotune.train.fit import Callback

log = logging.getLogger(__name__)


class TrialCallback(Callback):
    """Reports each epoch's metric to Optuna and applies pruning and the study's epoch cap."""

    def __init__(self, worker: Any, trial, *, exempt: bool) -> None:
        self.worker, self.trial, self.exempt = worker, trial, exempt
        self.metric = worker.desc.metric
        self.max_epochs = int(worker.desc.max_resource)
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

    def on_epoch_end(self, epoch: int, record: Mapping[str, float]) -> None:
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


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_memory() -> None:
    import gc

    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def resume_from_previous(study, out: Path, trial, run_dir: Path) -> None:
    """A retried trial continues from its predecessor's last checkpoint when that is on this machine."""
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
    history = frozen.system_attrs.get("retry_history") or []
    if not history or (run_dir / "checkpoints" / "last.pt").is_file():
        return
    for prev in reversed(history):
        src = out / "trials" / f"{prev:04d}" / "checkpoints"
        if (src / "last.pt").is_file():
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            for name in ("last.pt", "best.pt"):
                if (src / name).is_file():
                    shutil.copy2(src / name, run_dir / "checkpoints" / name)
            trial.set_user_attr("resumed_from", prev)
            log.info("trial %d continues trial %d from its last checkpoint", trial.number, prev)
            return
