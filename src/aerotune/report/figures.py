"""The report's figures: functions that return a matplotlib ``Figure`` (never shown, never global state).

One style for all of them: :data:`STYLE` applied with :func:`style`, the tuned model always in
:data:`TUNED`, the baseline always in :data:`BASELINE`, masks always in the dataset's own palette.
Figures are built with ``matplotlib.figure.Figure`` directly, so no pyplot backend or global figure
registry is involved.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

TUNED = "#0F6CBD"  # blue
BASELINE = "#D9731A"  # orange
MUTED = "#8A8F98"  # pruned trials, reference lines
INK = "#1F2328"
#: Width of one-panel figures in inches; the HTML shows figures at 96 px per inch, so text matches the page.
WIDE = 10.5
GRID = "#D8DCE1"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.edgecolor": "#9AA0A6",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "text.color": INK,
}

#: Pixels drawn in this colour carry the ignore label (unknown mask colours).
IGNORED_COLOR = (0, 0, 0)


#: Resolution of the figure PNGs.
FIGURE_DPI = 144


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the report style while figures are built and saved."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def ignored_color(palette) -> tuple[int, int, int]:
    """A neutral colour for ignored pixels that no class uses."""
    for c in (IGNORED_COLOR, (255, 255, 255), (64, 64, 64), (200, 200, 200)):
        if c not in palette.colors:
            return c
    return (1, 1, 1)


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def _outline() -> list:
    """Path effects that draw a thin dark edge under a line, so light palette colours read on white."""
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=2.8, foreground="#3A3F44"), patheffects.Normal()]




def mask_legend(fig, palette, *, ignored: bool, ncol: int | None = None) -> None:
    """A legend of class colours (and the ignored colour) along the bottom of ``fig``."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=_hex(c), edgecolor="#6B7075", linewidth=0.5, label=n)
               for n, c in zip(palette.names, palette.colors)]
    if ignored:
        handles.append(Patch(facecolor=_hex(ignored_color(palette)), edgecolor="#6B7075", linewidth=0.5,
                             label="ignored (unknown colour)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol or len(handles), fontsize=9,
               handlelength=1.4, columnspacing=1.4)


def patches_figure(images: np.ndarray, truths: np.ndarray, tuned: np.ndarray, baseline: np.ndarray | None,
                   palette, *, labels: Sequence[str] = (), groups: int = 2, tuned_label: str = "tuned"):
    """Validation patches as image | ground truth | tuned prediction | baseline prediction.

    ``images`` is ``(n, P, P, 3)`` uint8, the masks ``(n, P, P)`` class ids. Patches are laid out in
    ``groups`` side-by-side blocks so ten of them fit a page.
    """
    n = len(images)
    cols = ["image", "ground truth", f"{tuned_label} prediction"]
    if baseline is not None:
        cols.append("baseline prediction")
    groups = max(1, min(groups, n))
    rows = math.ceil(n / groups)
    k = len(cols)
    cell = 1.45
    fig = _figure(cell * k * groups + 0.35 * (groups - 1), cell * rows + 0.9)
    width_ratios = []
    for g in range(groups):
        width_ratios += [1] * k + ([0.12] if g < groups - 1 else [])
    grid = fig.add_gridspec(rows, len(width_ratios), width_ratios=width_ratios, wspace=0.04, hspace=0.04)
    ign = ignored_color(palette)
    any_ignored = bool((truths == palette.ignore_index).any())
    for i in range(n):
        g, r = divmod(i, rows)
        panels = [images[i], palette.decode(truths[i], ignore_color=ign), palette.decode(tuned[i], ignore_color=ign)]
        if baseline is not None:
            panels.append(palette.decode(baseline[i], ignore_color=ign))
        for j, panel in enumerate(panels):
            ax = fig.add_subplot(grid[r, g * (k + 1) + j])
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if r == 0:
                color = TUNED if j == 2 else BASELINE if j == 3 else INK
                ax.set_title(cols[j], fontsize=9, loc="center", color=color)
            if j == 0 and labels:
                ax.set_ylabel(labels[i], fontsize=7, color="#6B7075", rotation=90, labelpad=2)
    mask_legend(fig, palette, ignored=any_ignored)
    return fig


def loss_figure(tuned: list[dict], baseline: list[dict] | None, *, tuned_best: int | None = None,
                baseline_best: int | None = None, tuned_label: str = "tuned"):
    """Training and validation loss against epochs, the baseline's curves laid over the tuned model's."""
    fig = _figure(WIDE, 3.6)
    ax = fig.add_subplot()
    series = [(tuned_label, tuned, TUNED, tuned_best)]
    if baseline is not None:
        series.append(("baseline", baseline, BASELINE, baseline_best))
    for name, hist, color, best in series:
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h["val_loss"] for h in hist], color=color, label=f"{name} — validation",
                marker="o" if len(ep) < 25 else None, markersize=3)
        ax.plot(ep, [h["train_loss"] for h in hist], color=color, linestyle="--", linewidth=1.3,
                label=f"{name} — training")
        if best is not None:
            val = next((h["val_loss"] for h in hist if h["epoch"] == best), None)
            if val is not None:
                ax.scatter([best], [val], s=60, facecolor="white", edgecolor=color, linewidth=1.6, zorder=5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss against epochs")
    ax.scatter([], [], s=60, facecolor="white", edgecolor=MUTED, linewidth=1.6, label="evaluated checkpoint")
    ax.legend(loc="upper right", ncol=2 if baseline is not None else 1)
    _integer_x(ax)
    return fig


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def pr_figure(tuned, baseline, palette, *, tuned_point: tuple[float, float] | None = None,
              baseline_point: tuple[float, float] | None = None, tuned_label: str = "tuned"):
    """The pooled precision-recall curve (every one-hot pixel against its softmax score) and one curve per class.

    ``tuned`` and ``baseline`` are :class:`~aerotune.report.collect.ModelEval` (baseline may be None);
    the points mark precision and recall at the 0.5 threshold.
    """
    panels = 3 if baseline is not None else 2
    fig = _figure(3.5 * panels + 0.4, 3.9)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    ax = axes[0]
    for name, ev, color, point in ((tuned_label, tuned, TUNED, tuned_point),
                                   ("baseline", baseline, BASELINE, baseline_point)):
        if ev is None:
            continue
        r, p = _curve(ev.pr_pooled)
        ax.plot(r, p, color=color, label=f"{name} (AP {ev.ap_pooled:.3f})")
        if point is not None:
            ax.scatter([point[1]], [point[0]], s=36, color=color, edgecolor="white", zorder=5)
    ax.set_title("All one-hot pixels (pooled)")
    ax.legend(loc="lower left", title="● threshold 0.5", title_fontsize=7.5, alignment="left")
    for ax, (name, ev) in zip(axes[1:], ((tuned_label, tuned), ("baseline", baseline))):
        if ev is None:
            continue
        for k, cname in enumerate(palette.names):
            if not math.isfinite(ev.ap_class[k]):
                continue
            r, p = _curve(ev.pr_class[k])
            ax.plot(r, p, color=_hex(palette.colors[k]), linewidth=1.6, label=f"{cname} ({ev.ap_class[k]:.2f})",
                    path_effects=_outline())
        ax.set_title(f"Per class, {name} model", color=BASELINE if name == "baseline" else TUNED)
        ax.legend(loc="lower left", title="class (AP)", title_fontsize=7.5, alignment="left")
    for ax in axes:
        ax.set_xlim(0, 1.01)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_aspect("equal")
    axes[0].set_ylabel("precision")
    return fig


def _curve(pr: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pr["precision"], dtype=float)
    r = np.asarray(pr["recall"], dtype=float)
    ok = np.isfinite(p) & np.isfinite(r)
    return r[ok], p[ok]


def confusion_figure(matrices: Sequence[tuple[str, list[list[int]]]], names: Sequence[str]):
    """Row-normalised confusion matrices (each row: where that class's pixels went), one per model."""
    fig = _figure(3.9 * len(matrices) + 0.6, 3.9)
    axes = [fig.add_subplot(1, len(matrices), i + 1) for i in range(len(matrices))]
    image = None
    for ax, (title, cm) in zip(axes, matrices):
        m = np.asarray(cm, dtype=float)
        rows = m.sum(axis=1, keepdims=True)
        norm = np.divide(m, rows, out=np.full_like(m, np.nan), where=rows > 0)
        image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.grid(False)
        for i in range(len(names)):
            for j in range(len(names)):
                v = norm[i, j]
                if math.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5,
                            color="white" if v > 0.6 else INK)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, color=BASELINE if title.startswith("baseline") else TUNED)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="share of the true class's pixels")
    return fig


