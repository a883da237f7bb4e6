"""Metrics on whole stitched images (not patches): per-class IoU, mean IoU, pixel accuracy, confusion matrix.

Each image is segmented as ``aerotune predict`` would (streamed, blended windows) and compared with its mask
row block by row block, so no scene is held whole besides its mask. Counts are pooled over images (the
pooled IoU is computed from the summed confusion matrix, not averaged over images). Every mask is read and
checked before any work, with the rule of the other data commands: a colour outside the model's palette is an
error, or (``--unknown-colors ignore``) its pixels are skipped and counted. The majority-class rate (the share
of the commonest class among scored pixels: the pixel accuracy of predicting that class everywhere) stands
beside the pixel accuracy, so a model below it is visible.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from aerotune.config import DataConfig
from aerotune.data.masks import unknown_colors_message
from aerotune.data.sources import Sample, discover, discover_for
from aerotune.errors import DatasetError, PaletteError, RunError
from aerotune.files import write_json, write_text
from aerotune.outputs import check_output, writing
from aerotune.predict.io import gdal_cache
from aerotune.predict.run import DEFAULT_OVERLAP, SceneModel, mask_ids, open_for, segment_scene
from aerotune.reading import show

log = logging.getLogger(__name__)

SPLITS = ("test", "tile", "image", "all")


class Metrics(TypedDict):
    """The scores of one confusion matrix (None where no pixel was scored), as ``metrics.json`` holds them."""

    pixels: int
    pixel_accuracy: float | None
    majority_rate: float | None
    majority_class: str | None
    mean_iou: float | None
    iou: dict[str, float | None]
    confusion: list[list[int]]


class ImageMetrics(Metrics):
    """One image's scores, with its name."""

    image: str


class Scores(TypedDict):
    """The scores of one TTA mode: pooled over the images, per image, and the skipped unknown pixels."""

    pooled: Metrics
    images: list[ImageMetrics]
    unknown_pixels: int


class EvaluationData(TypedDict):
    """``metrics.json``: what was evaluated, how, and the scores per TTA mode."""

    model: str
    data: str
    split: str
    overlap: float
    classes: list[str]
    images: list[str]
    unknown_colors: str
    tta: dict[str, Scores]


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts, rows truth, columns prediction; truth ids >= K are skipped."""
    keep = truth < num_classes
    idx = truth[keep].astype(np.int64) * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def metrics(cm: np.ndarray, names: list[str]) -> Metrics:
    """Per-class IoU (None where a class is neither present nor predicted), mean IoU, pixel accuracy and the
    majority-class rate (the share of the commonest true class: the accuracy of predicting it everywhere)."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = [float(t / u) if u else None for t, u in zip(tp, union)]
    present = [v for v in iou if v is not None]
    total = int(cm.sum())
    truth = cm.sum(1)
    return {
        "pixels": total,
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "majority_rate": float(truth.max() / total) if total else None,
        "majority_class": names[int(truth.argmax())] if total else None,
        "mean_iou": float(np.mean(present)) if present else None,
        "iou": dict(zip(names, iou)),
        "confusion": cm.tolist(),
    }


def check_split_source(model_path: str | Path, split: str | None) -> None:
    """Refuse a split that needs the run's own split for an exported ``.onnx`` model, which carries none."""
    if str(model_path).lower().endswith(".onnx") and split in ("test", "tile", "image"):
        raise RunError(
            f"{model_path}: --split {split} needs the run's split, and an exported .onnx model carries none; "
            f"evaluate the run folder (or its checkpoint) instead: aerotune evaluate RUN --split {split} ..., "
            "or pass --split all"
        )


def resolve_split(model_path: str | Path, split: str | None, data: str | Path) -> tuple[str, dict | None]:
    """``(split, run_split)``: the split asked for (default: the run's test images when it has them, else its
    held-out tiles/images when it split by tile or image, else all, with a warning) and the run's own split."""
    run_split = None
    if not str(model_path).lower().endswith(".onnx"):
        from aerotune.model.checkpoint import load_checkpoint
        from aerotune.predict.scene import find_checkpoint

        run_split = load_checkpoint(find_checkpoint(model_path)).get("split")
    if split is None:
        method = (run_split or {}).get("method")
        split = "test" if (run_split or {}).get("test_images") else method if method in ("tile", "image") else "all"
        if split == "all":
            logging.getLogger("aerotune").warning(
                "evaluating on every image of %s, including any the model was "
                "trained on (its run did not hold out whole tiles or images)",
                data,
            )
    return split, run_split


