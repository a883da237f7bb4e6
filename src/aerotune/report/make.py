"""``make_report(run, baseline=..., out=...) -> ReportResult``: evaluate, draw and write one report folder.

The folder holds ``report.html`` (self-contained: images are data URIs, no external resource),
``report.md`` with ``figures/*.png`` beside it, and ``report.json`` with every number shown. It is
built in a temporary folder next to ``out`` and renamed into place, so a failed report leaves nothing
half-written.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.errors import RunError
from aerotune.files import check_output, mark, os_errors, replace_dir, temp_dir_beside
from aerotune.report import collect, figures
from aerotune.report.collect import ModelEval, RunInfo, Sources

log = logging.getLogger(__name__)

#: Patches shown as image | truth | predictions.
SHOWN_PATCHES = 10
#: Resolution of the figure PNGs.
FIGURE_DPI = 144


@dataclass
class ReportResult:
    """Where the report went, and the numbers it shows."""

    out: Path
    html: Path
    markdown: Path
    json: Path
    figures: dict[str, Path]
    data: dict[str, Any]


def make_report(run: str | Path, *, baseline: str | Path | None = None, out: str | Path, seed: int = 0,
                max_train_patches: int = 512, thresholds: int = 101, device: str = "auto",
                progress: Callable[[str], None] | None = None) -> ReportResult:
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

    Returns:
        A :class:`ReportResult` with the paths of ``report.html``, ``report.md`` and ``report.json``.
    """
    from aerotune.report.render import render_html, render_markdown

    out = Path(out)
    check_output(out, "report", inputs=[p for p in (run, baseline) if p is not None], inside_inputs=True)
    if thresholds < 3:
        raise RunError(f"thresholds = {thresholds} is too few for a precision-recall curve; use 101 (the default)")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    src = collect.gather(run, baseline)
    data, figs = _assemble(src, seed=seed, max_train_patches=max_train_patches, thresholds=thresholds,
                           device=device, say=say)
    with os_errors(out, "write the report"):  # a full disk or a size limit: one line naming --out
        tmp = temp_dir_beside(out)
        try:
            (tmp / "figures").mkdir(parents=True)
            mark(tmp, "report")
            say("drawing figures")
            paths: dict[str, Path] = {}
            with figures.style():
                for name, make in figs.items():
                    fig = make()
                    figures.save(fig, tmp / "figures" / f"{name}.png", dpi=FIGURE_DPI)
                    paths[name] = Path("figures") / f"{name}.png"
            data["figures"] = {k: str(v) for k, v in paths.items()}
            data["seconds"] = round(time.perf_counter() - t0, 1)
            (tmp / "report.json").write_text(json.dumps(_clean(data), indent=1, allow_nan=False))
            (tmp / "report.md").write_text(render_markdown(data), encoding="utf-8")
            (tmp / "report.html").write_text(render_html(data, tmp), encoding="utf-8")
            replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("report written to %s in %.0f s", out, time.perf_counter() - t0)
    return ReportResult(out, out / "report.html", out / "report.md", out / "report.json",
                        {k: out / v for k, v in paths.items()}, data)


# ------------------------------------------------------------------ assembling the numbers


