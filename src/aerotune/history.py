"""One row of a training run's history (``history.json``): shared, because the checkpoint (model stage) keeps the
history it was saved with, and training, tuning and the report read it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from aerotune.errors import RunError
from aerotune.records import Record


@dataclass(frozen=True)
class EpochRecord(Record, Mapping[str, float]):
    """One row of ``history.json``: the epoch, its metrics (``train_*``, ``val_*``) and how long it took.

    On disk it is one flat JSON object (``epoch``, the metrics, ``seconds``), with no version; in memory it also
    reads as that mapping (``row["val_loss"]``), as the rows did when they were plain dicts.
    """

    FILE = "history.json"

    epoch: int
    metrics: Mapping[str, float]
    seconds: float | None = None

    def to_json(self) -> dict[str, float]:
        """The flat row, as ``history.json`` and ``history.csv`` hold it."""
        tail = {} if self.seconds is None else {"seconds": self.seconds}
        return {"epoch": self.epoch, **self.metrics, **tail}

    @classmethod
    def from_json(cls, data: object, *, where: str | None = None) -> EpochRecord:
        """A row as ``to_json`` wrote it (any metric names; ``seconds`` may be missing)."""
        where = where or cls.FILE
        if not isinstance(data, dict) or "epoch" not in data:
            raise RunError(f"{where}: expected an epoch's row (a JSON object with 'epoch'); the file is damaged")
        metrics = {k: v for k, v in data.items() if k not in ("epoch", "seconds")}
        return cls(epoch=data["epoch"], metrics=metrics, seconds=data.get("seconds"))

    def __getitem__(self, key: str) -> float:
        if key == "epoch":
            return self.epoch
        if key == "seconds" and self.seconds is not None:
            return self.seconds
        return self.metrics[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.metrics) + 1 + (self.seconds is not None)