def class_iou_figure(names: Sequence[str], tuned: Sequence[float], baseline: Sequence[float] | None, *,
                     tuned_label: str = "tuned"):
    """Per-class IoU, tuned and baseline bars side by side."""
    fig = _figure(WIDE, 3.0)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    w = 0.38 if baseline is not None else 0.6
    bars = [(tuned_label, tuned, TUNED, -w / 2 if baseline is not None else 0)]
    if baseline is not None:
        bars.append(("baseline", baseline, BASELINE, w / 2))
    for label, values, color, off in bars:
        vals = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
        ax.bar(x + off, vals, w, color=color, label=label)
        for xi, v, raw in zip(x + off, vals, values):
            ax.text(xi, v + 0.01, "n/a" if not math.isfinite(raw) else f"{v:.2f}", ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("IoU")
    ax.set_title("Intersection over union per class (validation)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", ncol=2)
    return fig


# ------------------------------------------------------------------ the study


def best_so_far_figure(trials: list[dict[str, Any]], *, direction: str = "minimize", metric: str = "val_loss"):
    """Best value so far against the epochs spent (trials in order of their number); each finished trial a dot.

    ``trials`` need ``number``, ``state``, ``epochs`` and ``value``.
    """
    fig = _figure(WIDE, 3.4)
    ax = fig.add_subplot()
    spent = 0
    xs, best, pts, pruned_pts = [0], [math.nan], [], []
    current = math.nan
    better = (lambda a, b: a < b) if direction == "minimize" else (lambda a, b: a > b)
    for t in sorted(trials, key=lambda t: t["number"]):
        spent += int(t.get("epochs") or 0)
        v = t.get("value")
        if isinstance(v, (int, float)) and math.isfinite(v):
            if t["state"] == "COMPLETE":
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
    fig = _figure(WIDE, 1.5)
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


def trial_curves_figure(trials: list[dict[str, Any]], *, best: int | None, baseline: int | None,
                        metric: str = "val_loss"):
    """Every trial's per-epoch metric; pruned trials in grey with a cross where HyperBand stopped them."""
    fig = _figure(WIDE, 3.8)
    ax = fig.add_subplot()
    # (colour, line style, end marker, legend label) per kind of trial
    kinds = {
        "COMPLETE": ("#5E8FBF", "-", "o", "complete"),
        "PRUNED": (MUTED, "-", "x", "pruned (× where HyperBand stopped it)"),
        "budget": (MUTED, ":", "|", "stopped by the study's epoch budget"),
        "FAIL": ("#C0392B", ":", "v", "failed"),
        "RUNNING": ("#5E8FBF", "--", ">", "running"),
    }
    seen: set[str] = set()
    finite = []
    for t in sorted(trials, key=lambda t: t["number"]):
        curve = t.get("curve") or []
        if not curve:
            continue
        ep = np.arange(1, len(curve) + 1)
        finite += [v for v in curve if math.isfinite(v)]
        if t["number"] in (best, baseline):
            continue  # drawn last, on top
        kind = "budget" if t.get("status") == "budget" else t["state"]
        color, style, marker, label = kinds.get(kind, (MUTED, "-", ".", str(kind).lower()))
        ax.plot(ep, curve, color=color, linestyle=style, linewidth=0.9, alpha=0.7, marker=marker, markevery=[-1],
                markersize=5, label=None if kind in seen else label)
        seen.add(kind)
    for number, color, label in ((baseline, BASELINE, "baseline trial"), (best, TUNED, "best trial")):
        t = next((t for t in trials if t["number"] == number), None)
        if t and t.get("curve"):
            ax.plot(np.arange(1, len(t["curve"]) + 1), t["curve"], color=color, linewidth=2.2,
                    label=f"{label} (#{number})", zorder=4)
    if finite:  # a diverging trial would flatten every other curve: then clip the axis to the bulk of values
        lo, q, hi = np.percentile(finite, [0, 90, 100])
        if hi - lo > 3 * (q - lo) > 0:
            hi = q + (q - lo) * 0.5
        pad = (hi - lo) * 0.06 or 0.05
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves of every trial")
    ax.legend(loc="upper right")
    _integer_x(ax)
    return fig


def importance_figure(importances: dict[str, float]):
    """Optuna parameter importances as horizontal bars."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = _figure(WIDE, 0.5 + 0.42 * len(items))
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


def save(fig, path, *, dpi: int = 144) -> None:
    """Write a figure as PNG (in the report style) and release its memory."""
    with style():
        fig.savefig(path, dpi=dpi, format="png")
    fig.clf()