def _assemble(src: Sources, *, seed: int, max_train_patches: int, thresholds: int, device: str,
              say: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, Callable]]:
    tuned, base = src.tuned, src.baseline
    cache = collect.open_run_cache(tuned)
    palette = cache.palette
    val_idx = list(tuned.split.val)
    if not val_idx:
        raise RunError(f"{tuned.path}: the run has no validation patches; train with a validation split")
    shown_pos = collect.pick_patches(len(val_idx), SHOWN_PATCHES, seed)
    shown_idx = [val_idx[i] for i in shown_pos]
    train_all = list(tuned.split.train)
    train_idx = (sorted(np.random.default_rng([seed, 1]).choice(train_all, max_train_patches, replace=False).tolist())
                 if len(train_all) > max_train_patches else train_all)

    evals: dict[str, ModelEval] = {}
    runs: dict[str, RunInfo] = {"tuned": tuned}
    if base is not None:
        runs["baseline"] = base
    for name, r in runs.items():
        say(f"evaluating the {name} model")
        evals[name] = collect.evaluate_model(
            r, cache, val_idx, train_idx, shown_pos, thresholds=thresholds, device=device,
            progress=lambda what, name=name: say(f"evaluating the {name} model on {what}"))

    te, be = evals["tuned"], evals.get("baseline")
    label = "tuned" if base is not None else "model"  # one run alone is not "tuned"
    names = list(palette.names)
    data: dict[str, Any] = {
        "aerotune_version": _version(),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kind": src.kind,
        "run": str(Path(src.study.path if src.study else tuned.path).resolve()),
        "tuned_run": str(tuned.path.resolve()),
        "baseline_run": str(base.path.resolve()) if base else None,
        "title": _title(src),
        "labels": {"tuned": label, "baseline": "baseline"},
        "classes": names,
        "colors": palette.hex_colors,
        "seed": seed,
        "shown_patches": shown_idx,
        "train_patches_evaluated": len(train_idx),
        "val_patches_evaluated": len(val_idx),
        "thresholds": thresholds,
        "notes": list(src.notes),
        "protocol": _protocol(tuned, cache, seed=seed, train_eval=len(train_idx), thresholds=thresholds,
                              compared=base is not None),
        "parameters": _parameters(src),
        "models": {k: _model_numbers(runs[k], e, names) for k, e in evals.items()},
    }
    data["verdict"] = _verdict(data["models"], src)
    data["headline"] = _headline(data["models"])
    if src.study is not None:
        data["study"] = _study_numbers(src, say)

    images = np.asarray(cache.images[np.asarray(shown_idx)])
    truths = np.asarray(cache.masks[np.asarray(shown_idx)])
    labels = [f"patch {i}" for i in shown_idx]
    figs: dict[str, Callable] = {
        "patches": lambda: figures.patches_figure(images, truths, te.predictions,
                                                  be.predictions if be else None, palette, labels=labels,
                                                  tuned_label=label),
        "loss": lambda: figures.loss_figure(tuned.history, base.history if base else None, tuned_best=tuned.best_epoch,
                                            baseline_best=base.best_epoch if base else None, tuned_label=label),
        "precision_recall": lambda: figures.pr_figure(
            te, be, palette, tuned_point=(te.val["precision_ref"], te.val["recall_ref"]),
            baseline_point=(be.val["precision_ref"], be.val["recall_ref"]) if be else None, tuned_label=label),
        "class_iou": lambda: figures.class_iou_figure(names, [te.val[f"iou_{n}"] for n in names],
                                                      [be.val[f"iou_{n}"] for n in names] if be else None,
                                                      tuned_label=label),
        "confusion": lambda: figures.confusion_figure(
            [(f"{label} model", te.confusion)] + ([("baseline model", be.confusion)] if be else []), names),
    }
    if src.study is not None:
        st = data["study"]
        figs["budget"] = lambda: figures.budget_figure(st["epochs_spent"], st["reference_epochs"])
        figs["best_so_far"] = lambda: figures.best_so_far_figure(
            st["trials"], direction=st["direction"], metric=st["metric"])
        figs["trial_curves"] = lambda: figures.trial_curves_figure(
            st["trials"], best=st["best_trial"], baseline=st["baseline_trial"], metric=st["metric"])
        if st["importances"]:
            figs["importances"] = lambda: figures.importance_figure(st["importances"])
    return data, figs


def _version() -> str:
    from aerotune import __version__

    return __version__


def _title(src: Sources) -> str:
    if src.study is not None:
        return f"Tuning report: {src.study.study.get('study_name') or src.study.path.name}"
    return f"Training report: {src.tuned.path.name}"


def _protocol(run: RunInfo, cache, *, seed: int, train_eval: int, thresholds: int, compared: bool) -> dict[str, Any]:
    d, t = run.config.data, run.config.train
    m = cache.manifest
    split = run.split
    split_text = {"random": f"random {1 - d.val_fraction:.0%}/{d.val_fraction:.0%}", "image": "whole images held out",
                  "tile": "whole tile folders held out"}.get(split.method, split.method)
    return {
        "data": m.get("root", str(cache.root)),
        "images": len(cache.sources),
        "classes": ", ".join(cache.palette.names),
        "patch_size": cache.patch_size,
        "scale": d.scale,
        "mode": d.mode,
        "unknown_colors": d.unknown_colors,
        "split": f"{split_text}, seed {split.seed}",
        "patches": f"{len(split.train)} training, {len(split.val)} validation",
        "normalization": d.normalization,
        "augment": d.augment,
        "loss": t.loss if t.loss != "dice_focal" else
        f"dice (×{t.dice_weight:g}) + focal (×{t.focal_weight:g}, γ {t.focal_gamma:g}, α {t.focal_alpha:g})",
        "training_seed": t.seed,
        "evaluated": f"{'each' if compared else 'the'} model's checkpoint with the lowest validation loss, on "
                     f"{'the tuned' if compared else 'its'} run's {len(split.val)} validation patches and "
                     f"{train_eval} training patches",
        "patch_seed": seed,
        "pr_thresholds": thresholds,
        "ignored_pixels": "skipped in every metric" if d.unknown_colors == "ignore" else "none (unknown colours "
                                                                                      "are errors)",
    }


