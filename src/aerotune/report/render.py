"""HTML and Markdown renderings of the numbers that :mod:`aerotune.report.make` gathered.

Both read only the report's record (what goes into ``report.json``) and the figure PNGs, so every number
on the page is also in ``report.json``. The HTML is one self-contained file: inline CSS, figures as
base64 data URIs, no script, no external resource.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from aerotune.report import seed_text, tables
from aerotune.report.figures import BASELINE, FIGURE_DPI, TUNED
from aerotune.report.records import ReportRecord, Verdict
from aerotune.report.tables import Table, fmt

FIGURE_TEXT = {
    "patches": (
        "Validation patches",
        "Ten validation patches drawn with the saved seed (the same for both models), in the dataset's own colours.",
    ),
    # the patch figure of masks of class ids, by where its colours come from (the report's ``colors_from``)
    "patches mask palette": (
        "Validation patches",
        "Ten validation patches drawn with the saved seed (the same for both models), in the colours of the "
        "masks' own PNG palette.",
    ),
    "patches fixed": (
        "Validation patches",
        "Ten validation patches drawn with the saved seed (the same for both models); the masks hold class ids, "
        "shown in aerotune's fixed display colours (the legend names them).",
    ),
    "loss": ("Loss curves", "Training (dashed) and validation (solid) loss of each run, as logged while training."),
    "precision_recall": (
        "Precision and recall",
        "Left: every (pixel, class) pair of the one-hot truth against its softmax score, pooled over "
        "classes (the reference's curve). Middle/right: one curve per class, average precision in "
        "brackets. Binned thresholds; ignored pixels skipped.",
    ),
    "class_iou": ("IoU per class", ""),
    "confusion": ("Confusion matrices", "Rows are true classes, normalised to 1: where each class's pixels went."),
    "budget": ("Budget", ""),
    "best_so_far": (
        "Best value so far",
        "Trials in order of their number; the cumulative epochs of all trials, pruned ones included.",
    ),
    "trial_curves": ("Learning curves", "The metric each trial reported after every epoch."),
    "importances": (
        "Parameter importances",
        "Optuna's PED-ANOVA importances over the complete trials: how much each parameter's distribution "
        "differs between the best trials and all of them.",
    ),
}


def figure_text(colors_from: str, name: str) -> tuple[str, str]:
    """A figure's title and caption; the patch figure's says where its colours come from (``colors_from``)."""
    if name == "patches" and colors_from in ("mask palette", "fixed"):
        name = f"patches {colors_from}"
    return FIGURE_TEXT.get(name, (name, ""))


CSS = (
    f":root {{ --tuned: {TUNED}; --baseline: {BASELINE}; }}"
    + """
