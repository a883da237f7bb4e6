"""Resuming a run folder: the checkpoint to resume from, checked against the settings asked for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aerotune.config import RunConfig, keys_with_role
from aerotune.errors import AerotuneError, RunError
from aerotune.model.checkpoint import load_checkpoint


def check_resume(out: Path, config: RunConfig) -> Mapping[str, Any] | None:
    """The checkpoint to resume ``out`` from (None for a fresh run), checked against ``config``.

    Called before anything is written: a run folder that holds a run with other settings is refused whole.
    """
    last = Path(out) / "checkpoints" / "last.pt"
    if not last.is_file():
        return None
    state = load_checkpoint(last)
    try:
        old = RunConfig.from_dict(state["config"], where=str(last))
    except AerotuneError as exc:
        raise RunError(f"{last}: cannot read the run's settings ({exc}); choose a new --out") from None
    mine, theirs = _without_epochs(config), _without_epochs(old)
    if mine != theirs:
        key = next(f"{s}.{k}" for s in mine for k in mine[s] if mine[s][k] != theirs.get(s, {}).get(k))
        raise RunError(
            f"{out}: run folder holds a run with a different config ({key} = {_get(theirs, key)!r}, "
            f"not {_get(mine, key)!r}); repeat its settings to resume it, or choose a new --out"
        )
    if "split" not in state:
        raise RunError(f"{last}: checkpoint has no split; it was not written by aerotune train; choose a new --out")
    return state


def _get(d: Mapping[str, Mapping[str, object]], key: str) -> object:
    """The value of ``section.name`` in a config's dict."""
    section, name = key.split(".", 1)
    return d.get(section, {}).get(name)


def _without_epochs(config: RunConfig) -> dict[str, dict[str, object]]:
    """The settings a resumed run must repeat: all but its length and how it runs (progress bars, threads)."""
    d = config.to_dict()
    for key in keys_with_role("resource", "runtime"):
        section, name = key.split(".", 1)
        if key != "train.device":  # a run resumes on the device it started on
            d[section].pop(name)
    return d
