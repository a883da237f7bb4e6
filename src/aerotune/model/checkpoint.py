"""Checkpoints: state dicts that carry their own config and palette, saved atomically and loaded safely.

A checkpoint is a plain dict (tensors, numbers, strings, lists) so that ``torch.load(..., weights_only=True)``
reads it: a file that would run code when unpickled is refused, never executed. What it holds besides the
state dicts is the record :class:`Checkpoint`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aerotune.config import RunConfig
from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands
from aerotune.data.splits import Split
from aerotune.errors import AerotuneError, OutputError, RunError, first_line
from aerotune.files import os_errors
from aerotune.history import EpochRecord
from aerotune.model.unet import UNet, build_model
from aerotune.records import Record

#: Keys every aerotune checkpoint has.
REQUIRED_KEYS = ("model", "config", "palette")


@dataclass(frozen=True)
class Checkpoint(Record):
    """What a checkpoint stores besides its state dicts (``model``, and ``optimizer`` in ``last.pt``).

    Written as the keys of the dict ``torch.save`` stores (no version key, as before records); the fields
    a checkpoint written by ``aerotune train`` always has are ``config``, ``palette`` and, for resuming, the rest.
    """

    FILE = "checkpoint"

    config: RunConfig
    palette: Palette
    bands: Bands  # the input: band count, GeoTIFF bands and scaling, for predict
    epoch: int = 0
    split: Split | None = None
    history: tuple[EpochRecord, ...] = ()
    best_val_loss: float | None = None
    best_epoch: int | None = None
    norm_stats: tuple[list[float], list[float]] | None = None
    schedule_epochs: int | None = None  # the learning-rate schedule's length, kept when a run is continued

    def to_state(self, model: Mapping[str, object], optimizer: Mapping[str, object] | None) -> dict[str, object]:
        """The dict ``torch.save`` stores: the state dicts (``optimizer`` left out when None) and this record."""
        return {
            "model": model,
            **({} if optimizer is None else {"optimizer": optimizer}),
            "epoch": self.epoch,
            "config": self.config.to_dict(),
            "palette": self.palette.to_dict(),
            "bands": self.bands.to_dict(),
            "split": self.split.to_dict() if self.split is not None else None,
            "history": [row.to_json() for row in self.history],
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "norm_stats": list(self.norm_stats) if self.norm_stats else None,
            "schedule_epochs": self.schedule_epochs,
        }

    @classmethod
    def from_json(cls, data: object, *, where: str | None = None) -> Checkpoint:
        """The record in a loaded checkpoint (:func:`load_checkpoint`); unreadable settings are a ``RunError``."""
        where = where or cls.FILE
        if not isinstance(data, Mapping):
            raise RunError(f"{where}: not an aerotune checkpoint; train again")
        config, palette, bands = _settings(data, where)
        split = data.get("split")
        stats = data.get("norm_stats")
        return cls(
            config,
            palette,
            bands,
            epoch=int(data.get("epoch") or 0),
            split=Split.from_dict(split) if split is not None else None,
            history=tuple(EpochRecord.from_json(row, where=f"{where}: history") for row in data.get("history") or ()),
            best_val_loss=data.get("best_val_loss"),
            best_epoch=data.get("best_epoch"),
            norm_stats=(list(stats[0]), list(stats[1])) if stats else None,
            schedule_epochs=data.get("schedule_epochs"),
        )


def _settings(ckpt: Mapping[str, Any], where: str | Path) -> tuple[RunConfig, Palette, Bands]:
    """A checkpoint's config, palette and input bands; unreadable ones are a ``RunError`` that says train again."""
    try:
        config = RunConfig.from_dict(ckpt["config"], where=f"{where}: config")
        palette = Palette.from_dict(ckpt["palette"], where=f"{where}: palette")
    except AerotuneError as exc:
        raise RunError(f"{where}: checkpoint settings are unreadable ({exc}); train again") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{where}: checkpoint settings are unreadable ({first_line(exc)}); train again") from None
    try:
        bands = Bands.from_dict(ckpt.get("bands"))
    except (TypeError, ValueError, AttributeError):
        raise RunError(f"{where}: the checkpoint's 'bands' entry is unreadable; train again") from None
    return config, palette, bands


def save_checkpoint(obj: Mapping[str, object], path: Path) -> None:
    """Write ``obj`` next to ``path`` and rename it into place, so a reader never sees half a checkpoint."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with os_errors(path, "write the checkpoint"):
            torch.save(obj, tmp)
            os.replace(tmp, path)
    except RuntimeError as exc:  # torch's zip writer reports a failed write (full disk, ulimit -f) this way
        tmp.unlink(missing_ok=True)
        raise OutputError(
            f"{path}: cannot write the checkpoint (the write failed: {first_line(exc, 120)}); the disk "
            "may be full or a file size limit (ulimit -f) reached; free some space or choose "
            "another disk"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an aerotune checkpoint safely (``weights_only=True``); anything else is a one-line ``RunError``."""
    path = Path(path)
    fix = "pass a checkpoint written by aerotune (RUN/checkpoints/best.pt) or train again"
    if not path.is_file():
        raise RunError(f"{path}: checkpoint not found; {fix}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols on its way to refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types; all mean a bad file
        text = str(exc)
        if "GLOBAL" in text or "Unsupported global" in text:
            reason = "it holds Python objects that could run code when loaded, so it is refused"
        elif "Weights only load failed" in text:
            reason = "not a PyTorch checkpoint: its contents are not tensors and plain values"
        else:
            reason = f"not a readable PyTorch file: {first_line(exc, 160)}"
        raise RunError(f"{path}: cannot load checkpoint ({reason}); {fix}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        have = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise RunError(
            f"{path}: a PyTorch file but not an aerotune checkpoint (it lacks the keys "
            f"{', '.join(REQUIRED_KEYS)}; found {have}); {fix}"
        )
    return ckpt


def model_from_checkpoint(
    ckpt: Mapping[str, Any], *, where: str | Path = "checkpoint"
) -> tuple[UNet, RunConfig, Palette]:
    """Rebuild the network, its config and palette from a loaded checkpoint, in eval mode."""
    config, palette, bands = _settings(ckpt, where)
    model = build_model(config.model, num_classes=palette.num_classes, in_channels=bands.count)
    state = ckpt["model"]
    if not isinstance(state, dict):
        raise RunError(f"{where}: the checkpoint's 'model' entry is not a state dict; train again")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(
            f"{where}: the weights do not fit the network its config describes "
            f"({first_line(exc, 200)}); the file was changed or comes from another architecture or "
            "class count; use the checkpoint of the run you mean"
        ) from None
    model.eval()
    return model, config, palette
