"""Optuna parameter importances of a study, opened through the tuning stage's reader."""

from __future__ import annotations

from aerotune.errors import first_line
from aerotune.tune.records import TuneRun


def load_importances(run: TuneRun) -> tuple[dict[str, float] | None, str]:
    """Optuna parameter importances of the study, or ``(None, why not)``."""
    import optuna

    from aerotune.tune.export import load_run_study

    complete = [t for t in run.trials if t.state == "COMPLETE"]
    if len(complete) < 3:
        return None, f"Parameter importances need at least 3 complete trials; this study has {len(complete)}."
    try:
        opened, _ = load_run_study(run.path)
        try:
            # PED-ANOVA (Optuna 5's default): deterministic, fast, and meaningful for a few dozen trials.
            values = optuna.importance.get_param_importances(
                opened.study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
        finally:
            opened.close()
    except Exception as exc:  # noqa: BLE001 - importances are optional; the report says why they are missing
        return None, f"Parameter importances are not shown: the study could not be analysed ({first_line(exc)})."
    if not values:
        return None, "Parameter importances are not shown: the study has no varying parameter."
    return {k: float(v) for k, v in values.items()}, ""
