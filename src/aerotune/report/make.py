"""``make_report(run, baseline=..., out=...) -> ReportResult``: evaluate, draw and write one report folder.

The folder holds ``report.html`` (self-contained: images are data URIs, no external resource),
``report.md`` with ``figures/*.png`` beside it, and ``report.json`` with every number shown. It is
built in a temporary folder next to ``out`` and renamed into place, so a failed report leaves nothing
half-written.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.errors import RunError
from aerotune.files import write_json, write_text
from aerotune.outputs import check_output, writing
from aerotune.report import collect, figures, numbers, study_figures
from aerotune.report.collect import Sources
from aerotune.report.evaluate import ModelEval, evaluate_model, open_run_cache, pick_patches
from aerotune.report.figures import FIGURE_DPI
from aerotune.report.records import ReportRecord, StudyNumbers
from aerotune.report.seeds import check_seeds, plan_seeds, seed_verdict
from aerotune.report.whole import evaluate_whole
from aerotune.train.records import TrainingRun

log = logging.getLogger(__name__)

#: Patches shown as image | truth | predictions.
SHOWN_PATCHES = 10


@dataclass
class ReportResult:
    """Where the report went, and the numbers it shows (``data``: ``report.json``'s object; ``record``: the same as
    a :class:`ReportRecord`)."""

    out: Path
    html: Path
    markdown: Path
    json: Path
    figures: dict[str, Path]
    data: dict[str, Any]
    record: ReportRecord | None = None


def make_report(
    run: str | Path,
    *,
    baseline: str | Path | None = None,
    out: str | Path,
    seed: int = 0,
    max_train_patches: int = 512,
    thresholds: int = 101,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    seeds: int | None = 0,
) -> ReportResult:
    """Write the report of a tuning run or a training run into the folder ``out``.

    Args:
        run: a tuning run folder (tuned = its best trial, baseline = its baseline trial) or a training run.
        baseline: a training run to compare with (overrides a study's baseline trial).
        out: the report folder; an earlier report there is replaced, any other non-empty folder is refused.
        seed: picks the shown validation patches and the sample of training patches; saved in the report.
        max_train_patches: at most this many training patches are evaluated for training precision/recall.
        thresholds: number of equally spaced score thresholds of the binned precision-recall curves.
        device: ``auto``, ``cpu`` or ``cuda[:N]`` for the evaluation.
        progress: called with a short description of each step.
        seeds: retrain the compared trials of a study with this many training seeds each and judge the difference
            against the seed noise (``report/seeds.py``); 0 (the default here) turns it off; None (the CLI's
            default): 3 when the study's own epochs cover them, else 0 with a note.

    Returns:
        A :class:`ReportResult` with the paths of ``report.html``, ``report.md`` and ``report.json``.
    """
    out = Path(out)
    inputs = [Path(p) for p in (run, baseline) if p is not None]
    check_seeds(seeds)
    check_output(out, "report", inputs=inputs, inside_inputs=True)
    if thresholds < 3:
        raise RunError(f"thresholds = {thresholds} is too few for a precision-recall curve; use 101 (the default)")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    src = collect.gather(run, baseline)
    plan = plan_seeds(src, seeds, external_baseline=baseline is not None)  # checked before anything is written
    report, figs = _assemble(
        src, seed=seed, max_train_patches=max_train_patches, thresholds=thresholds, device=device, say=say
    )
    report = replace(report, notes=report.notes + ([plan.note] if plan.note else []))
    if plan.k:
        report = replace(report, seeds=seed_verdict(plan, src, labels=report.labels, device=device, say=say))
    with writing(out, "report", inputs=inputs, replace=True, inside_inputs=True) as place:
        paths = _draw(figs, place.path, say)
        report = replace(report, figures={k: str(v) for k, v in paths.items()})
        report = replace(report, seconds=round(time.perf_counter() - t0, 1))
        report = _write(report, place.path)
    log.info("report written to %s in %.0f s", out, time.perf_counter() - t0)
    figures_at = {k: out / v for k, v in paths.items()}
    return ReportResult(
        out, out / "report.html", out / "report.md", out / "report.json", figures_at, report.to_json(), report
    )


def _draw(figs: dict[str, Callable], folder: Path, say: Callable[[str], None]) -> dict[str, Path]:
    """Draw each figure into ``folder/figures``; their paths relative to ``folder``."""
    (folder / "figures").mkdir()
    say("drawing figures")
    paths: dict[str, Path] = {}
    with figures.style():
        for name, make in figs.items():
            fig = make()
            figures.save(fig, folder / "figures" / f"{name}.png", dpi=FIGURE_DPI)
            paths[name] = Path("figures") / f"{name}.png"
    return paths


def _write(report: ReportRecord, folder: Path) -> ReportRecord:
    """Write ``report.json``, ``report.md`` and ``report.html``; the record as read back from its JSON (plain
    numbers, types checked), which both renderings show."""
    from aerotune.report.render import render_html, render_markdown

    report = ReportRecord.from_json(_plain(report.to_json()))
    write_json(folder / ReportRecord.FILE, report.to_json())
    write_text(folder / "report.md", render_markdown(report))
    write_text(folder / "report.html", render_html(report, folder))
    return report


# ------------------------------------------------------------------ assembling the numbers


@dataclass(frozen=True)
class _Patches:
    """The patches a report evaluates: validation (all), shown (positions in them and cache indices), training."""

    val: list[int]
    shown_pos: list[int]
    shown: list[int]
    train: list[int]


def _patches(tuned: TrainingRun, seed: int, max_train_patches: int) -> _Patches:
    """Every validation patch, the shown ones and a sample of at most ``max_train_patches`` training patches."""
    val_idx = list(tuned.split.val)
    if not val_idx:
        raise RunError(f"{tuned.path}: the run has no validation patches; train with a validation split")
    shown_pos = pick_patches(len(val_idx), SHOWN_PATCHES, seed)
    train_all = list(tuned.split.train)
    train_idx = (
        sorted(np.random.default_rng([seed, 1]).choice(train_all, max_train_patches, replace=False).tolist())
        if len(train_all) > max_train_patches
        else train_all
    )
    return _Patches(val_idx, shown_pos, [val_idx[i] for i in shown_pos], train_idx)


def _runs(src: Sources) -> dict[str, TrainingRun]:
    """The compared runs by role: tuned, then baseline and default recipe when there are."""
    runs: dict[str, TrainingRun] = {"tuned": src.tuned}
    if src.baseline is not None:
        runs["baseline"] = src.baseline
    if src.default is not None:
        runs["default"] = src.default
    return runs


def _evaluate(
    runs: dict[str, TrainingRun], cache, patches: _Patches, *, thresholds: int, device: str, say: Callable[[str], None]
) -> dict[str, ModelEval]:
    """Evaluate each run's best checkpoint on the same patches."""
    evals: dict[str, ModelEval] = {}
    for name, r in runs.items():
        say(f"evaluating the {name} model")
        evals[name] = evaluate_model(
            r,
            cache,
            patches.val,
            patches.train,
            patches.shown_pos,
            thresholds=thresholds,
            device=device,
            progress=lambda what, name=name: say(f"evaluating the {name} model on {what}"),
        )
    return evals


def _assemble(
    src: Sources, *, seed: int, max_train_patches: int, thresholds: int, device: str, say: Callable[[str], None]
) -> tuple[ReportRecord, dict[str, Callable]]:
    """Evaluate every compared model and gather the report's numbers, and the figures to draw (not drawn yet)."""
    cache = open_run_cache(src.tuned)
    patches = _patches(src.tuned, seed, max_train_patches)
    runs = _runs(src)
    evals = _evaluate(runs, cache, patches, thresholds=thresholds, device=device, say=say)
    names = list(cache.palette.names)
    models = {k: numbers.model_numbers(runs[k], e, names) for k, e in evals.items()}
    whole = evaluate_whole(src, cache, device=device, say=say)  # the held-out whole images, if the run has any
    models = {k: replace(m, whole=whole.models[k]) if k in whole.models else m for k, m in models.items()}
    report = ReportRecord(
        aerotune_version=numbers.version(),
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        kind=src.kind,
        run=str(Path(src.study.path if src.study else src.tuned.path).resolve()),
        tuned_run=str(src.tuned.path.resolve()),
        baseline_run=str(src.baseline.path.resolve()) if src.baseline else None,
        title=numbers.title(src),
        labels={
            "tuned": "tuned" if src.baseline is not None else "model",  # one run alone is not "tuned"
            "baseline": "reference" if src.default is not None else "baseline",
            "default": "default recipe",
        },
        classes=names,
        colors=cache.palette.hex_colors,
        colors_from=_colors_from(cache),
        seed=seed,
        shown_patches=patches.shown,
        train_patches_evaluated=len(patches.train),
        val_patches_evaluated=len(patches.val),
        thresholds=thresholds,
        notes=list(src.notes) + whole.notes + numbers.recipe_note(models),
        protocol=numbers.protocol(
            src.tuned,
            cache,
            seed=seed,
            train_eval=len(patches.train),
            thresholds=thresholds,
            compared=src.baseline is not None,
        ),
        parameters=numbers.parameters(src),
        models=models,
        whole_images=whole.section(),
        verdict=numbers.verdict(models, src),
        headline=numbers.headline(models),
        study=numbers.study_numbers(src, say) if src.study is not None else None,
    )
    return report, _figures(report, src, cache, evals, patches.shown)


def _colors_from(cache) -> str:
    """Where the palette's colours come from, for the patch figure's caption: the colour masks themselves, the
    masks' PNG palette (masks of class ids), or aerotune's fixed display colours (masks of ids without one)."""
    if not cache.palette.by_id:
        return "masks"
    return "mask palette" if cache.manifest.get("mask_colors") else "fixed"


def _figures(
    report: ReportRecord, src: Sources, cache, evals: dict[str, ModelEval], shown: list[int]
) -> dict[str, Callable]:
    """The report's figures by name, each drawn when called."""
    tuned, base = src.tuned, src.baseline
    te, be = evals["tuned"], evals.get("baseline")
    label, names, palette = report.labels["tuned"], report.classes, cache.palette
    images = np.asarray(cache.images[np.asarray(shown)])
    if images.shape[-1] != 3:  # a GeoTIFF cache: its first three bands as RGB, or its first band in grey
        images = images[..., :3] if images.shape[-1] > 3 else np.repeat(images[..., :1], 3, axis=-1)
    truths = np.asarray(cache.masks[np.asarray(shown)])
    figs: dict[str, Callable] = {
        "patches": lambda: figures.patches_figure(
            images,
            truths,
            te.predictions,
            be.predictions if be else None,
            palette,
            labels=[f"patch {i}" for i in shown],
            tuned_label=label,
        ),
        "loss": lambda: figures.loss_figure(
            tuned.history,
            base.history if base else None,
            tuned_best=tuned.best_epoch,
            baseline_best=base.best_epoch if base else None,
            tuned_label=label,
        ),
        "precision_recall": lambda: figures.pr_figure(
            te,
            be,
            palette,
            tuned_point=(te.val["precision_ref"], te.val["recall_ref"]),
            baseline_point=(be.val["precision_ref"], be.val["recall_ref"]) if be else None,
            tuned_label=label,
        ),
        "class_iou": lambda: figures.class_iou_figure(
            names,
            [te.val[f"iou_{n}"] for n in names],
            [be.val[f"iou_{n}"] for n in names] if be else None,
            tuned_label=label,
        ),
        "confusion": lambda: figures.confusion_figure(
            [(f"{label} model", te.confusion)] + ([("baseline model", be.confusion)] if be else []), names
        ),
    }
    return figs | (_study_figures(report.study) if report.study is not None else {})


def _study_figures(st: StudyNumbers) -> dict[str, Callable]:
    """The study's figures by name: budget, best so far, learning curves and (when there are) importances."""
    figs: dict[str, Callable] = {
        "budget": lambda: study_figures.budget_figure(st.epochs_spent, st.reference_epochs),
        "best_so_far": lambda: study_figures.best_so_far_figure(st.trials, direction=st.direction, metric=st.metric),
        "trial_curves": lambda: study_figures.trial_curves_figure(
            st.trials, best=st.best_trial, baseline=st.baseline_trial, metric=st.metric
        ),
    }
    if st.importances:
        figs["importances"] = lambda: study_figures.importance_figure(st.importances)
    return figs


def _plain(o: Any) -> Any:
    """numpy scalars as plain numbers, recursively (the rest of strict JSON is ``files.write_json``'s job)."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    return o
