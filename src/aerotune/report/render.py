"""HTML and Markdown renderings of the numbers that :mod:`aerotune.report.make` gathered.

Both read only the report dict (what goes into ``report.json``) and the figure PNGs, so every number
on the page is also in ``report.json``. The HTML is one self-contained file: inline CSS, figures as
base64 data URIs, no script, no external resource.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from aerotune.report.figures import BASELINE, FIGURE_DPI, TUNED

FIGURE_TEXT = {
    "patches": ("Validation patches",
                "Ten validation patches drawn with the saved seed (the same for both models), in the dataset's own "
                "colours."),
    "loss": ("Loss curves", "Training (dashed) and validation (solid) loss of each run, as logged while training."),
    "precision_recall": ("Precision and recall",
                         "Left: every (pixel, class) pair of the one-hot truth against its softmax score, pooled over "
                         "classes (the reference's curve). Middle/right: one curve per class, average precision in "
                         "brackets. Binned thresholds; ignored pixels skipped."),
    "class_iou": ("IoU per class", ""),
    "confusion": ("Confusion matrices", "Rows are true classes, normalised to 1: where each class's pixels went."),
    "budget": ("Budget", ""),
    "best_so_far": ("Best value so far", "Trials in order of their number; the cumulative epochs of all trials, "
                                         "pruned ones included."),
    "trial_curves": ("Learning curves", "The metric each trial reported after every epoch."),
    "importances": ("Parameter importances",
                    "Optuna's PED-ANOVA importances over the complete trials: how much each parameter's distribution "
                    "differs between the best trials and all of them."),
}

CSS = f":root {{ --tuned: {TUNED}; --baseline: {BASELINE}; }}" + """
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


def fmt(v: Any, spec: str = ".3f") -> str:
    """A number for display; missing or NaN values are a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not spec:
        return str(v)
    return format(v, spec)


def _text(v: Any) -> str:
    return ("on" if v else "off") if isinstance(v, bool) else str(v)


def fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


def _delta(b: Any, t: Any, spec: str, lower_is_better: bool | None) -> tuple[str, str]:
    """The change from baseline to tuned, and a CSS class saying whether it is an improvement."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (b, t)) or not spec:
        return "", ""
    d = t - b
    text = format(d, "+" + spec)
    if lower_is_better is None or d == 0:
        return text, ""
    return text, "good" if (d < 0) == lower_is_better else "bad"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


# ------------------------------------------------------------------ HTML


