"""Checkpoints: state dicts that carry their own config and palette, saved atomically and loaded safely.

A checkpoint is a plain dict (tensors, numbers, strings, lists) so that ``torch.load(..., weights_only=True)``
reads it: a file that would run code when unpickled is refused, never executed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from aerotune.config import RunConfig
from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands
from aerotune.errors import AerotuneError, OutputError, RunError, first_line
from aerotune.files import os_errors
from aerotune.model.unet import UNet, build_model

#: Keys every aerotune checkpoint has.
REQUIRED_KEYS = ("model", "config", "palette")


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
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


def model_from_checkpoint(ckpt: dict[str, Any], *, where: str | Path = "checkpoint") -> tuple[UNet, RunConfig, Palette]:
    """Rebuild the network, its config and palette from a loaded checkpoint, in eval mode."""
    try:
        config = RunConfig.from_dict(ckpt["config"], where=f"{where}: config")
        palette = Palette.from_dict(ckpt["palette"], where=f"{where}: palette")
    except AerotuneError as exc:
        raise RunError(f"{where}: checkpoint settings are unreadable ({exc}); train again") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise RunError(f"{where}: checkpoint settings are unreadable ({first_line(exc)}); train again") from None
    try:
        in_channels = Bands.from_dict(ckpt.get("bands")).count
    except (TypeError, ValueError, AttributeError):
        raise RunError(f"{where}: the checkpoint's 'bands' entry is unreadable; train again") from None
    model = build_model(config.model, num_classes=palette.num_classes, in_channels=in_channels)
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