:root { --ink: #1f2328; --muted: #59636e; --line: #d8dee4; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 60px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header .sub { color: var(--muted); font-size: 13px; word-break: break-all; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px;
          margin: 18px 0; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
p.caption, .note { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
.verdict { border-left: 6px solid #8a8f98; }
.verdict.better { border-left-color: #1a7f37; } .verdict.worse { border-left-color: #cf222e; }
.verdict.mixed { border-left-color: #bf8700; }
.verdict .head { font-size: 20px; font-weight: 700; margin-bottom: 6px; }
.kpis { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 12px; }
.kpi { flex: 1 1 180px; background: var(--bg); border-radius: 8px; padding: 10px 14px; }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.kpi .value { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.kpi .delta { font-size: 13px; }
.verdict .basis { margin: 10px 0 0; font-size: 14px; color: var(--muted); }
.good { color: #1a7f37; } .bad { color: #cf222e; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 18px; align-items: start; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
dl.protocol { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; font-size: 13.5px; }
dl.protocol dt { color: var(--muted); } dl.protocol dd { margin: 0; word-break: break-word; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tr.changed td { background: #fff8e5; }
.tuned { color: var(--tuned); } .baseline { color: var(--baseline); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
          vertical-align: -1px; border: 1px solid #0003; }
figure { margin: 0; } figure img { width: 100%; height: auto; display: block; margin: 0 auto; }
th[colspan] { text-align: center; }
.scroll { max-height: 480px; overflow: auto; }
.state { font-size: 12px; padding: 1px 7px; border-radius: 10px; background: var(--bg); }
.state.COMPLETE { background: #dafbe1; } .state.PRUNED { background: #eaeef2; } .state.FAIL { background: #ffebe9; }
ul.notes { margin: 0; padding-left: 20px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
"""
)


# ------------------------------------------------------------------ HTML


def render_html(r: ReportRecord, folder: Path) -> str:
    """The report as one self-contained HTML page; figures are read from ``folder`` and embedded."""
    e = html.escape
    parts = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(r.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
    ]
    parts.append(
        f'<header><h1>{e(r.title)}</h1><div class="sub">{e(r.kind)} run '
        f"<code>{e(r.run)}</code> · {e(r.created)} · aerotune {e(r.aerotune_version)}"
        "</div></header>\n"
    )
    parts.append(_html_verdict(r.verdict))
    if r.seeds is not None:  # the seed verdict: beside the verdict it qualifies
        t = seed_text.table(r.seeds, r.labels)
        parts.append(
            f'<section id="seeds"><h2>{html.escape(t.title)}</h2><p>{html.escape(r.seeds.verdict)}'
            f"</p>{html_table(t)}</section>\n"
        )
    if r.notes:
        parts.append(
            '<section><h2>Notes</h2><ul class="notes">'
            + "".join(f"<li>{e(n)}</li>" for n in r.notes)
            + "</ul></section>\n"
        )
    parts.append(_html_body(r, folder))
    parts.append(
        f"<footer>Every number on this page is in report.json. Models evaluated on "
        f"{r.val_patches_evaluated} validation patches{' each' if 'baseline' in r.models else ''}; "
        f"made in {r.seconds:.0f} s.</footer>\n"
    )
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


def _html_body(r: ReportRecord, folder: Path) -> str:
    """The tables and figures between the notes and the footer."""
    e = html.escape
    parts = [
        f'<div class="grid2">{_html_section(tables.protocol(r))}{_html_section(tables.parameters(r))}</div>\n',
        _html_section(tables.results(r)),
        _html_figure(r, folder, "patches"),
        _html_figure(r, folder, "loss"),
    ]
    ref = tables.reference(r)
    parts.append(_html_figure(r, folder, "precision_recall", extra=f"<h3>{e(ref.title)}</h3>{html_table(ref)}"))
    parts.append(_html_figure(r, folder, "class_iou", extra=html_table(tables.per_class(r)), title="Per-class metrics"))
    parts.append(_html_figure(r, folder, "confusion"))
    if r.study is not None:
        parts.append(_html_study(r, folder))
    return "".join(parts)


def html_table(t: Table) -> str:
    """A table (or, for facts, a definition list) and its caption."""
    e = html.escape
    cap = f'<p class="caption">{e(t.caption)}</p>' if t.caption else ""
    if t.facts:
        return (
            '<dl class="protocol">'
            + "".join(f"<dt>{e(k.text)}</dt><dd>{e(v.text)}</dd>" for k, v in t.rows)
            + f"</dl>{cap}"
        )

    def th(c, attrs: str = "") -> str:
        return f"<th{attrs}{_css(c.css)}>{e(c.label)}</th>"

    if t.groups:
        ungrouped = len(t.columns) - sum(span for _, span in t.groups)
        head = (
            "<tr>"
            + "".join(th(c, ' rowspan="2"') for c in t.columns[:ungrouped])
            + "".join(f'<th colspan="{span}">{e(label)}</th>' for label, span in t.groups)
            + "</tr><tr>"
            + "".join(f"<th{_css(c.css)}>{e(c.short or c.label)}</th>" for c in t.columns[ungrouped:])
            + "</tr>"
        )
    else:
        head = "<tr>" + "".join(th(c) for c in t.columns) + "</tr>"
    rows = []
    for i, row in enumerate(t.rows):
        changed = ' class="changed"' if i < len(t.emphasis) and t.emphasis[i] else ""
        rows.append(f"<tr{changed}>" + "".join(_html_cell(c) for c in row) + "</tr>")
    table = f"<table>{head}{''.join(rows)}</table>"
    return (f'<div class="scroll">{table}</div>' if t.scroll else table) + cap


def _css(css: str) -> str:
    """A class attribute, or nothing."""
    return f' class="{html.escape(css)}"' if css else ""


def _html_cell(c: tables.Cell) -> str:
    """A table cell: its text, pill, swatch and tags."""
    e = html.escape
    text = e(c.text)
    if c.pill:
        text = f'<span class="{e(c.pill)}" title="{e(c.title)}">{text}</span>'
    if c.swatch:
        text = f'<span class="swatch" style="background:{e(c.swatch)}"></span>{text}'
    text += "".join(f' <span class="{e(css)}">{e(tag)}</span>' for tag, css in c.tags)
    return f"<td{_css(c.css)}>{text}</td>"


def _html_section(t: Table) -> str:
    """A table in a section of its own, under its title."""
    return f"<section><h2>{html.escape(t.title)}</h2>{html_table(t)}</section>\n"


def _html_verdict(v: Verdict) -> str:
    """The verdict's section: its headline, its sentence, and the numbers that decided as cards."""
    e = html.escape
    out = [f'<section class="verdict {e(v.status)}">']
    if v.status == "single":
        out.append(f'<div class="head">{e(v.text)}</div>')
    else:
        out.append(f'<div class="head">{e(v.headline)}</div><div>{e(v.detail)}</div>')
        out.append('<div class="kpis">')
        for key, label, spec, lower in (
            ("test_mean_iou", "test mean IoU (whole images)", ".3f", False),
            ("test_pixel_accuracy", "test pixel accuracy", ".3f", False),
            ("val_loss", "validation loss", ".4f", True),
            ("mean_iou", "validation mean IoU" if v.test_mean_iou is not None else "mean IoU", ".3f", False),
        ):
            k = getattr(v, key)
            if k is None:
                continue
            d = tables.delta(k.baseline, k.tuned, spec, lower)
            out.append(
                f'<div class="kpi"><div class="label">{label}</div><div class="value">'
                f'<span class="baseline">{fmt(k.baseline, spec)}</span> → '
                f'<span class="tuned">{fmt(k.tuned, spec)}</span></div>'
                f'<div class="delta {d.css}">{d.text} (tuned − baseline)</div></div>'
            )
        out.append("</div>")
    if v.basis_text:
        out.append(f'<p class="basis">{e(v.basis_text)}</p>')
    out.append("</section>\n")
    return "".join(out)


def _img(folder: Path, rel: str, alt: str) -> str:
    """An embedded PNG, shown at 96 px per inch of the figure (so its text is the page's size), or narrower."""
    raw = (folder / rel).read_bytes()
    width = int.from_bytes(raw[16:20], "big")  # the PNG header's IHDR width
    b64 = base64.b64encode(raw).decode("ascii")
    return (
        f'<img alt="{html.escape(alt)}" style="max-width:{round(width * 96 / FIGURE_DPI)}px" '
        f'src="data:image/png;base64,{b64}">'
    )


def _html_figure(r: ReportRecord, folder: Path, name: str, *, extra: str = "", title: str | None = None) -> str:
    """A figure's section (nothing when the report has no such figure), with ``extra`` after its caption."""
    rel = r.figures.get(name)
    if rel is None:
        return ""
    t, caption = figure_text(r.colors_from, name)
    cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
    return (
        f'<section id="{name}"><h2>{html.escape(title or t)}</h2><figure>{_img(folder, rel, t)}</figure>{cap}'
        f"{extra}</section>\n"
    )


def _html_study(r: ReportRecord, folder: Path) -> str:
    """The study's section: its facts, its figures (titled in the PNGs) and its trials."""
    st = r.study
    assert st is not None
    e = html.escape
    out = [f'<section id="study"><h2>The study</h2>{html_table(tables.study_facts(r))}']
    for name in ("budget", "best_so_far", "trial_curves", "importances"):
        rel = r.figures.get(name)
        if rel:
            t, caption = FIGURE_TEXT[name]
            out.append(f'<figure style="margin-top:18px">{_img(folder, rel, t)}</figure>')  # titled in the PNG
            if caption:
                out.append(f'<p class="caption">{e(caption)}</p>')
    if st.importance_note:
        out.append(f'<p class="note">{e(st.importance_note)}</p>')
    out.append("<h3>Trials</h3>" + html_table(tables.trials(r)) + "</section>\n")
    return "".join(out)


# ------------------------------------------------------------------ Markdown


def render_markdown(r: ReportRecord) -> str:
    """The report as Markdown, with the figures as PNG files in ``figures/``."""
    md = [
        f"# {r.title}",
        "",
        f"{r.kind.capitalize()} run `{r.run}` · {r.created} · aerotune {r.aerotune_version}",
        "",
    ]
    v = r.verdict
    md += [f"> **{v.text}**" if v.status == "single" else f"> **{v.headline}**: {v.detail}", ""]
    if v.basis_text:
        md += [f"> {v.basis_text}", ""]
    if r.seeds is not None:
        md += ["## Seed noise", "", r.seeds.verdict, ""] + md_table(seed_text.table(r.seeds, r.labels))
    md += md_table(tables.protocol(r), level="##")
    if r.notes:
        md += ["## Notes", ""] + [f"- {n}" for n in r.notes] + [""]
    md += md_table(tables.parameters(r), level="##")
    md += md_table(tables.results(r), level="##")
    for name in ("patches", "loss", "precision_recall"):
        md += _md_figure(r, name)
    md += md_table(tables.reference(r), level="###")
    md += _md_figure(r, "class_iou", title="Per-class metrics")
    md += md_table(tables.per_class(r))
    md += _md_figure(r, "confusion")
    if r.study is not None:
        md += md_table(tables.study_facts(r), level="##")
        for name in ("budget", "best_so_far", "trial_curves", "importances"):
            md += _md_figure(r, name, level="###")
        if r.study.importance_note:
            md += [f"*{r.study.importance_note}*", ""]
        md += md_table(tables.trials(r), level="###")
    md += ["---", "", "Every number here is in `report.json`.", ""]
    return "\n".join(md)


def md_table(t: Table, *, level: str = "") -> list[str]:
    """A table as Markdown lines (with a heading of ``level`` when it has a title), then its caption."""
    out = [f"{level} {t.title}", ""] if level and t.title else []
    if t.facts:
        out += ["| | |", "|---|---|"] + [f"| {_md(k.text)} | {_md(v.text)} |" for k, v in t.rows]
    else:
        out.append("| " + " | ".join(_md(c.label) for c in t.columns) + " |")
        out.append(
            "|" + "|".join("---" if c.css == "text" or i == 0 else "---:" for i, c in enumerate(t.columns)) + "|"
        )
        for i, row in enumerate(t.rows):
            cells = [_md(c.text + "".join(f" {tag}" for tag, _ in c.tags)) for c in row]
            if i < len(t.emphasis) and t.emphasis[i]:
                cells[0] = f"**{cells[0]}**"
            out.append("| " + " | ".join(cells) + " |")
    out.append("")
    return out + ([t.caption, ""] if t.caption else [])


def _md(v: Any) -> str:
    """A Markdown table cell: pipes escaped."""
    return str(v).replace("|", "\\|")


def _md_figure(r: ReportRecord, name: str, *, title: str | None = None, level: str = "##") -> list[str]:
    """A figure's heading, image link and caption (nothing when the report has no such figure)."""
    rel = r.figures.get(name)
    if rel is None:
        return []
    t, caption = figure_text(r.colors_from, name)
    out = [f"{level} {t}" if title is None else f"{level} {title}", "", f"![{t}]({rel})", ""]
    if caption:
        out += [caption, ""]
    return out
