"""A study's results: trials.json and trials.csv, best_params.json, best_checkpoint.pt, summary.json."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

from aerotune.errors import RunError
from aerotune.files import copy_file, write_json, write_text
from aerotune.reference import REFERENCE_EPOCHS
from aerotune.tune.optuna_study import BASELINE_KEY, EPOCHS_KEY, OpenStudy, open_study, retry_of
from aerotune.tune.records import StudyRecord, StudySummary, TrialRecord, read_study
from aerotune.tune.settings import TuneResult
from aerotune.tune.storage import JOURNAL_FILE

log = logging.getLogger(__name__)


def load_run_study(out: str | Path, storage: str | None = None) -> tuple[OpenStudy, StudyRecord]:
    """Open the Optuna study of a tuning run folder (for exports, dashboards and reports); close it after use."""
    out = Path(out)
    desc = read_study(out)
    url = storage
    if url is None and "://" in desc.storage:
        if "***" in desc.storage:
            raise RunError(f"{out}: the study is in {desc.storage}; give its full URL with --storage")
        url = desc.storage
    elif url is None:  # the journal: trust the run folder over a path recorded before it was moved
        url = str(out / JOURNAL_FILE)
        if not (out / JOURNAL_FILE).is_file():
            raise RunError(
                f"{out / JOURNAL_FILE}: journal file not found; restore it from a copy of the run folder "
                "(it holds the trials of the study)"
            )
    return open_study(desc, out, url, heartbeat=int(desc.heartbeat)), desc


def trial_records(study, desc: StudyRecord) -> list[TrialRecord]:
    """Every trial of the study (the rows of trials.json / trials.csv)."""
    from aerotune.tune.plan import bracket_of, bracket_shares, n_brackets

    trials = study.get_trials(deepcopy=False)
    retried = {retry_of(t): t.number for t in trials if retry_of(t) is not None}
    shares = bracket_shares(
        n_brackets(desc.min_resource, desc.max_resource, desc.reduction_factor), desc.reduction_factor
    )
    rows = []
    for t in trials:
        ua = t.user_attrs
        state = t.state.name
        status = ua.get("status")
        reason = ua.get("reason", "")
        if state == "FAIL" and status is None:
            status = "stale heartbeat" if t.number in retried else "failed"
            reason = "its worker stopped (no heartbeat)" if t.number in retried else "no reason recorded"
        if t.number in retried:
            reason = (reason + "; " if reason else "") + f"retried as trial {retried[t.number]}"
        if status is None:
            status = state.lower()
        values = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        duration = None
        if t.datetime_start is not None and t.datetime_complete is not None:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            TrialRecord(
                **{
                    "number": t.number,
                    "state": state,
                    "status": status,
                    "params": ua.get("params", {}),
                    "epochs": max(t.intermediate_values) if t.intermediate_values else 0,
                    "values": values,
                    "value": t.value if state == "COMPLETE" else None,
                    "duration_s": duration,
                    "reason": reason,
                    "baseline": bool(ua.get("baseline")),
                    "default_recipe": bool(ua.get("default_recipe")),
                    "bracket": bracket_of(desc.study_name, t.number, shares),
                    "retry_of": retry_of(t),
                    "resumed_from": ua.get("resumed_from"),
                    "epoch_ticks": ua.get("epoch_ticks", []),
                    "run_dir": ua.get("run_dir"),
                    "worker": ua.get("worker"),
                    "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
                    "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
                }
            )
        )
    return rows


def export_study(out: str | Path, study=None, *, wall_seconds: float | None = None) -> TuneResult:
    """Write trials.csv/json, best_params.json, best_checkpoint.pt and summary.json; return the summary."""
    out = Path(out)
    desc = read_study(out)
    opened = None
    if study is None:
        opened, desc = load_run_study(out)
        study = opened.study
    try:
        rows = trial_records(study, desc)
        epochs_spent = int(study.user_attrs.get(EPOCHS_KEY, 0))
        baseline_number = study.user_attrs.get(BASELINE_KEY, desc.baseline_trial)
    finally:
        if opened is not None:
            opened.close()
    write_json(out / "trials.json", [r.to_json() for r in rows])
    write_text(out / "trials.csv", _trials_csv(rows))

    complete = [r for r in rows if r.state == "COMPLETE"]
    best = (max if desc.maximize else min)(complete, key=lambda r: r.value) if complete else None
    baseline_row = next((r for r in rows if r.baseline and r.state == "COMPLETE"), None)
    if baseline_row is None:
        baseline_row = next((r for r in rows if r.number == baseline_number), None)
    checkpoint = None
    if best is not None:
        src = out / "trials" / f"{best.number:04d}" / "checkpoints" / "best.pt"
        if src.is_file():
            copy_file(src, out / "best_checkpoint.pt")
            checkpoint = "best_checkpoint.pt"
        else:
            log.warning("the best trial's checkpoint %s is not on this machine", src)
        write_json(out / "best_params.json", best.params)
    summary = StudySummary(
        study_name=desc.study_name,
        metric=desc.metric,
        direction=desc.direction,
        epochs_spent=epochs_spent,
        epochs_completed=sum(r.epochs for r in rows),
        reference_epochs=REFERENCE_EPOCHS,
        counts=_counts(rows),
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        best_params=best.params if best else {},
        best_checkpoint=checkpoint,
        baseline_trial=baseline_row.number if baseline_row else None,
        baseline_value=baseline_row.value if baseline_row else None,
        baseline_params=baseline_row.params if baseline_row else None,
        wall_seconds=round(wall_seconds, 1) if wall_seconds is not None else None,
    )
    summary.write(out / StudySummary.FILE)
    return TuneResult(out, summary)


def _counts(rows: list[TrialRecord]) -> dict[str, int]:
    def count(pred: Callable[[TrialRecord], bool]) -> int:
        return sum(1 for r in rows if pred(r))

    return {
        "trials": len(rows),
        "complete": count(lambda r: r.state == "COMPLETE"),
        "pruned": count(lambda r: r.state == "PRUNED" and r.status != "budget"),
        "stopped_by_budget": count(lambda r: r.status == "budget"),
        "failed": count(lambda r: r.state == "FAIL"),
        "diverged": count(lambda r: r.status == "diverged"),
        "out_of_memory": count(lambda r: r.status == "out of memory"),
        "stale": count(lambda r: r.status == "stale heartbeat"),
        "running": count(lambda r: r.state == "RUNNING"),
        "waiting": count(lambda r: r.state == "WAITING"),
    }


def _trials_csv(rows: list[TrialRecord]) -> str:
    keys = sorted({k for r in rows for k in r.params})
    fields = [
        "number",
        "state",
        "status",
        "epochs",
        "value",
        "duration_s",
        "baseline",
        "bracket",
        "retry_of",
        *[f"param:{k}" for k in keys],
        "values",
        "reason",
        "run_dir",
    ]
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=fields)
    w.writeheader()
    for r in rows:
        row = {k: getattr(r, k) for k in fields if not k.startswith("param:")}
        row["values"] = json.dumps(r.values)
        row.update({f"param:{k}": r.params.get(k) for k in keys})
        w.writerow(row)
    return text.getvalue()
