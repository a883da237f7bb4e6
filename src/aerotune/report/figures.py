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


def new_figure(width: float, height: float):
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

    handles = [
        Patch(facecolor=_hex(c), edgecolor="#6B7075", linewidth=0.5, label=n)
        for n, c in zip(palette.names, palette.colors)
    ]
    if ignored:
        handles.append(
            Patch(
                facecolor=_hex(ignored_color(palette)),
                edgecolor="#6B7075",
                linewidth=0.5,
                label="ignored (unknown colour)",
            )
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=ncol or len(handles),
        fontsize=9,
        handlelength=1.4,
        columnspacing=1.4,
    )


def patches_figure(
    images: np.ndarray,
    truths: np.ndarray,
    tuned: np.ndarray,
    baseline: np.ndarray | None,
    palette,
    *,
    labels: Sequence[str] = (),
    groups: int = 2,
    tuned_label: str = "tuned",
):
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
    fig = new_figure(cell * k * groups + 0.35 * (groups - 1), cell * rows + 0.9)
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


def loss_figure(
    tuned: list[dict],
    baseline: list[dict] | None,
    *,
    tuned_best: int | None = None,
    baseline_best: int | None = None,
    tuned_label: str = "tuned",
):
    """Training and validation loss against epochs, the baseline's curves laid over the tuned model's."""
    fig = new_figure(WIDE, 3.6)
    ax = fig.add_subplot()
    series = [(tuned_label, tuned, TUNED, tuned_best)]
    if baseline is not None:
        series.append(("baseline", baseline, BASELINE, baseline_best))
    for name, hist, color, best in series:
        ep = [h["epoch"] for h in hist]
        ax.plot(
            ep,
            [h["val_loss"] for h in hist],
            color=color,
            label=f"{name} — validation",
            marker="o" if len(ep) < 25 else None,
            markersize=3,
        )
        ax.plot(
            ep, [h["train_loss"] for h in hist], color=color, linestyle="--", linewidth=1.3, label=f"{name} — training"
        )
        if best is not None:
            val = next((h["val_loss"] for h in hist if h["epoch"] == best), None)
            if val is not None:
                ax.scatter([best], [val], s=60, facecolor="white", edgecolor=color, linewidth=1.6, zorder=5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Loss against epochs")
    ax.scatter([], [], s=60, facecolor="white", edgecolor=MUTED, linewidth=1.6, label="evaluated checkpoint")
    ax.legend(loc="upper right", ncol=2 if baseline is not None else 1)
    integer_x(ax)
    return fig


def integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def pr_figure(
    tuned,
    baseline,
    palette,
    *,
    tuned_point: tuple[float, float] | None = None,
    baseline_point: tuple[float, float] | None = None,
    tuned_label: str = "tuned",
):
    """The pooled precision-recall curve (every one-hot pixel against its softmax score) and one curve per class.

    ``tuned`` and ``baseline`` are :class:`~aerotune.report.collect.ModelEval` (baseline may be None);
    the points mark precision and recall at the 0.5 threshold.
    """
    panels = 3 if baseline is not None else 2
    fig = new_figure(3.5 * panels + 0.4, 3.9)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    ax = axes[0]
    for name, ev, color, point in (
        (tuned_label, tuned, TUNED, tuned_point),
        ("baseline", baseline, BASELINE, baseline_point),
    ):
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
            ax.plot(
                r,
                p,
                color=_hex(palette.colors[k]),
                linewidth=1.6,
                label=f"{cname} ({ev.ap_class[k]:.2f})",
                path_effects=_outline(),
            )
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
    fig = new_figure(3.9 * len(matrices) + 0.6, 3.9)
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
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5, color="white" if v > 0.6 else INK)
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


def class_iou_figure(
    names: Sequence[str], tuned: Sequence[float], baseline: Sequence[float] | None, *, tuned_label: str = "tuned"
):
    """Per-class IoU, tuned and baseline bars side by side."""
    fig = new_figure(WIDE, 3.0)
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
            ax.text(xi, v + 0.01, "n/a" if not math.isfinite(raw) else f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("IoU")
    ax.set_title("Intersection over union per class (validation)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right", ncol=2)
    return fig


# ------------------------------------------------------------------ the study


def save(fig, path, *, dpi: int = 144) -> None:
    """Write a figure as PNG (in the report style) and release its memory."""
    with style():
        fig.savefig(path, dpi=dpi, format="png")
    fig.clf()