def render_html(data: dict[str, Any], folder: Path) -> str:
    """The report as one self-contained HTML page; figures are read from ``folder`` and embedded."""
    e = html.escape
    has_base = "baseline" in data["models"]
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             f"<title>{e(data['title'])}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"]
    parts.append(f"<header><h1>{e(data['title'])}</h1><div class=\"sub\">{e(data['kind'])} run "
                 f"<code>{e(data['run'])}</code> · {e(data['created'])} · aerotune {e(data['aerotune_version'])}"
                 "</div></header>\n")
    parts.append(_html_verdict(data))
    if data["notes"]:
        parts.append("<section><h2>Notes</h2><ul class=\"notes\">"
                     + "".join(f"<li>{e(n)}</li>" for n in data["notes"]) + "</ul></section>\n")
    parts.append(f"<div class=\"grid2\">{_html_protocol(data)}{_html_parameters(data)}</div>\n")
    parts.append(_html_headline(data))
    parts.append(_html_figure(data, folder, "patches"))
    parts.append(_html_figure(data, folder, "loss"))
    parts.append(_html_figure(data, folder, "precision_recall", extra=_html_reference_table(data)))
    parts.append(_html_figure(data, folder, "class_iou", extra=_html_per_class(data), title="Per-class metrics"))
    parts.append(_html_figure(data, folder, "confusion"))
    if "study" in data:
        parts.append(_html_study(data, folder))
    parts.append(f"<footer>Every number on this page is in report.json. Models evaluated on "
                 f"{data['val_patches_evaluated']} validation patches{' each' if has_base else ''}; "
                 f"made in {data.get('seconds', 0):.0f} s.</footer>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


def _html_verdict(data: dict[str, Any]) -> str:
    v = data["verdict"]
    e = html.escape
    out = [f"<section class=\"verdict {e(v['status'])}\">"]
    if v["status"] == "single":
        out.append(f"<div class=\"head\">{e(v['text'])}</div>")
    else:
        out.append(f"<div class=\"head\">{e(v['headline'])}</div><div>{e(v['detail'])}</div>")
        out.append("<div class=\"kpis\">")
        for key, label, spec, lower in (("val_loss", "validation loss", ".4f", True),
                                        ("mean_iou", "mean IoU", ".3f", False)):
            k = v[key]
            d, cls = _delta(k["baseline"], k["tuned"], spec, lower)
            out.append(f"<div class=\"kpi\"><div class=\"label\">{label}</div><div class=\"value\">"
                       f"<span class=\"baseline\">{fmt(k['baseline'], spec)}</span> → "
                       f"<span class=\"tuned\">{fmt(k['tuned'], spec)}</span></div>"
                       f"<div class=\"delta {cls}\">{d} (tuned − baseline)</div></div>")
        out.append("</div>")
    out.append("</section>\n")
    return "".join(out)


PROTOCOL_LABELS = [
    ("data", "data"), ("images", "source images"), ("classes", "classes"), ("patch_size", "patch size (px)"),
    ("scale", "scale"), ("mode", "cropping"), ("unknown_colors", "unknown mask colours"), ("split", "split"),
    ("patches", "patches"), ("normalization", "normalisation"), ("augment", "augmentation"), ("loss", "loss"),
    ("training_seed", "training seed"), ("evaluated", "evaluated"), ("patch_seed", "seed of the shown patches"),
    ("pr_thresholds", "PR-curve thresholds"), ("ignored_pixels", "ignored pixels"),
]


def _html_protocol(data: dict[str, Any]) -> str:
    p = data["protocol"]
    rows = "".join(f"<dt>{html.escape(label)}</dt><dd>{html.escape(_text(p[k]))}</dd>"
                   for k, label in PROTOCOL_LABELS if k in p)
    return f"<section><h2>Protocol</h2><dl class=\"protocol\">{rows}</dl></section>\n"


def _html_parameters(data: dict[str, Any]) -> str:
    has_base = "baseline" in data["models"]
    study = data.get("study")
    title = "Best parameters against the initial ones" if study else "Settings"
    head = ("<tr><th>parameter</th>" + ("<th class=\"baseline\">baseline</th>" if has_base else "")
            + f"<th class=\"tuned\">{data['labels']['tuned']}</th></tr>")
    rows = []
    for r in data["parameters"]:
        cls = " class=\"changed\"" if r["changed"] else ""
        rows.append(f"<tr{cls}><td>{html.escape(r['name'])}</td>"
                    + (f"<td>{html.escape(fmt_param(r['baseline']))}</td>" if has_base else "")
                    + f"<td>{html.escape(fmt_param(r['tuned']))}</td></tr>")
    note = "<p class=\"caption\">Highlighted: settings that differ.</p>" if has_base else ""
    return f"<section><h2>{title}</h2><table>{head}{''.join(rows)}</table>{note}</section>\n"


def _html_headline(data: dict[str, Any]) -> str:
    has_base = "baseline" in data["models"]
    head = ("<tr><th>validation metric</th>" + ("<th class=\"baseline\">baseline</th>" if has_base else "")
            + f"<th class=\"tuned\">{data['labels']['tuned']}</th>" + ("<th>change</th>" if has_base else "") + "</tr>")
    rows = []
    for r in data["headline"]:
        b, t = r.get("baseline"), r["tuned"]
        d, cls = _delta(b, t, r["format"], r["lower_is_better"]) if has_base else ("", "")
        rows.append(f"<tr><td>{html.escape(r['label'])}</td>"
                    + (f"<td>{fmt(b, r['format'])}</td>" if has_base else "")
                    + f"<td>{fmt(t, r['format'])}</td>" + (f"<td class=\"{cls}\">{d}</td>" if has_base else "")
                    + "</tr>")
    return f"<section><h2>Results</h2><table>{head}{''.join(rows)}</table></section>\n"


def _html_reference_table(data: dict[str, Any]) -> str:
    models = data["models"]
    names = [k for k in ("baseline", "tuned") if k in models]
    head = ("<tr><th>at threshold 0.5</th>" + "".join(f"<th class=\"{k}\">{data['labels'][k]}</th>" for k in names)
            + "</tr>")
    rows = []
    for split, label in (("train", "training"), ("val", "validation")):
        for key in ("precision_ref", "recall_ref"):
            rows.append(f"<tr><td>{label} {key.split('_')[0]}</td>"
                        + "".join(f"<td>{fmt(models[k][split].get(key), '.4f')}</td>" for k in names) + "</tr>")
    n_train = data["train_patches_evaluated"]
    return (f"<h3>Precision and recall at 0.5 (the reference's metric)</h3><table>{head}{''.join(rows)}</table>"
            f"<p class=\"caption\">Every one-hot (pixel, class) pair against its softmax score above 0.5, pooled. "
            f"Training values from {n_train} training patches, without augmentation or dropout.</p>")


def _html_per_class(data: dict[str, Any]) -> str:
    models = data["models"]
    names = [k for k in ("baseline", "tuned") if k in models]
    cols = [("iou", "IoU"), ("f1", "F1"), ("precision", "precision"), ("recall", "recall"), ("ap", "AP")]
    if len(names) == 1:
        head = ("<tr><th>class</th><th>share of pixels</th>" + "".join(f"<th>{label}</th>" for _, label in cols)
                + "</tr>")
    else:
        head = ("<tr><th rowspan=\"2\">class</th><th rowspan=\"2\">share of pixels</th>"
                + "".join(f"<th colspan=\"{len(names)}\">{label}</th>" for _, label in cols) + "</tr><tr>"
                + "".join(f"<th class=\"{k}\">{data['labels'][k][0].upper()}</th>" for _ in cols for k in names)
                + "</tr>")
    rows = []
    for i, cname in enumerate(data["classes"]):
        cells = "".join(f"<td>{fmt(models[k]['per_class'][i][key])}</td>" for key, _ in cols for k in names)
        share = models["tuned"]["per_class"][i]["share"]
        rows.append(f"<tr><td><span class=\"swatch\" style=\"background:{data['colors'][i]}\"></span>"
                    f"{html.escape(cname)}</td><td>{fmt(share, '.1%')}</td>{cells}</tr>")
    legend = "".join(f"; {data['labels'][k][0].upper()} = {data['labels'][k]}" for k in names if len(names) > 1)
    return (f"<table>{head}{''.join(rows)}</table><p class=\"caption\">Validation pixels{legend}. "
            "A dash: the class does not occur (or is never predicted).</p>")


def _img(folder: Path, rel: str, alt: str) -> str:
    """An embedded PNG, shown at 96 px per inch of the figure (so its text is the page's size), or narrower."""
    raw = (folder / rel).read_bytes()
    width = int.from_bytes(raw[16:20], "big")  # the PNG header's IHDR width
    b64 = base64.b64encode(raw).decode("ascii")
    return (f"<img alt=\"{html.escape(alt)}\" style=\"max-width:{round(width * 96 / FIGURE_DPI)}px\" "
            f"src=\"data:image/png;base64,{b64}\">")


def _html_figure(data: dict[str, Any], folder: Path, name: str, *, extra: str = "", title: str | None = None) -> str:
    rel = data["figures"].get(name)
    if rel is None:
        return ""
    t, caption = FIGURE_TEXT.get(name, (name, ""))
    cap = f"<p class=\"caption\">{html.escape(caption)}</p>" if caption else ""
    return (f"<section id=\"{name}\"><h2>{html.escape(title or t)}</h2><figure>{_img(folder, rel, t)}</figure>{cap}"
            f"{extra}</section>\n")


def _html_study(data: dict[str, Any], folder: Path) -> str:
    st = data["study"]
    e = html.escape
    counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(st["counts"].items()))
    spent, ref = st["epochs_spent"], st["reference_epochs"]
    facts = [
        ("study", st["study_name"]), ("sampler / pruner", f"{st['sampler']} / HyperBand (resources "
                                                          f"{st['min_resource']}–{st['max_resource']} epochs, "
                                                          f"reduction factor {st['reduction_factor']})"),
        ("objective", f"{st['direction']} {st['metric']}"), ("seed", st["seed"]), ("trials", counts),
        ("best trial", f"#{st['best_trial']} ({fmt(st['best_value'], '.4f')})"),
        ("baseline trial", f"#{st['baseline_trial']}" if st["baseline_trial"] is not None else "none"),
        ("epochs spent", f"{spent:,} = {spent / ref:.1%} of the reference's {ref:,}"),
        ("wall time", _duration(st["wall_time"])), ("storage", st["storage"]),
    ]
    out = ["<section id=\"study\"><h2>The study</h2><dl class=\"protocol\">"]
    out += [f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts]
    out.append("</dl>")
    for name in ("budget", "best_so_far", "trial_curves", "importances"):
        rel = data["figures"].get(name)
        if rel:
            t, caption = FIGURE_TEXT[name]
            out.append(f"<figure style=\"margin-top:18px\">{_img(folder, rel, t)}</figure>")  # titled in the PNG
            if caption:
                out.append(f"<p class=\"caption\">{e(caption)}</p>")
    if st["importance_note"]:
        out.append(f"<p class=\"note\">{e(st['importance_note'])}</p>")
    out.append("<h3>Trials</h3>" + _html_trials(st) + "</section>\n")
    return "".join(out)


