"""The report's tables, built once from the report's record (``report.json``), rendered to HTML and Markdown by
``render.py``.

A table is plain data: columns, rows of cells, a caption. Each cell says what it shows (its text) and, for
HTML only, how (a CSS class, a colour swatch, a pill, tags); Markdown shows the text and the tags' text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aerotune.report.records import ReportRecord


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""  # the cell's class: good/bad for a change, text for left-aligned text
    swatch: str | None = None  # a colour square before the text (a class's colour)
    pill: str = ""  # the text in a pill of this class (a trial's state)
    title: str = ""  # hover text of the pill
    tags: tuple[tuple[str, str], ...] = ()  # (text, class) after the text: "best", "baseline"


@dataclass(frozen=True)
class Column:
    label: str
    css: str = ""  # baseline / tuned colour the header; text left-aligns it
    short: str = ""  # the label under a group header (HTML)


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    caption: str = ""
    emphasis: list[bool] = field(default_factory=list)  # rows to highlight (bold in Markdown)
    groups: list[tuple[str, int]] = field(default_factory=list)  # HTML: a header row of (label, span) after
    # the columns that have no group
    facts: bool = False  # a list of label: value pairs rather than a grid (HTML <dl>)
    scroll: bool = False  # long: HTML scrolls it


def fmt(v: Any, spec: str = ".3f") -> str:
    """A number for display; missing or NaN values are a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not spec:
        return str(v)
    return format(v, spec)


def fmt_param(v: Any) -> str:
    """A setting for display: floats to four significant digits, None as a dash."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def _text(v: Any) -> str:
    """A protocol fact: booleans as on/off."""
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


def delta(b: Any, t: Any, spec: str, lower_is_better: bool | None) -> Cell:
    """The change from baseline to tuned, classed good or bad when one direction is an improvement."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (b, t)) or not spec:
        return Cell("")
    d = t - b
    text = format(d, "+" + spec)
    if lower_is_better is None or d == 0:
        return Cell(text)
    return Cell(text, "good" if (d < 0) == lower_is_better else "bad")


def duration(seconds: Any) -> str:
    """Seconds as ``1 h 02 min``, ``3 min 04 s`` or ``5 s``; a dash when unknown."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def _model_columns(r: ReportRecord) -> list[Column]:
    """One column per compared model, headed by its label."""
    return [Column(r.labels[k], k) for k in r.model_names()]


PROTOCOL_LABELS = [
    ("data", "data"),
    ("images", "source images"),
    ("skipped", "pairs left out"),
    ("classes", "classes"),
    ("patch_size", "patch size (px)"),
    ("scale", "scale"),
    ("mode", "cropping"),
    ("unknown_colors", "unknown mask colours"),
    ("color_tolerance", "mask colour tolerance"),
    ("split", "split"),
    ("patches", "patches"),
    ("test", "test portion"),
    ("normalization", "normalisation"),
    ("augment", "augmentation"),
    ("loss", "loss"),
    ("training_seed", "training seed"),
    ("evaluated", "evaluated"),
    ("patch_seed", "seed of the shown patches"),
    ("pr_thresholds", "PR-curve thresholds"),
    ("ignored_pixels", "ignored pixels"),
]


def protocol(r: ReportRecord) -> Table:
    """The protocol's facts that the run has."""
    p = r.protocol
    rows = [[Cell(label), Cell(_text(getattr(p, k)))] for k, label in PROTOCOL_LABELS if getattr(p, k) is not None]
    return Table("Protocol", [Column(""), Column("")], rows, facts=True)


def parameters(r: ReportRecord) -> Table:
    """Parameter | baseline | default recipe | tuned; the rows that differ highlighted."""
    has_base, has_default = "baseline" in r.models, "default" in r.models
    title = "Best parameters against the initial ones" if r.study is not None else "Settings"
    cols = [Column("parameter")] + ([Column(r.labels["baseline"], "baseline")] if has_base else [])
    cols += [Column(r.labels["default"], "default")] if has_default else []
    cols.append(Column(r.labels["tuned"], "tuned"))
    rows = [
        [Cell(p.name)]
        + ([Cell(fmt_param(p.baseline))] if has_base else [])
        + ([Cell(fmt_param(p.default))] if has_default else [])
        + [Cell(fmt_param(p.tuned))]
        for p in r.parameters
    ]
    return Table(
        title,
        cols,
        rows,
        caption="Highlighted: settings that differ." if has_base else "",
        emphasis=[bool(p.changed) for p in r.parameters],
    )


