"""The numbers of a report, built from the gathered runs and their evaluations (the sections of ``report.json``)."""

from __future__ import annotations

import json
from collections.abc import Callable

from aerotune.config import keys_with_role
from aerotune.report.collect import Sources
from aerotune.report.evaluate import ModelEval
from aerotune.report.importances import load_importances
from aerotune.report.records import (
    Change,
    ClassNumbers,
    Curves,
    HeadlineRow,
    HistoryPoint,
    ModelNumbers,
    ParameterRow,
    Protocol,
    StudyNumbers,
    TrialRow,
    Verdict,
)
from aerotune.train.records import TrainingRun
from aerotune.tune.settings import METRIC_NAMES

#: Settings that describe the machine or the console, not the experiment.
IGNORED_SETTINGS = keys_with_role("runtime")


def version() -> str:
    """aerotune's version, for the report's header."""
    from aerotune import __version__

    return __version__


def title(src: Sources) -> str:
    """The report's title: the study's name, or the training run's folder."""
    if src.study is not None:
        return f"Tuning report: {src.study.study.study_name}"
    return f"Training report: {src.tuned.path.name}"


def protocol(run: TrainingRun, cache, *, seed: int, train_eval: int, thresholds: int, compared: bool) -> Protocol:
    """How the models were trained and evaluated: the protocol table."""
    d, t = run.config.data, run.config.train
    m = cache.manifest
    split = run.split
    split_text = {
        "random": f"random {1 - d.val_fraction:.0%}/{d.val_fraction:.0%}",
        "image": "whole images held out",
        "tile": "whole tile folders held out",
    }.get(split.method, split.method)
    return Protocol(
        data=m.get("root", str(cache.root)),
        images=len(cache.sources),
        classes=", ".join(cache.palette.names),
        patch_size=cache.patch_size,
        scale=d.scale,
        mode=d.mode,
        unknown_colors=d.unknown_colors,
        split=f"{split_text}, seed {split.seed}",
        patches=f"{len(split.train)} training, {len(split.val)} validation",
        normalization=d.normalization,
        augment=d.augment,
        loss=t.loss
        if t.loss != "dice_focal"
        else f"dice (×{t.dice_weight:g}) + focal (×{t.focal_weight:g}, γ {t.focal_gamma:g}, α {t.focal_alpha:g})",
        training_seed=t.seed,
        evaluated=f"{'each' if compared else 'the'} model's checkpoint with the lowest validation loss, on "
        f"{'the tuned' if compared else 'its'} run's {len(split.val)} validation patches and "
        f"{train_eval} training patches",
        patch_seed=seed,
        pr_thresholds=thresholds,
        ignored_pixels="skipped in every metric"
        if d.unknown_colors == "ignore"
        else "none (unknown colours are errors)",
        color_tolerance=f"{d.color_tolerance} per channel: a mask colour takes the class of its single nearest "
        "palette colour within it (lossy masks)"
        if getattr(d, "color_tolerance", 0)
        else None,
        test=_test_text(run),
        skipped=_skipped_text(m.get("skipped") or []),
    )


def _test_text(run: TrainingRun) -> str | None:
    """The protocol's test portion: how many whole images were held out and how."""
    d, split = run.config.data, run.split
    if not split.test_images:
        return None
    how = f"tiles {d.test_tiles}" if d.test_tiles else f"{d.test_fraction:.0%} of the images, seed {split.seed}"
    return (
        f"{len(split.test_images)} whole image(s) held out ({how}): none of their patches trained or "
        f"validated; evaluated whole, stitched from windows"
    )


def _skipped_text(skipped: list) -> str | None:
    """The pairs and files --skip-bad-pairs left out of the cache, with why (the first five)."""
    if not skipped:
        return None
    shown = "; ".join(
        f"{' + '.join(str(e[k]) for k in ('image', 'mask', 'file') if e.get(k))}: {e.get('reason', '')}"
        for e in skipped[:5]
    )
    more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return f"{len(skipped)} left out by --skip-bad-pairs ({shown}{more}; all in the cache's manifest.json)"