def select_samples(samples: list[Sample], split: str, run_split: dict | None, where: str) -> list[Sample]:
    """The images to evaluate: all of them, or those the model's run held out by tile or by image."""
    if split == "all":
        return samples
    if split == "test":
        test = set((run_split or {}).get("test_images", []))
        if not test:
            raise RunError(f"{where}: --split test needs a run with a test portion (--test-fraction or --test-tiles)")
        chosen = [s for s in samples if s.name in test]
        if len(chosen) != len(test):
            raise DatasetError(
                f"{where}: {len(test) - len(chosen)} of the run's {len(test)} test images are not in this "
                "dataset; pass the dataset the model was trained on"
            )
        return chosen
    if not run_split or run_split.get("method") != split:
        found = run_split.get("method") if run_split else "none (an exported model)"
        raise RunError(
            f"{where}: --split {split} needs a run that held out whole {split}s, but its split is "
            f"{found}; pass --split all"
        )
    held = set(run_split.get("val_groups", []))
    chosen = [s for s in samples if (s.tile if split == "tile" else s.name) in held]
    if not chosen:
        raise DatasetError(
            f"{where}: none of the run's held-out {split}s ({', '.join(sorted(held))}) is in this "
            "dataset; pass the dataset the model was trained on, or --split all"
        )
    return chosen


def score_samples(
    model: SceneModel,
    samples: list[Sample],
    *,
    tta: str = "none",
    overlap: float = DEFAULT_OVERLAP,
    on_image: Callable[[int], None] | None = None,
) -> Scores:
    """Segment each whole image as ``aerotune predict`` would and compare it with its mask.

    Returns ``{"pooled": metrics, "images": [per image], "unknown_pixels": n}``; ``on_image(done)`` after each.
    """
    names = list(model.palette.names)
    k = model.palette.num_classes
    pooled = np.zeros((k, k), np.int64)
    per_image, unknown = [], 0
    for i, s in enumerate(samples):
        truth, unk = mask_ids(model, s.mask)
        unknown += sum(unk.values())
        scene = open_for(model, s.image)
        if truth.shape != (scene.height, scene.width):
            raise DatasetError(
                f"{s.mask}: mask is {truth.shape[1]}x{truth.shape[0]} but its image is "
                f"{scene.width}x{scene.height}; fix the pair"
            )
        cm = np.zeros((k, k), np.int64)
        at = [0]

        def count(ids: np.ndarray, _probs: np.ndarray, cm=cm, truth=truth, at=at) -> None:
            cm += confusion(truth[at[0] : at[0] + ids.shape[0]], ids, k)
            at[0] += ids.shape[0]

        with gdal_cache(scene):
            segment_scene(model, scene, overlap=overlap, tta=tta, on_rows=count)
        pooled += cm
        per_image.append({"image": s.name, **metrics(cm, names)})
        if on_image:
            on_image(i + 1)
    return {"pooled": metrics(pooled, names), "images": per_image, "unknown_pixels": unknown}


def check_masks(model: SceneModel, samples: list[Sample], *, unknown_colors: str = "error", where: str = "") -> None:
    """Read every mask before any work: each fits its image, and colours outside the model's palette follow
    ``unknown_colors`` (error: refused in one line naming them; ignore: skipped), but some pixel must be scored."""
    unknown: dict[Any, int] = {}
    files: dict[Any, list[str]] = {}
    total = 0
    for s in samples:
        truth, unk = mask_ids(model, s.mask)
        scene = open_for(model, s.image)
        if truth.shape != (scene.height, scene.width):
            raise DatasetError(
                f"{show(s.mask)}: mask is {truth.shape[1]}x{truth.shape[0]} but its image is "
                f"{scene.width}x{scene.height}; give both the same size, or leave the pair out"
            )
        total += truth.size
        for key, n in unk.items():
            unknown[key] = unknown.get(key, 0) + n
            files.setdefault(key, []).append(show(s.mask))
    config = getattr(model, "config", None)
    tolerance = int(config.data.color_tolerance) if config is not None else 0
    if unknown and unknown_colors == "error":
        fix = (
            f"the model's classes are {', '.join(model.palette.names)}: evaluate on masks labelled with them, or "
            "pass --unknown-colors ignore to leave these pixels out of the metrics"
        )
        raise PaletteError(
            unknown_colors_message(unknown, files, total, palette=model.palette, tolerance=tolerance, fix=fix)
        )
    if unknown and sum(unknown.values()) == total:
        raise PaletteError(
            f"{where}: no mask pixel has a colour of the model's classes ({', '.join(model.palette.names)}), so "
            "there is nothing to score; evaluate on masks labelled with the classes the model was trained on"
        )


@dataclass
class Evaluation:
    """An evaluation's folder and its ``metrics.json``."""

    out: Path
    data: EvaluationData


