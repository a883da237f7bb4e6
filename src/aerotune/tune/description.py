"""The study description (``study.json``) made from ``TuneSettings``, and the check that a resumed study matches."""

from __future__ import annotations

from pathlib import Path

from aerotune.errors import AerotuneError, RunError, first_line
from aerotune.records import JSONDict
from aerotune.tune.records import StudyRecord
from aerotune.tune.settings import TuneSettings, has_default_trial
from aerotune.tune.space_checks import resolve_baseline
from aerotune.tune.storage import redact


def describe(settings: TuneSettings, cache_root: Path) -> StudyRecord:
    """The description of the study ``settings`` ask for (the cache folder may still change)."""
    space = settings.resolved_space
    baseline = resolve_baseline(settings.baseline, space, settings.config) if settings.baseline is not None else None
    # trial 1: the base config's own values of the searched settings, i.e. the default recipe untuned
    default = resolve_baseline({}, space, settings.config) if has_default_trial(settings) else None
    return StudyRecord(
        study_name=settings.name,
        storage=redact(settings.storage) if settings.storage else str(Path(settings.out).resolve() / "journal.log"),
        direction=settings.resolved_direction,
        metric=settings.metric,
        sampler=settings.sampler,
        seed=settings.seed,
        startup_trials=settings.startup_trials,
        sampler_scope=settings.sampler_scope,
        pruner=settings.pruner,
        min_resource=settings.min_resource,
        max_resource=settings.config.train.epochs,
        reduction_factor=settings.reduction_factor,
        space=space.to_dict(),
        base_config=settings.config.to_dict(),
        cache=str(cache_root.resolve()),
        baseline_values=baseline,
        default_values=default,
        heartbeat=settings.heartbeat,
    )


def first_difference(a: JSONDict, b: JSONDict) -> str:
    """The first key whose value differs between two fingerprints (for the message)."""
    for k in [*a, *(k for k in b if k not in a)]:
        if a.get(k) != b.get(k):
            return k
    return "?"


def read_earlier(out: Path) -> StudyRecord | None:
    """The study description of an earlier run in ``out``, or None for a new one."""
    path = out / StudyRecord.FILE
    if not path.is_file():
        return None
    fix = "choose a new --out"
    try:
        old = StudyRecord.read(path, fix=fix)
        old.fingerprint()
    except (AerotuneError, KeyError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: the study description is unreadable ({first_line(exc)}); {fix}") from None
    return old
