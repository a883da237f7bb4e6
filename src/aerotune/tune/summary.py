"""What a finished (or interrupted) study did, in a few lines: printed by ``aerotune tune`` and ``aerotune demo``."""

from __future__ import annotations

from typing import Any

from aerotune.reference import REFERENCE_EPOCHS


def summary_lines(result) -> list[str]:
    """What a finished (or interrupted) study did, as printed by ``aerotune tune`` and ``aerotune demo``."""
    s = result.summary
    c = result.counts
    extra = ""
    if c["stopped_by_budget"]:
        extra += f", {c['stopped_by_budget']} stopped by the epoch budget"
    if c["running"]:
        extra += f", {c['running']} running"
    if c["waiting"]:
        extra += f", {c['waiting']} waiting"
    lines = [
        f"{result.run_dir}: study {result.study_name!r}: {c['trials']} trial(s): {c['complete']} complete, "
        f"{c['pruned']} pruned, {c['failed']} failed ({c['diverged']} diverged, {c['out_of_memory']} out of "
        f"memory, {c['stale']} stale){extra}",
        f"  epochs spent: {result.epochs_spent} (the reference spent {REFERENCE_EPOCHS:,})",
    ]
    if result.best_trial is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in result.best_params.items())
        lines.append(f"  best {s.metric}: {result.best_value:.4f} (trial {result.best_trial}: {params})")
    else:
        lines.append("  no trial completed yet")
    if result.baseline_value is not None:
        lines.append(f"  baseline (trial {result.baseline_trial}) {s.metric}: {result.baseline_value:.4f}")
    lines.append(
        f"  results: {result.run_dir / 'summary.json'}, trials.csv, trials.json, best_params.json"
        + (", best_checkpoint.pt" if s.best_checkpoint else "")
    )
    return lines


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
