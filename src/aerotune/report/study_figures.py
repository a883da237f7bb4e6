"""The study's figures: budget, best value so far, every trial's curve, parameter importances (see ``figures.py``)."""

from __future__ import annotations

import math

import numpy as np

from aerotune.report.figures import BASELINE, MUTED, TUNED, WIDE, integer_x, new_figure
from aerotune.report.records import TrialRow

#: How a kind of trial is drawn: (colour, line style, end marker, legend label).
TRIAL_KINDS = {
    "COMPLETE": ("#5E8FBF", "-", "o", "complete"),
    "PRUNED": (MUTED, "-", "x", "pruned (× where HyperBand stopped it)"),
    "budget": (MUTED, ":", "|", "stopped by the study's epoch budget"),
    "FAIL": ("#C0392B", ":", "v", "failed"),
    "RUNNING": ("#5E8FBF", "--", ">", "running"),
}


def best_so_far_figure(trials: list[TrialRow], *, direction: str = "minimize", metric: str = "val_loss"):
    """Best value so far against the epochs spent (trials in order of their number); each finished trial a dot."""
    fig = new_figure(WIDE, 3.4)
    ax = fig.add_subplot()
    spent = 0
    xs, best, pts, pruned_pts = [0], [math.nan], [], []
    current = math.nan
    better = (lambda a, b: a < b) if direction == "minimize" else (lambda a, b: a > b)
    for t in sorted(trials, key=lambda t: t.number):
        spent += int(t.epochs or 0)
        v = t.value
        if isinstance(v, (int, float)) and math.isfinite(v):
            if t.state == "COMPLETE":
                pts.append((spent, v))
                if not math.isfinite(current) or better(v, current):
                    current = v
            else:
                pruned_pts.append((spent, v))
        xs.append(spent)
        best.append(current)
    ax.step(xs, best, where="post", color=TUNED, label="best value so far")
    if pts:
        ax.scatter(*zip(*pts), s=16, color=TUNED, alpha=0.55, label="complete trial", zorder=3)
    if pruned_pts:
        ax.scatter(*zip(*pruned_pts), s=18, marker="x", color=MUTED, label="pruned trial (last value)", zorder=3)
    ax.set_xlabel("epochs spent (all trials, cumulative)")
    ax.set_ylabel(metric)
    ax.set_title("Best value against the budget spent")
    ax.legend(loc="best")
    return fig


def budget_figure(spent: int, reference: int):
    """Epochs spent by this study against the reference's HPO."""
    fig = new_figure(WIDE, 1.5)
    ax = fig.add_subplot()
    ax.barh([1, 0], [reference, spent], color=[MUTED, TUNED], height=0.6)
    ax.set_yticks([1, 0], ["reference (NNI)", "this study"])
    for y, v in ((1, reference), (0, spent)):
        share = f" ({v / reference:.1%} of the reference)" if y == 0 else ""
        ax.text(v + max(reference, spent) * 0.01, y, f"{v:,} epochs{share}", va="center", fontsize=8)
    ax.set_xlim(0, max(reference, spent) * 1.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("training epochs, all trials")
    ax.set_title("Tuning budget")
    return fig


def trial_curves_figure(trials: list[TrialRow], *, best: int | None, baseline: int | None, metric: str = "val_loss"):
    """Every trial's per-epoch metric; pruned trials in grey with a cross where HyperBand stopped them."""
    fig = new_figure(WIDE, 3.8)
    ax = fig.add_subplot()
    seen: set[str] = set()
    finite = []
    for t in sorted(trials, key=lambda t: t.number):
        if not t.curve:
            continue
        finite += [v for v in t.curve if v is not None and math.isfinite(v)]
        if t.number not in (best, baseline):  # those two are drawn last, on top
            _draw_trial(ax, t, seen)
    for number, color, label in ((baseline, BASELINE, "baseline trial"), (best, TUNED, "best trial")):
        t = next((t for t in trials if t.number == number), None)
        if t and t.curve:
            ax.plot(
                np.arange(1, len(t.curve) + 1),
                t.curve,
                color=color,
                linewidth=2.2,
                label=f"{label} (#{number})",
                zorder=4,
            )
    if finite:
        ax.set_ylim(*_curve_limits(finite))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves of every trial")
    ax.legend(loc="upper right")
    integer_x(ax)
    return fig


def _draw_trial(ax, t: TrialRow, seen: set[str]) -> None:
    """One trial's curve in the style of its kind; the first of each kind labelled for the legend."""
    kind = "budget" if t.status == "budget" else t.state
    color, style, marker, label = TRIAL_KINDS.get(kind, (MUTED, "-", ".", str(kind).lower()))
    ax.plot(
        np.arange(1, len(t.curve) + 1),
        t.curve,
        color=color,
        linestyle=style,
        linewidth=0.9,
        alpha=0.7,
        marker=marker,
        markevery=[-1],
        markersize=5,
        label=None if kind in seen else label,
    )
    seen.add(kind)


def _curve_limits(finite: list[float]) -> tuple[float, float]:
    """The y range of the curves: a diverging trial would flatten every other curve, so then clip to their bulk."""
    lo, q, hi = np.percentile(finite, [0, 90, 100])
    if hi - lo > 3 * (q - lo) > 0:
        hi = q + (q - lo) * 0.5
    pad = (hi - lo) * 0.06 or 0.05
    return lo - pad, hi + pad


def importance_figure(importances: dict[str, float]):
    """Optuna parameter importances as horizontal bars."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = new_figure(WIDE, 0.5 + 0.42 * len(items))
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [v for _, v in items], color=TUNED, height=0.6)
    ax.set_yticks(range(len(items)), [k for k, _ in items])
    for i, (_, v) in enumerate(items):
        ax.text(v + 0.01, i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("importance (PED-ANOVA, sums to 1)")
    ax.set_title("Parameter importances")
    return fig