def results(r: ReportRecord) -> Table:
    """The numbers table: each headline number per model, and the change."""
    has_base = "baseline" in r.models
    metric = "metric (validation patches unless marked)" if r.whole_images else "validation metric"
    cols = [Column(metric), *_model_columns(r)] + ([Column("change")] if has_base else [])
    rows = []
    for h in r.headline:
        cells = [Cell(h.label)] + [Cell(fmt(h.values.get(k), h.format)) for k in r.model_names()]
        if has_base:
            cells.append(delta(h.values.get("baseline"), h.values.get("tuned"), h.format, h.lower_is_better))
        rows.append(cells)
    return Table("Results", cols, rows)


def reference(r: ReportRecord) -> Table:
    """Precision and recall at threshold 0.5 on training and validation patches (the reference's metric)."""
    rows = []
    for split, label in (("train", "training"), ("val", "validation")):
        for key in ("precision_ref", "recall_ref"):
            rows.append(
                [Cell(f"{label} {key.split('_')[0]}")]
                + [Cell(fmt(getattr(r.models[k], split).get(key), ".4f")) for k in r.model_names()]
            )
    return Table(
        "Precision and recall at 0.5 (the reference's metric)",
        [Column("at threshold 0.5"), *_model_columns(r)],
        rows,
        caption="Every one-hot (pixel, class) pair against its softmax score above 0.5, pooled. Training "
        f"values from {r.train_patches_evaluated} training patches, without augmentation or "
        "dropout.",
    )


def per_class(r: ReportRecord) -> Table:
    """Class | share of pixels | IoU, F1, precision, recall and AP of each model."""
    names = r.model_names()
    metrics = [("iou", "IoU"), ("f1", "F1"), ("precision", "precision"), ("recall", "recall"), ("ap", "AP")]
    initial = {k: r.labels[k][0].upper() for k in names}
    if len(names) == 1:
        cols = [Column("class"), Column("share of pixels")] + [Column(label) for _, label in metrics]
        groups: list[tuple[str, int]] = []
    else:
        cols = [Column("class"), Column("share of pixels")] + [
            Column(f"{label} ({initial[k]})", k, short=initial[k]) for _, label in metrics for k in names
        ]
        groups = [(label, len(names)) for _, label in metrics]
    rows = []
    for i, cname in enumerate(r.classes):
        rows.append(
            [Cell(cname, swatch=r.colors[i]), Cell(fmt(r.models["tuned"].per_class[i].share, ".1%"))]
            + [Cell(fmt(getattr(r.models[k].per_class[i], key))) for key, _ in metrics for k in names]
        )
    legend = "".join(f"; {initial[k]} = {r.labels[k]}" for k in names if len(names) > 1)
    return Table(
        "",
        cols,
        rows,
        caption=f"Validation pixels{legend}. A dash: the class does not occur (or is never predicted).",
        groups=groups,
    )


def study_facts(r: ReportRecord) -> Table:
    """The study's settings, outcome and cost, as facts."""
    st = r.study
    assert st is not None
    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(st.counts.items()))
    spent, ref = st.epochs_spent, st.reference_epochs
    facts = [
        ("study", st.study_name),
        (
            "sampler / pruner",
            f"{st.sampler} / HyperBand (resources {st.min_resource}–{st.max_resource} "
            f"epochs, reduction factor {st.reduction_factor})",
        ),
        ("objective", f"{st.direction} {st.metric}"),
        ("seed", st.seed),
        ("trials", counts),
        ("best trial", f"#{st.best_trial} ({fmt(st.best_value, '.4f')})"),
        ("baseline trial", f"#{st.baseline_trial}" if st.baseline_trial is not None else "none"),
        ("epochs spent", f"{spent:,} = {spent / ref:.1%} of the reference's {ref:,}"),
        ("wall time", duration(st.wall_time)),
        ("storage", st.storage),
    ]
    return Table("The study", [Column(""), Column("")], [[Cell(k), Cell(str(v))] for k, v in facts], facts=True)


def trials(r: ReportRecord) -> Table:
    """Every trial: number (best, baseline), state, parameters, epochs, value, duration."""
    st = r.study
    assert st is not None
    keys: list[str] = []
    for t in st.trials:
        keys += [k for k in t.params if k not in keys]
    cols = [
        Column("#"),
        Column("state", "text"),
        *[Column(k) for k in keys],
        Column("epochs"),
        Column("value"),
        Column("duration"),
    ]
    rows = []
    for t in st.trials:
        tags = ((("best", "tuned"),) if t.number == st.best_trial else ()) + (
            (("baseline", "baseline"),) if t.number == st.baseline_trial else ()
        )
        state = str(t.state)
        rows.append(
            [
                Cell(str(t.number), tags=tags),
                Cell(state.lower(), "text", pill=f"state {state}", title=str(t.reason)),
                *[Cell(fmt_param(t.params.get(k))) for k in keys],
                Cell(str(t.epochs)),
                Cell(fmt(t.value, ".4f")),
                Cell(duration(t.duration)),
            ]
        )
    return Table("Trials", cols, rows, scroll=True)