def parameters(src: Sources) -> list[ParameterRow]:
    """Rows of parameter | baseline (initial) | tuned: the searched ones, or every setting that differs."""
    from aerotune.config import resolve_key

    base, default = src.baseline, src.default
    flat_t = _flat(src.tuned.config_dict)
    flat_b = _flat(base.config_dict) if base else {}
    flat_d = _flat(default.config_dict) if default is not None else {}
    rows, seen = [], set()
    for key in _parameter_keys(src, flat_t, flat_b, flat_d):
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
        if default is None:
            rows.append(ParameterRow(full, bv, tv, changed=base is not None and tv != bv))
        else:
            dv = flat_d.get(full)
            changed = len({json.dumps(v) for v in (bv, dv, tv)}) > 1
            rows.append(ParameterRow(full, bv, tv, changed=changed, default=dv, shows_default=True))
    return rows


def _parameter_keys(
    src: Sources, flat_t: dict[str, object], flat_b: dict[str, object], flat_d: dict[str, object]
) -> list[str]:
    """The settings the parameter table shows: the searched ones, those that differ, then four always."""
    keys: list[str] = []
    if src.study is not None:
        keys = list(src.study.study.space)
        best = next((t for t in src.study.trials if t.number == src.study.best_trial), None)
        keys += [k for k in (best.params if best else {}) if k not in keys]
    if src.baseline is not None:
        keys += [k for k in flat_t if flat_t.get(k) != flat_b.get(k) and k not in IGNORED_SETTINGS]
    if flat_d:
        keys += [k for k in flat_d if flat_d.get(k) != flat_b.get(k) and k not in IGNORED_SETTINGS]
    return keys + ["train.learning_rate", "train.batch_size", "model.activation", "train.epochs"]


def _flat(config: dict[str, object]) -> dict[str, object]:
    """A run's settings as ``section.name`` -> value."""
    return {f"{s}.{k}": v for s, sec in config.items() if isinstance(sec, dict) for k, v in sec.items()}


def model_numbers(run: TrainingRun, ev: ModelEval, names: list[str]) -> ModelNumbers:
    """One model's numbers: its run, its validation and training metrics, per class, confusion, curves, history."""
    v = ev.val
    total = sum(sum(r) for r in ev.confusion) or 1
    per_class = [
        ClassNumbers(
            name=n,
            iou=v[f"iou_{n}"],
            f1=v[f"f1_{n}"],
            precision=v[f"precision_{n}"],
            recall=v[f"recall_{n}"],
            ap=ev.ap_class[k],
            share=sum(ev.confusion[k]) / total,
        )
        for k, n in enumerate(names)
    ]
    return ModelNumbers(
        run=str(run.path.resolve()),
        val_patches=ev.val_patches,
        epochs=len(run.history),
        status=run.metrics.status,
        best_epoch=run.best_epoch,
        final_val_loss=run.final_val_loss,
        final_train_loss=float(run.history[-1]["train_loss"]),
        history_best_val_loss=run.metrics.best_val_loss,
        val={k: v[k] for k in METRIC_NAMES if k in v},
        train={
            k: ev.train[k]
            for k in ("loss", "pixel_accuracy", "mean_iou", "precision_ref", "recall_ref")
            if k in ev.train
        },
        ap_pooled=ev.ap_pooled,
        per_class=per_class,
        confusion=ev.confusion,
        curves=Curves(ev.thresholds, ev.pr_pooled, dict(zip(names, ev.pr_class))),
        history=[
            HistoryPoint(**{k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "val_mean_iou")})
            for h in run.history
        ],
    )