def _html_trials(st: dict[str, Any]) -> str:
    e = html.escape
    keys: list[str] = []
    for t in st["trials"]:
        keys += [k for k in t["params"] if k not in keys]
    head = ("<tr><th>#</th><th class=\"text\">state</th>" + "".join(f"<th>{e(k)}</th>" for k in keys)
            + "<th>epochs</th><th>value</th><th>duration</th></tr>")
    rows = []
    for t in st["trials"]:
        mark = (" <span class=\"tuned\">best</span>" if t["number"] == st["best_trial"] else "") + (
            " <span class=\"baseline\">baseline</span>" if t["number"] == st["baseline_trial"] else "")
        rows.append(f"<tr><td>{t['number']}{mark}</td><td class=\"text\"><span class=\"state {e(str(t['state']))}\" "
                    f"title=\"{e(str(t['reason']))}\">{e(str(t['state']).lower())}</span></td>"
                    + "".join(f"<td>{e(fmt_param(t['params'].get(k)))}</td>" for k in keys)
                    + f"<td>{t['epochs']}</td><td>{fmt(t['value'], '.4f')}</td>"
                    + f"<td>{_duration(t['duration'])}</td></tr>")
    return f"<div class=\"scroll\"><table>{head}{''.join(rows)}</table></div>"


