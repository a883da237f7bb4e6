"""What a user can act on, from replayed studies: the kept model's regret, the chance of ending within the noise
of the best configuration, their bootstrap intervals, and the noise calibration against real studies.

Pure functions over plain numbers (no Optuna, no torch), so tests can check them on hand-made tables:

* **kept model**: at a point ``b`` of the budget, the configuration of the best COMPLETE trial so far (the one
  ``aerotune tune`` writes to ``best_params.json``); its **regret** is that configuration's quality minus the best
  configuration's -- not the noisy minimum the study saw. A configuration's quality is what a fresh training of it
  hands the user: the validation loss of its best epoch (the one ``best.pt`` keeps), averaged over its recorded
  seeds (``replay.load_table``);
* **learns**: a configuration whose quality is clearly below the loss of predicting at chance (the best constant
  prediction: the training set's class frequencies at every pixel, ``record.chance_loss``): by more than the seed
  noise;
* **epsilon**: the pooled standard deviation between seeds of a run's best loss, over configurations that learn;
* **bootstrap**: a percentile interval over the replayed seeds (each seed one independent study).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

FRACTIONS = (0.1, 0.2, 0.5, 1.0)


# -- the table ---------------------------------------------------------------------------------------------------


def pooled_sd(groups: Sequence[np.ndarray]) -> np.ndarray:
    """Pooled, bias-corrected standard deviation per column over groups of runs (``(seeds, epochs)`` arrays with at
    least 2 rows): sqrt(sum of squared deviations from each group's mean / sum of (n - 1))."""
    groups = [np.asarray(g, float) for g in groups if len(g) >= 2]
    if not groups:
        return np.zeros(0)
    ss = sum(((g - g.mean(0)) ** 2).sum(0) for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    return np.sqrt(ss / dof)


def learns(mean_final: float, chance: float) -> bool:
    """Whether a configuration learns: its quality (mean best loss) is below ``chance`` (a threshold at chance)."""
    return bool(math.isfinite(mean_final) and mean_final < chance)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (ties by average rank); NaN with fewer than 3 points."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3:
        return math.nan
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def early_ranking(
    curves: np.ndarray, final: np.ndarray, keep: np.ndarray, epochs: Sequence[int] = (1, 3, 9)
) -> dict[str, Any]:
    """Rank correlation of the loss after each of ``epochs`` (columns of ``curves``) with ``final`` (each
    configuration's final figure: its run's best loss), over the rows ``keep`` marks (configurations that learn),
    with how many configurations it is over."""
    keep = np.asarray(keep, bool)
    curves, final = np.asarray(curves, float)[keep], np.asarray(final, float)[keep]
    out: dict[str, Any] = {"configs": int(len(curves))}
    for e in epochs:
        if e <= curves.shape[1]:
            out[f"epoch_{e}"] = round(spearman(curves[:, e - 1], final), 3)
    return out


# -- one replayed study ------------------------------------------------------------------------------------------


def kept_config(trials: Sequence[dict[str, Any]], b: int) -> tuple[int | None, bool]:
    """The configuration a study would hand the user after ``b`` epochs of its budget: the best COMPLETE trial
    among those that finished by epoch tick ``b`` (ties: the earlier trial). If none has finished, the trial with
    the lowest loss reported by then (its checkpoint exists, though ``aerotune tune`` would name no best trial);
    the flag says whether a complete trial was found. ``trials``: ``{"config", "first", "values", "complete"}``
    with ticks ``first .. first + len(values) - 1`` (the replay trains one trial at a time)."""
    best, best_v, fallback, fallback_v = None, math.inf, None, math.inf
    for t in trials:
        first, values = int(t["first"]), t["values"]
        if not values or first > b:
            continue
        last = first + len(values) - 1
        if t["complete"] and last <= b:
            v = min(values)
            if v < best_v:
                best, best_v = t["config"], v
        seen = values[: b - first + 1]
        if seen and min(seen) < fallback_v:
            fallback, fallback_v = t["config"], min(seen)
    return (best, True) if best is not None else (fallback, False)


def regret(config: int | None, quality: np.ndarray) -> float:
    """Quality of ``config`` minus the best configuration's (inf when the study kept nothing)."""
    if config is None:
        return math.inf
    return float(quality[config] - np.min(quality))


# -- over seeds --------------------------------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float],
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    level: float = 0.95,
    n: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``stat`` of ``values`` and its percentile bootstrap interval (resampling the values, i.e. the seeds)."""
    x = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    boots = np.array([stat(x[rng.integers(0, len(x), len(x))]) for _ in range(n)])
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(stat(x)), float(lo), float(hi)


def interval(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, **kw: Any) -> dict[str, float]:
    est, lo, hi = bootstrap_ci(values, stat, **kw)
    return {"value": round(est, 5), "ci95": [round(lo, 5), round(hi, 5)]}


def saving_factor(
    method: np.ndarray, yardstick: float, fractions: Sequence[float], *, lower_is_better: bool = True
) -> float | None:
    """The smallest fraction of the budget at which the method's mean (over seeds, ``method[:, i]`` at
    ``fractions[i]``) is at least as good as ``yardstick`` (random search's at its full budget); None if never."""
    mean = np.mean(method, axis=0)
    for f, m in zip(fractions, mean):
        if (m <= yardstick + 1e-12) if lower_is_better else (m >= yardstick - 1e-12):
            return float(f)
    return None


def saving_interval(
    method: np.ndarray,
    yard: np.ndarray,
    fractions: Sequence[float],
    *,
    lower_is_better: bool = True,
    n: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The fraction of the budget at which the method matches random search's full-budget mean, with a bootstrap
    interval over seeds (``method``: seeds x fractions; ``yard``: random search's value per seed at its full
    budget; both resampled independently). None (in the interval: 1.0+) where it never matches."""
    method, yard = np.asarray(method, float), np.asarray(yard, float)
    rng = np.random.default_rng(seed)
    est = saving_factor(method, float(np.mean(yard)), fractions, lower_is_better=lower_is_better)
    boots = []
    for _ in range(n):
        m = method[rng.integers(0, len(method), len(method))]
        y = yard[rng.integers(0, len(yard), len(yard))]
        f = saving_factor(m, float(np.mean(y)), fractions, lower_is_better=lower_is_better)
        boots.append(math.inf if f is None else f)
    lo, hi = np.quantile(boots, 0.025, method="lower"), np.quantile(boots, 0.975, method="higher")
    return {
        "fraction": est,
        "ci95": [None if math.isinf(lo) else float(lo), None if math.isinf(hi) else float(hi)],
        "factor": None if est is None else round(1 / est, 2),
    }


# -- calibration -------------------------------------------------------------------------------------------------


def percentile(replayed: Sequence[float], value: float) -> float:
    """Where ``value`` lies among ``replayed``: the share below it, ties counted half (0.5: the middle)."""
    x = np.asarray(replayed, float)
    return float(((x < value).sum() + 0.5 * (x == value).sum()) / len(x))


def calibrate(
    replay: Callable[[float], dict[str, Sequence[float]]],
    real: dict[str, Sequence[float]],
    scales: Sequence[float],
) -> dict[str, Any]:
    """The noise scale under which real outcomes land in the middle of the replay's distribution.

    ``replay(scale)`` gives, per group (a method), the replayed outcomes over many seeds; ``real[group]`` the real
    studies' outcomes. For each scale the mean percentile of the real outcomes among the replayed ones is computed;
    the chosen scale is the one whose mean percentile is nearest 0.5 (linear interpolation between the two grid
    scales that bracket 0.5, when the mean percentile crosses it)."""
    table = []
    for s in scales:
        rep = replay(s)
        pct = [percentile(rep[g], v) for g, vs in real.items() for v in vs]
        table.append({"scale": float(s), "mean_percentile": round(float(np.mean(pct)), 3), "percentiles": pct})
    best = min(table, key=lambda r: (abs(r["mean_percentile"] - 0.5), r["scale"]))
    chosen = best["scale"]
    for a, b in zip(table, table[1:]):  # replayed outcomes fall with more noise: the percentile rises with scale
        pa, pb = a["mean_percentile"], b["mean_percentile"]
        if (pa - 0.5) * (pb - 0.5) < 0:
            chosen = a["scale"] + (0.5 - pa) * (b["scale"] - a["scale"]) / (pb - pa)
            break
    return {"scale": round(float(chosen), 3), "grid": table}