def verdict(models: dict[str, ModelNumbers], src: Sources) -> Verdict:
    """Tuned against baseline: on the test images when both models have them, else on the validation patches."""
    tuned, base = models["tuned"], models.get("baseline")
    test_t = (tuned.whole or {}).get("test")
    test_b = (base.whole or {}).get("test") if base is not None else None
    basis, why = _basis(src, test_t, base is None or test_b is not None)
    t = tuned.val
    val_text = f"validation loss {t['loss']:.4f}, mean IoU {t['mean_iou']:.3f}"
    if base is None:
        text = f"One model, no baseline: {val_text}."
        if basis == "test":
            text = (
                f"One model, no baseline: test mean IoU {test_t.mean_iou:.3f}, pixel accuracy "
                f"{test_t.pixel_accuracy:.3f} on {test_t.images} whole image(s); {val_text}."
            )
        return Verdict("single", f"{text} Pass --baseline RUN to compare.", basis=basis, basis_text=why)
    b = base.val
    d_loss, d_iou = t["loss"] - b["loss"], t["mean_iou"] - b["mean_iou"]
    parts = []
    if src.comparable_loss:
        parts.append(f"validation loss {b['loss']:.4f} → {t['loss']:.4f} ({_pct(d_loss, b['loss'])})")
    parts.append(f"mean IoU {b['mean_iou']:.3f} → {t['mean_iou']:.3f} ({d_iou * 100:+.1f} points)")
    val_detail = "; ".join(parts) + f", on the same {tuned.val_patches} validation patches"
    if basis == "test":
        wins, detail, extra = _test_comparison(test_t, test_b, val_detail)
    else:
        wins = [d_iou > 0] + ([d_loss < 0] if src.comparable_loss else [])
        detail, extra = val_detail + ".", {}
    status, head = _outcome(wins, "The default recipe and tuning" if "default" in models else "Tuning")
    return Verdict(
        status,
        f"{head}: {detail}",
        head,
        detail,
        val_loss=Change(b["loss"], t["loss"], d_loss),
        mean_iou=Change(b["mean_iou"], t["mean_iou"], d_iou),
        basis=basis,
        basis_text=why,
        **extra,
    )


def _basis(src: Sources, test_t: object, baseline_has_test: bool) -> tuple[str, str]:
    """Which numbers decide (test when the tuned model and any baseline have test numbers), and the sentence why."""
    chose = "the best trial and each run's checkpoint" if src.study is not None else "the checkpoint"
    if test_t is not None and baseline_has_test:
        return "test", (
            f"Verdict on the {test_t.images} test image(s), whole and stitched, which neither training nor the "
            f"choice of {chose} saw. The validation numbers beside it are biased upward: they made that choice."
        )
    return "validation", (
        f"Verdict on the validation patches, which also chose {chose}, so it is biased upward; hold out a test "
        "portion (--test-fraction or --test-tiles) for an unbiased one."
    )


def _test_comparison(test_t, test_b, val_detail: str) -> tuple[list[bool], str, dict[str, Change]]:
    """The verdict on the test images: which numbers improved, the sentence, and the verdict's test changes."""
    d_test = test_t.mean_iou - test_b.mean_iou
    d_acc = test_t.pixel_accuracy - test_b.pixel_accuracy
    detail = (
        f"mean IoU {test_b.mean_iou:.3f} → {test_t.mean_iou:.3f} ({d_test * 100:+.1f} points), pixel "
        f"accuracy {test_b.pixel_accuracy:.3f} → {test_t.pixel_accuracy:.3f} ({d_acc * 100:+.1f} points) "
        f"on the same {test_t.images} test image(s); beside it, {val_detail}."
    )
    extra = {
        "test_mean_iou": Change(test_b.mean_iou, test_t.mean_iou, d_test),
        "test_pixel_accuracy": Change(test_b.pixel_accuracy, test_t.pixel_accuracy, d_acc),
    }
    return [d_test > 0, d_acc > 0], detail, extra


def _outcome(wins: list[bool], what: str) -> tuple[str, str]:
    """better / worse / mixed and the headline (with a default-recipe trial the gain is the recipe's and tuning's)."""
    if all(wins):
        return "better", f"{what} paid off"
    if not any(wins):
        return "worse", f"{what} did not pay off"
    return "mixed", "Mixed result"


def _pct(delta: float, base: float) -> str:
    """A change as a percentage of ``base`` (an absolute change when ``base`` is 0)."""
    return f"{delta / base:+.1%}" if base else f"{delta:+.4f}"