# ------------------------------------------------------------------ Markdown


def render_markdown(data: dict[str, Any]) -> str:
    """The report as Markdown, with the figures as PNG files in ``figures/``."""
    has_base = "baseline" in data["models"]
    md = [f"# {data['title']}", "", f"{data['kind'].capitalize()} run `{data['run']}` · {data['created']} · "
          f"aerotune {data['aerotune_version']}", ""]
    v = data["verdict"]
    md += [f"> **{v['text']}**" if v["status"] == "single" else f"> **{v['headline']}**: {v['detail']}",
           ""]
    md += ["## Protocol", "", "| | |", "|---|---|"]
    md += [f"| {label} | {_md(_text(data['protocol'][k]))} |" for k, label in PROTOCOL_LABELS if k in data["protocol"]]
    md.append("")
    if data["notes"]:
        md += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    md += ["## " + ("Best parameters against the initial ones" if "study" in data else "Settings"), ""]
    md += (["| parameter | baseline | tuned |", "|---|---:|---:|"] if has_base
           else ["| setting | value |", "|---|---:|"])
    for r in data["parameters"]:
        name = f"**{r['name']}**" if r["changed"] else r["name"]
        base_cell = f"{fmt_param(r['baseline'])} | " if has_base else ""
        md.append(f"| {name} | {base_cell}{fmt_param(r['tuned'])} |")
    md += ["", "## Results", ""]
    md += (["| validation metric | baseline | tuned | change |", "|---|---:|---:|---:|"] if has_base
           else ["| validation metric | model |", "|---|---:|"])
    for r in data["headline"]:
        b, t = r.get("baseline"), r["tuned"]
        if has_base:
            md.append(f"| {r['label']} | {fmt(b, r['format'])} | {fmt(t, r['format'])} | "
                      f"{_delta(b, t, r['format'], r['lower_is_better'])[0]} |")
        else:
            md.append(f"| {r['label']} | {fmt(t, r['format'])} |")
    md.append("")
    for name in ("patches", "loss", "precision_recall"):
        md += _md_figure(data, name)
    names = [k for k in ("baseline", "tuned") if k in data["models"]]
    md += ["### Precision and recall at 0.5 (the reference's metric)", "",
           "| at threshold 0.5 | " + " | ".join(data["labels"][k] for k in names) + " |",
           "|---|" + "---:|" * len(names)]
    for split, label in (("train", "training"), ("val", "validation")):
        for key in ("precision_ref", "recall_ref"):
            md.append(f"| {label} {key.split('_')[0]} | "
                      + " | ".join(fmt(data["models"][k][split].get(key), ".4f") for k in names) + " |")
    md += ["", f"Training values from {data['train_patches_evaluated']} training patches.", ""]
    md += _md_figure(data, "class_iou", title="Per-class metrics")
    cols = ("iou", "f1", "precision", "recall", "ap")
    md += ["| class | share | " + " | ".join(f"{c} ({data['labels'][k][0].upper()})" for c in cols for k in names)
           + " |",
           "|---|---:|" + "---:|" * (len(cols) * len(names))]
    for i, cname in enumerate(data["classes"]):
        md.append(f"| {cname} | {fmt(data['models']['tuned']['per_class'][i]['share'], '.1%')} | "
                  + " | ".join(fmt(data["models"][k]["per_class"][i][c]) for c in cols for k in names) + " |")
    md += ["", " · ".join(f"{data['labels'][k][0].upper()} = {data['labels'][k]}" for k in names), ""]
    md += _md_figure(data, "confusion")
    if "study" in data:
        st = data["study"]
        spent, ref = st["epochs_spent"], st["reference_epochs"]
        counts = ", ".join(f"{n} {k.lower()}" for k, n in sorted(st["counts"].items()))
        md += ["## The study", "", f"Study `{st['study_name']}`: {counts}; best trial #{st['best_trial']} "
               f"({fmt(st['best_value'], '.4f')}), baseline trial "
               f"{'#' + str(st['baseline_trial']) if st['baseline_trial'] is not None else 'none'}; "
               f"{spent:,} epochs spent = {spent / ref:.1%} of the reference's {ref:,}; wall time "
               f"{_duration(st['wall_time'])}.", ""]
        for name in ("budget", "best_so_far", "trial_curves", "importances"):
            md += _md_figure(data, name, level="###")
        if st["importance_note"]:
            md += [f"*{st['importance_note']}*", ""]
        keys: list[str] = []
        for t in st["trials"]:
            keys += [k for k in t["params"] if k not in keys]
        md += ["### Trials", "", "| # | state | " + " | ".join(keys) + " | epochs | value | duration |",
               "|---:|---|" + "---:|" * (len(keys) + 3)]
        for t in st["trials"]:
            tag = " best" if t["number"] == st["best_trial"] else ""
            tag += " baseline" if t["number"] == st["baseline_trial"] else ""
            md.append(f"| {t['number']}{tag} | {str(t['state']).lower()} | "
                      + " | ".join(fmt_param(t["params"].get(k)) for k in keys)
                      + f" | {t['epochs']} | {fmt(t['value'], '.4f')} | {_duration(t['duration'])} |")
        md.append("")
    md += ["---", "", "Every number here is in `report.json`.", ""]
    return "\n".join(md)


def _md(v: Any) -> str:
    return str(v).replace("|", "\\|")


def _md_figure(data: dict[str, Any], name: str, *, title: str | None = None, level: str = "##") -> list[str]:
    rel = data["figures"].get(name)
    if rel is None:
        return []
    t, caption = FIGURE_TEXT.get(name, (name, ""))
    out = [f"{level} {title or t}", "", f"![{t}]({rel})", ""]
    if caption:
        out += [caption, ""]
    return out