def _parameters(src: Sources) -> list[dict[str, Any]]:
    """Rows of parameter | baseline (initial) | tuned: the searched ones, or every setting that differs."""
    from aerotune.config import resolve_key

    tuned, base = src.tuned, src.baseline
    keys: list[str] = []
    if src.study is not None:
        space = src.study.study.get("space") or {}
        keys = list(space) if isinstance(space, dict) else [s.get("name") for s in space if isinstance(s, dict)]
        best = next((t for t in src.study.trials if t.get("number") == src.study.best_trial), {})
        keys += [k for k in (best.get("params") or {}) if k not in keys]
    always = ["train.learning_rate", "train.batch_size", "model.activation", "train.epochs"]
    flat_t = _flat(tuned.config_dict)
    flat_b = _flat(base.config_dict) if base else {}
    if base is not None:
        keys += [k for k in flat_t if flat_t.get(k) != flat_b.get(k) and k not in collect.IGNORED_SETTINGS]
    keys += always
    rows, seen = [], set()
    for key in keys:
        try:
            section, name = resolve_key(str(key))
        except Exception:  # noqa: BLE001 - a study parameter that is not a config key: show it as given
            section, name = None, str(key)
        full = f"{section}.{name}" if section else name
        if full in seen:
            continue
        seen.add(full)
        tv = flat_t.get(full)
        bv = flat_b.get(full) if base else None
        rows.append({"name": full, "baseline": bv, "tuned": tv, "changed": base is not None and tv != bv})
    return rows


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, sec in d.items() if isinstance(sec, dict) for k, v in sec.items()}


def _model_numbers(run: RunInfo, ev: ModelEval, names: list[str]) -> dict[str, Any]:
    v = ev.val
    per_class = []
    total = sum(sum(r) for r in ev.confusion) or 1
    for k, n in enumerate(names):
        per_class.append({"class": n, "iou": v[f"iou_{n}"], "f1": v[f"f1_{n}"], "precision": v[f"precision_{n}"],
                          "recall": v[f"recall_{n}"], "ap": ev.ap_class[k],
                          "share": sum(ev.confusion[k]) / total})
    return {
        "run": str(run.path.resolve()),
        "val_patches": ev.val_patches,
        "epochs": len(run.history),
        "status": run.metrics.get("status"),
        "best_epoch": run.best_epoch,
        "final_val_loss": run.final_val_loss,
        "final_train_loss": float(run.history[-1]["train_loss"]),
        "history_best_val_loss": run.metrics.get("best_val_loss"),
        "val": {k: v[k] for k in ("loss", "pixel_accuracy", "majority_rate", "mean_iou", "mean_iou_labelled",
                                  "mean_f1", "precision_ref", "recall_ref") if k in v},
        "train": {k: ev.train[k] for k in ("loss", "pixel_accuracy", "mean_iou", "precision_ref", "recall_ref")
                  if k in ev.train},
        "ap_pooled": ev.ap_pooled,
        "per_class": per_class,
        "confusion": ev.confusion,
        "curves": {"thresholds": ev.thresholds, "pooled": ev.pr_pooled,
                   "per_class": dict(zip(names, ev.pr_class))},
        "history": [{k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "val_mean_iou")} for h in run.history],
    }