#: The numbers table's rows: label, the value of a model, format, lower-is-better (None: neither).
HEADLINE_ROWS = [
    ("validation loss (evaluated checkpoint)", lambda m: m.val["loss"], ".4f", True),
    ("validation loss, final epoch (as the reference reported)", lambda m: m.final_val_loss, ".4f", True),
    ("training loss, final epoch", lambda m: m.final_train_loss, ".4f", True),
    ("epochs trained (evaluated checkpoint's epoch)", lambda m: f"{m.epochs} ({m.best_epoch})", "", None),
    ("mean IoU", lambda m: m.val["mean_iou"], ".3f", False),
    ("mean IoU without Unlabeled", lambda m: m.val["mean_iou_labelled"], ".3f", False),
    ("mean F1", lambda m: m.val["mean_f1"], ".3f", False),
    ("pixel accuracy", lambda m: m.val["pixel_accuracy"], ".3f", False),
    ("majority-class rate (predict the commonest class everywhere)", lambda m: m.val["majority_rate"], ".3f", None),
    ("average precision, pooled one-hot pixels", lambda m: m.ap_pooled, ".3f", False),
]


def headline(models: dict[str, ModelNumbers]) -> list[HeadlineRow]:
    """The numbers table: label, format, lower-is-better, baseline and tuned values."""
    rows = list(HEADLINE_ROWS)
    for set_name, what in (("test", "test images"), ("validation", "validation images")):
        if any(set_name in (m.whole or {}) for m in models.values()):
            for key, name in (("mean_iou", "mean IoU"), ("pixel_accuracy", "pixel accuracy")):
                rows.append((f"{name}, {what} (whole, stitched)", _whole_value(set_name, key), ".3f", False))
    return [HeadlineRow(label, fmt, lower, {k: get(m) for k, m in models.items()}) for label, get, fmt, lower in rows]


def _whole_value(set_name: str, key: str) -> Callable[[ModelNumbers], float | None]:
    """A model's ``key`` on one set of whole images (None without it)."""

    def get(m: ModelNumbers) -> float | None:
        whole = (m.whole or {}).get(set_name)
        return getattr(whole, key) if whole is not None else None

    return get


def study_numbers(src: Sources, say: Callable[[str], None]) -> StudyNumbers:
    """The study section: its settings, every trial, the budget spent and the parameter importances."""
    run = src.study
    assert run is not None and run.summary is not None  # gather() refuses a study without a complete trial
    say("analysing the study")
    importances, note = load_importances(run)
    trials = [
        TrialRow(
            number=t.number,
            state=t.state,
            status=t.status,
            params=t.params,
            epochs=t.epochs,
            value=t.value,
            duration=t.duration_s,
            reason=t.reason or t.status,
            curve=t.values,
        )
        for t in sorted(run.trials, key=lambda t: t.number)
    ]
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    s, summary = run.study, run.summary
    return StudyNumbers(
        study_name=s.study_name,
        storage=s.storage,
        direction=s.direction,
        metric=s.metric,
        sampler=s.sampler,
        seed=s.seed,
        min_resource=s.min_resource,
        max_resource=s.max_resource,
        reduction_factor=s.reduction_factor,
        space=s.space,
        best_trial=run.best_trial,
        baseline_trial=run.baseline_trial,
        best_value=summary.best_value,
        epochs_spent=summary.epochs_spent,
        reference_epochs=summary.reference_epochs,
        wall_time=summary.wall_seconds,
        counts=counts,
        trials=trials,
        importances=importances,
        importance_note=note,
    )


def recipe_note(models: dict[str, ModelNumbers]) -> list[str]:
    """What the recipe gave and what tuning gave on top of it (a study with a default-recipe trial)."""
    if not {"baseline", "default", "tuned"} <= set(models):
        return []
    r, d, t = (models[k].val["mean_iou"] for k in ("baseline", "default", "tuned"))
    return [
        f"Recipe and tuning, on the same validation patches: mean IoU {r:.3f} with the reference's recipe and "
        f"initial parameters, {d:.3f} with aerotune's default recipe untuned ({d - r:+.3f}: what the recipe gave), "
        f"{t:.3f} tuned ({t - d:+.3f}: what tuning gave on top)."
    ]