def evaluate_scenes(
    model: SceneModel,
    root: str | Path,
    out: str | Path,
    *,
    split: str = "all",
    run_split: dict | None = None,
    layout: DataConfig | None = None,
    tta: str = "none",
    overlap: float = DEFAULT_OVERLAP,
    model_name: str = "",
    unknown_colors: str = "error",
    progress=None,
) -> Evaluation:
    """Evaluate on whole images of ``root``; write ``metrics.json``, ``evaluation.md`` and ``.html`` to ``out``.

    ``layout``: the data settings that find the pairs (folder names, file name suffixes); default the usual ones.
    ``unknown_colors``: mask colours outside the model's palette are an error (default) or skipped ("ignore").
    Every input is checked before anything is written.
    """
    out = Path(out)
    check_output(out, "evaluation", inputs=[root])
    found = discover(root) if layout is None else discover_for(root, layout)
    if not found.samples:  # say why: a missing masks folder, images without masks, ...
        why = f": {found.problems[0]}" if found.problems else ""
        raise DatasetError(
            f"{show(root)}: no image/mask pairs to evaluate (evaluate compares predictions with masks){why}"
        )
    samples = select_samples(found.samples, split, run_split, str(model_name or root))
    if not samples:
        raise DatasetError(f"{root}: no image/mask pairs found; check the folder with aerotune data inspect")
    for s in samples:
        open_for(model, s.image)  # every image readable before any work
    check_masks(model, samples, unknown_colors=unknown_colors, where=show(root))
    names = list(model.palette.names)
    modes = ["none"] + ([tta] if tta != "none" else [])
    results: dict[str, Scores] = {}
    for m, mode in enumerate(modes):

        def done(i: int, m: int = m) -> None:
            if progress:
                progress(i + m * len(samples), len(samples) * len(modes))

        results[mode] = score_samples(model, samples, tta=mode, overlap=overlap, on_image=done)
    data: EvaluationData = {
        "model": str(model_name),
        "data": str(root),
        "split": split,
        "overlap": overlap,
        "classes": names,
        "images": [s.name for s in samples],
        "unknown_colors": unknown_colors,
        "tta": results,
    }
    with writing(out, "evaluation", inputs=[root], replace=True) as place:
        write_json(place.path / "metrics.json", data)
        write_text(place.path / "evaluation.md", render_markdown(data))
        write_text(place.path / "evaluation.html", render_html(data))
    return Evaluation(out, data)


def _f(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def summary_rows(data: EvaluationData) -> list[list[str]]:
    """One row per TTA mode: TTA, pixel accuracy, majority-class rate, mean IoU, then each class's IoU (pooled)."""
    return [
        [mode, _f(r["pooled"]["pixel_accuracy"]), _f(r["pooled"].get("majority_rate")), _f(r["pooled"]["mean_iou"])]
        + [_f(r["pooled"]["iou"][c]) for c in data["classes"]]
        for mode, r in data["tta"].items()
    ]


def render_markdown(data: EvaluationData) -> str:
    head = ["TTA", "pixel accuracy", "majority-class rate", "mean IoU", *data["classes"]]
    lines = [
        f"# Whole-image evaluation of {data['model']}",
        "",
        f"{len(data['images'])} image(s) of {data['data']} (split: {data['split']}), stitched from "
        f"windows with overlap {data['overlap']}; IoU pooled over the images' pixels.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(data)]
    lines += ["", "## Per image (no TTA)", "", "| image | pixel accuracy | mean IoU |", "|---|---|---|"]
    lines += [
        f"| {r['image']} | {_f(r['pixel_accuracy'])} | {_f(r['mean_iou'])} |" for r in data["tta"]["none"]["images"]
    ]
    return "\n".join(lines) + "\n"


def render_html(data: EvaluationData) -> str:
    e = html.escape
    head = ["TTA", "pixel accuracy", "majority-class rate", "mean IoU", *data["classes"]]

    def table(header: list[str], rows: list[list[str]]) -> str:
        return (
            "<table><tr>"
            + "".join(f"<th>{e(h)}</th>" for h in header)
            + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
            + "</table>"
        )

    cm = data["tta"]["none"]["pooled"]["confusion"]
    images = [[r["image"], _f(r["pixel_accuracy"]), _f(r["mean_iou"])] for r in data["tta"]["none"]["images"]]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Whole-image evaluation</title>'
        "<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}th{background:#f3f3f3}</style></head><body>"
        f"<h1>Whole-image evaluation of {e(data['model'])}</h1>"
        f"<p>{len(data['images'])} image(s) of {e(data['data'])} (split: {e(data['split'])}), stitched from "
        f"windows with overlap {data['overlap']}; IoU pooled over the images' pixels.</p>"
        + table(head, summary_rows(data))
        + "<h2>Confusion matrix (rows: truth, columns: prediction; no TTA)</h2>"
        + table(["", *data["classes"]], [[c, *map(str, row)] for c, row in zip(data["classes"], cm)])
        + "<h2>Per image (no TTA)</h2>"
        + table(["image", "pixel accuracy", "mean IoU"], images)
        + "</body></html>\n"
    )