def _verdict(models: dict[str, Any], src: Sources) -> dict[str, Any]:
    t = models["tuned"]["val"]
    if "baseline" not in models:
        return {"status": "single", "text": f"One model, no baseline: validation loss {t['loss']:.4f}, mean IoU "
                                            f"{t['mean_iou']:.3f}. Pass --baseline RUN to compare."}
    b = models["baseline"]["val"]
    comparable_loss = not any("loss settings" in n for n in src.notes)
    d_loss = t["loss"] - b["loss"]
    d_iou = t["mean_iou"] - b["mean_iou"]
    loss_better = d_loss < 0
    iou_better = d_iou > 0
    parts = []
    if comparable_loss:
        parts.append(f"validation loss {b['loss']:.4f} → {t['loss']:.4f} ({_pct(d_loss, b['loss'])})")
    parts.append(f"mean IoU {b['mean_iou']:.3f} → {t['mean_iou']:.3f} ({d_iou * 100:+.1f} points)")
    wins = [iou_better] + ([loss_better] if comparable_loss else [])
    if all(wins):
        status, head = "better", "Tuning paid off"
    elif not any(wins):
        status, head = "worse", "Tuning did not pay off"
    else:
        status, head = "mixed", "Mixed result"
    n = models["tuned"]["val_patches"]
    return {"status": status, "headline": head,
            "text": f"{head}: " + "; ".join(parts) + f", on the same {n} validation patches.",
            "val_loss": {"baseline": b["loss"], "tuned": t["loss"], "change": d_loss},
            "mean_iou": {"baseline": b["mean_iou"], "tuned": t["mean_iou"], "change": d_iou}}


def _pct(delta: float, base: float) -> str:
    return f"{delta / base:+.1%}" if base else f"{delta:+.4f}"


def _headline(models: dict[str, Any]) -> list[dict[str, Any]]:
    """The numbers table: label, format, lower-is-better, baseline and tuned values."""
    rows = [
        ("validation loss (evaluated checkpoint)", lambda m: m["val"]["loss"], ".4f", True),
        ("validation loss, final epoch (as the reference reported)", lambda m: m["final_val_loss"], ".4f", True),
        ("training loss, final epoch", lambda m: m["final_train_loss"], ".4f", True),
        ("epochs trained (evaluated checkpoint's epoch)", lambda m: f"{m['epochs']} ({m['best_epoch']})", "", None),
        ("mean IoU", lambda m: m["val"]["mean_iou"], ".3f", False),
        ("mean IoU without Unlabeled", lambda m: m["val"]["mean_iou_labelled"], ".3f", False),
        ("mean F1", lambda m: m["val"]["mean_f1"], ".3f", False),
        ("pixel accuracy", lambda m: m["val"]["pixel_accuracy"], ".3f", False),
        ("majority-class rate (predict the commonest class everywhere)", lambda m: m["val"]["majority_rate"], ".3f",
         None),
        ("average precision, pooled one-hot pixels", lambda m: m["ap_pooled"], ".3f", False),
    ]
    out = []
    for label, get, fmt, lower in rows:
        out.append({"label": label, "format": fmt, "lower_is_better": lower,
                    **{k: get(m) for k, m in models.items()}})
    return out


def _study_numbers(src: Sources, say: Callable[[str], None]) -> dict[str, Any]:
    info = src.study
    assert info is not None
    say("analysing the study")
    importances, note = collect.load_importances(info)
    trials = []
    for t in sorted(info.trials, key=lambda t: t.get("number", 0)):
        trials.append({"number": t.get("number"), "state": t.get("state"), "status": t.get("status"),
                       "params": t.get("params") or {},
                       "epochs": collect.trial_epochs(t), "value": t.get("value"),
                       "duration": t.get("duration", t.get("duration_s")),
                       "reason": t.get("reason") or t.get("status") or "",
                       "curve": collect.trial_curve(t)})
    spent = info.summary.get("epochs_spent")
    if spent is None:
        spent = sum(t["epochs"] for t in trials)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    s = info.study
    return {
        "study_name": s.get("study_name"), "storage": s.get("storage"), "direction": s.get("direction", "minimize"),
        "metric": s.get("metric", "val_loss"), "sampler": s.get("sampler"), "seed": s.get("seed"),
        "min_resource": s.get("min_resource"), "max_resource": s.get("max_resource"),
        "reduction_factor": s.get("reduction_factor"), "space": s.get("space"),
        "best_trial": info.best_trial, "baseline_trial": info.baseline_trial,
        "best_value": info.summary.get("best_value"),
        "epochs_spent": int(spent), "reference_epochs": int(s.get("reference_epochs") or
                                                            info.summary.get("reference_epochs") or 3455),
        "wall_time": info.summary.get("wall_time", info.summary.get("wall_seconds")),
        "counts": counts, "trials": trials, "importances": importances, "importance_note": note,
    }


def _clean(o: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, Path):
        return str(o)
    return o
