"""``study.json``: what a study is (its settings, space and base config), and what must match to join it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aerotune.errors import RunError, first_line
from aerotune.reference import REFERENCE_EPOCHS
from aerotune.tune.settings import TuneSettings
from aerotune.tune.space_checks import resolve_baseline
from aerotune.tune.storage import redact

#: Settings that say how a worker runs, not what it trains: they may differ between workers.
RUNTIME_KEYS = ("threads", "progress", "device")


def fingerprint(study: dict[str, Any]) -> dict[str, Any]:
    """What must match for a worker to join or resume a study."""
    base = json.loads(json.dumps(study["base_config"]))
    for k in RUNTIME_KEYS:
        base["train"].pop(k, None)
    keys = ("space", "metric", "direction", "sampler", "seed", "min_resource", "max_resource", "reduction_factor",
            "startup_trials", "baseline_values")
    found = {**{k: study.get(k) for k in keys}, "base_config": base}
    if study.get("sampler_scope", "bracket") != "bracket":  # studies made before the option keep their print
        found["sampler_scope"] = study["sampler_scope"]
    return found


def describe(settings: TuneSettings, cache_root: Path) -> dict[str, Any]:
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


def first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    for k in [*a, *(k for k in b if k not in a)]:
        if a.get(k) != b.get(k):
            return k
    return "?"


def read_study(out: Path) -> dict[str, Any] | None:
    """The study description of an earlier run in ``out``, or None for a new one."""
    path = out / "study.json"
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
        fingerprint(old)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: the study description is unreadable ({first_line(exc)}); choose a new --out") from None
    return old

