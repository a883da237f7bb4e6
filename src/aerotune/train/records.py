"""What a training run folder holds, as typed records: ``metrics.json``, ``data.json``, and the folder read whole.

``train.fit`` writes them; the report (and anything else that reads a run folder) reads them through
:func:`read_training_run`, never by opening the files on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aerotune.errors import RunError
from aerotune.history import EpochRecord
from aerotune.records import Record, read_json

if TYPE_CHECKING:
    from aerotune.config import RunConfig
    from aerotune.data.splits import Split

_FIX = "give the folder of a finished training run (aerotune train --out RUN)"


def read_history(path: Path, *, fix: str) -> list[EpochRecord]:
    """The rows of a ``history.json``."""
    rows = read_json(path, fix=fix)
    if not isinstance(rows, list):
        raise RunError(f"{path}: expected a JSON list; {fix}")
    return [EpochRecord.from_json(row, where=f"{path} item {i}") for i, row in enumerate(rows)]


@dataclass(frozen=True)
class RunMetrics(Record):
    """``metrics.json``: how a training run ended, and its final epoch's record."""

    FILE = "metrics.json"

    status: str  # completed | diverged | stopped | incomplete (read from the history of a run still going)
    epochs: int
    best_epoch: int | None = None
    best_val_loss: float | None = None
    reason: str = ""
    final: dict[str, float] = field(default_factory=dict)  # the final epoch's row (``EpochRecord.to_json``)
    device: str | None = None
    precision: str | None = None
    patches: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DataRecord(Record):
    """``data.json``: the patch cache a run was trained on."""

    FILE = "data.json"

    cache: str


@dataclass(frozen=True)
class TrainingRun:
    """A training run folder, read (not evaluated)."""

    path: Path
    config: RunConfig
    config_dict: dict[str, Any]  # config.json as written (the report shows its keys as they are)
    split: Split
    history: list[EpochRecord]
    metrics: RunMetrics
    cache_path: Path
    checkpoint: Path

    @property
    def final_val_loss(self) -> float:
        return float(self.history[-1]["val_loss"]) if self.history else math.nan

    @property
    def best_epoch(self) -> int | None:
        return self.metrics.best_epoch


def read_training_run(path: str | Path) -> TrainingRun:
    """Read a training run folder; a missing or incomplete one is a ``RunError`` with the fix."""
    from aerotune.config import RunConfig
    from aerotune.data.dataset import Split

    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found; {_FIX}")
    config_dict = read_json(path / "config.json", fix=_FIX)
    config = RunConfig.from_dict(config_dict, where=str(path / "config.json"))
    split = Split.from_dict(read_json(path / "split.json", fix=_FIX))
    history = read_history(path / "history.json", fix=_FIX)
    if not history:
        raise RunError(f"{path}: the run has no finished epoch; train it for at least one epoch")
    if (path / RunMetrics.FILE).is_file():
        metrics = RunMetrics.read(
            path / RunMetrics.FILE, fix="let the run finish, or resume it with the same aerotune train command"
        )
    else:  # a run still going (or killed): take what its history says
        best = min(history, key=lambda h: h["val_loss"])
        metrics = RunMetrics(
            status="incomplete",
            epochs=len(history),
            best_epoch=best["epoch"],
            best_val_loss=best["val_loss"],
            final=history[-1].to_json(),
        )
    data = DataRecord.read(path / DataRecord.FILE, fix=_FIX)
    checkpoint = path / "checkpoints" / "best.pt"
    if not checkpoint.is_file():
        raise RunError(f"{checkpoint}: checkpoint not found; train the run again (aerotune train --out {path})")
    cache_path = Path(data.cache)
    if not cache_path.is_absolute():
        cache_path = (path / cache_path).resolve()
    return TrainingRun(path, config, config_dict, split, history, metrics, cache_path, checkpoint)
