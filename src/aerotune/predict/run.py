"""Segment whole scenes into files: check every input first, then stream each scene into its mask.

Torch-free on purpose: a model is anything with ``palette``, ``patch_size``, ``scale``, ``num_bands``,
``batch_size`` and ``scorer()``, so the ONNX runner segments scenes without PyTorch in the loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands, read_scaled
from aerotune.errors import DatasetError
from aerotune.outputs import Place, check_output, writing
from aerotune.predict.inputs import list_images, list_inputs  # noqa: F401 - list_images: the public API
from aerotune.predict.io import GeoTiffRowWriter, PngRowWriter, Scene, SceneRows, gdal_cache, open_scene
from aerotune.predict.tta import with_tta
from aerotune.predict.window import Scorer, stream_scene

log = logging.getLogger(__name__)

#: The default overlap between neighbouring windows, as a fraction of the window (docs/whole-scenes.md).
DEFAULT_OVERLAP = 0.25


class SceneModel(Protocol):
    palette: Palette
    patch_size: int
    scale: float
    num_bands: int
    batch_size: int
    trained: Bands  # the bands it was trained on and their scaling: how scenes are read by default

    def scorer(self) -> Scorer: ...


def open_for(model: SceneModel, path: Path, bands: tuple[int, ...] | None = None) -> Scene:
    """Open ``path`` for ``model``: its bands (``bands``, else those it was trained on) and their scaling."""
    return open_scene(Path(path), bands=bands, num_bands=model.num_bands, trained=model.trained)


def _nearest_rows(work: tuple[int, int], size: tuple[int, int]):
    """Map row blocks at the model's scale to the output size (nearest neighbour, as Pillow's NEAREST)."""
    (w, h), (out_w, out_h) = work, size
    ys = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(np.int64), h - 1)
    xs = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(np.int64), w - 1)
    state = {"next": 0}

    def resample(r0: int, block: np.ndarray) -> np.ndarray:
        end = int(np.searchsorted(ys, r0 + block.shape[-2]))
        sel = ys[state["next"] : end] - r0
        state["next"] = end
        return np.take(np.take(block, sel, axis=-2), xs, axis=-1)

    return resample


def segment_scene(
    model: SceneModel,
    scene: Scene,
    *,
    overlap: float = DEFAULT_OVERLAP,
    blend: str = "smooth",
    tta: str = "none",
    on_rows: Callable[[np.ndarray, np.ndarray], None],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Stream ``scene`` through the model; ``on_rows(ids (h, W) uint8, probs (K, h, W) float32)`` gets the
    output rows top to bottom at the scene's own size."""
    rows = SceneRows(scene, model.scale)
    try:
        resample = (
            None
            if (rows.width, rows.height) == (scene.width, scene.height)
            else _nearest_rows((rows.width, rows.height), (scene.width, scene.height))
        )

        def emit(r0: int, probs: np.ndarray) -> None:
            if resample is not None:
                probs = resample(r0, probs)
            if probs.shape[1]:
                on_rows(probs.argmax(axis=0).astype(np.uint8), probs)

        stream_scene(
            rows.read,
            rows.height,
            rows.width,
            with_tta(model.scorer(), tta),
            patch=model.patch_size,
            num_classes=model.palette.num_classes,
            overlap=overlap,
            blend=blend,
            batch_size=model.batch_size,
            emit=emit,
            progress=progress,
        )
    finally:
        rows.close()


def segment_array(model: SceneModel, path: Path, **options) -> np.ndarray:
    """Class ids ``(H, W)`` of one image file, held in memory (for scenes that fit; see ``predict_files``)."""
    scene = open_for(model, path)
    out = np.empty((scene.height, scene.width), dtype=np.uint8)
    at = [0]

    def keep(ids: np.ndarray, _probs: np.ndarray) -> None:
        out[at[0] : at[0] + ids.shape[0]] = ids
        at[0] += ids.shape[0]

    with gdal_cache(scene):
        segment_scene(model, scene, on_rows=keep, **options)
    return out


def mask_ids(model: SceneModel, mask: Path) -> tuple[np.ndarray, dict]:
    """A whole mask as class ids, read the way the model's run read its training masks (colours or ids, and the
    run's ``--color-tolerance``), with its unknown values and their pixel counts."""
    from aerotune.data.masks import read_mask

    config = getattr(model, "config", None)
    tolerance = int(config.data.color_tolerance) if config is not None else 0
    return model.palette.encode(read_mask(mask, model.palette), tolerance=tolerance)


def scene_accuracy(model: SceneModel, image: Path, mask: Path, **options) -> float:
    """Pixel accuracy of one whole-scene segmentation against its colour mask (labelled pixels only).

    For the demo: ``scene_accuracy(Predictor.load(run), image_path, mask_path)``.
    """
    truth, _unknown = mask_ids(model, Path(mask))
    pred = segment_array(model, Path(image), **options)
    labelled = truth != model.palette.ignore_index
    return float(np.count_nonzero((pred == truth) & labelled) / max(1, np.count_nonzero(labelled)))


def _outputs(scene: Scene, stem: str, out: Path, *, overlay: bool, probabilities: bool) -> list[Path]:
    paths = [out / f"{stem}.tif" if scene.geo else out / f"{stem}.png"]
    if probabilities:
        paths.append(out / f"{stem}_probabilities.tif")
    if overlay:
        paths.append(out / f"{stem}_overlay.jpg")
    return paths


def _check_clash(files: list[Path], planned: list[Path]) -> None:
    """No output file may be one of the inputs (an input listed from inside --out, for instance)."""
    sources = {f.resolve() for f in files}
    clash = next((p for p in planned if p.resolve() in sources), None)
    if clash is not None:
        raise DatasetError(f"{clash}: would overwrite an input image; pass another --out folder")


def predict_files(
    model: SceneModel,
    inputs: list[str | Path],
    out: str | Path,
    *,
    overlay: bool = False,
    probabilities: bool = False,
    bands: tuple[int, ...] | None = None,
    overlap: float = DEFAULT_OVERLAP,
    blend: str = "smooth",
    tta: str = "none",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Segment every input; write ``OUT/<stem>.png`` (palette PNG) or ``OUT/<stem>.tif`` (GeoTIFF input); the
    images of a tile tree keep their sub-folders (``OUT/18/1234/5678.png``, see :func:`list_inputs`).

    Every input is opened and checked (readable, band count, no output overwriting an input) before
    ``out`` is created. Files are written under temporary names and renamed once every scene is done: on an
    error, the files this call wrote (and ``out``, if it made it) are removed, and same-named files of an
    earlier run stay as they were.
    ``probabilities`` (GeoTIFF inputs) adds ``<stem>_probabilities.tif``, one uint8 band per class
    (probability x 255); ``overlay`` adds ``<stem>_overlay.jpg`` (PNG/JPEG inputs; holds the scene twice).
    """
    check_output(out, "predictions", inputs=inputs, inside_inputs=True)
    scenes, plans = _open_and_plan(model, inputs, out, bands, overlay=overlay, probabilities=probabilities)
    out = Path(out)
    total = sum(max(1, round(s.height * model.scale)) for s in scenes)
    base = 0
    # Files are staged under temporary names: they take their names only once every scene is done, replacing
    # those of an earlier run, so a failure or Ctrl-C on any scene leaves the folder as it was.
    with writing(out, "predictions", inputs=inputs, inside_inputs=True) as place:
        for scene, plan in zip(scenes, plans):
            place.folder(plan[0].parent)

            def step(done: int, _total: int, base: int = base) -> None:
                if progress:
                    progress(base + done, total)

            with gdal_cache(scene, model.palette.num_classes if probabilities else 0):
                _predict_one(
                    model,
                    scene,
                    plan,
                    place,
                    overlay=overlay and not scene.geo,
                    probabilities=probabilities,
                    progress=step,
                    options={"overlap": overlap, "blend": blend, "tta": tta},
                )
            base += max(1, round(scene.height * model.scale))
            log.info("%s -> %s", scene.path, plan[0])
    return [final for _tmp, final in place.staged]


def _open_and_plan(
    model: SceneModel,
    inputs: list[str | Path],
    out: str | Path,
    bands: tuple[int, ...] | None,
    *,
    overlay: bool,
    probabilities: bool,
) -> tuple[list[Scene], list[list[Path]]]:
    """Open every input and plan its output files, refusing a bad option or an output that is an input."""
    named = list_inputs(inputs, out)
    files = [f for f, _ in named]
    scenes = [open_for(model, f, bands) for f in files]
    if probabilities and not all(s.geo for s in scenes):
        bad = next(s.path for s in scenes if not s.geo)
        raise DatasetError(f"{bad}: --probabilities is written for GeoTIFF inputs only; drop it for PNG/JPEG")
    plans = [
        _outputs(s, name, Path(out), overlay=overlay and not s.geo, probabilities=probabilities)
        for s, (_, name) in zip(scenes, named)
    ]
    _check_clash(files, [p for plan in plans for p in plan])
    return scenes, plans


def _predict_one(
    model: SceneModel,
    scene: Scene,
    plan: list[Path],
    place: Place,
    *,
    overlay: bool,
    probabilities: bool,
    progress,
    options: dict,
) -> None:
    """Segment one scene into temporary files, each staged in ``place`` (with its final name) the moment it is
    created, so every one of them is removed on a failure or Ctrl-C at any point."""
    palette = model.palette
    writers: list = []

    def open_writer(make: Callable[[], Any]) -> None:
        w = make()  # signals are only recorded: the file and its record come into being together
        writers.append(w)
        place.stage(w.tmp, w.path)

    at = [0]
    colours = None

    def on_rows(ids: np.ndarray, probs: np.ndarray) -> None:
        writers[0].write(ids)
        if probabilities:
            writers[1].write(np.clip(probs * 255.0 + 0.5, 0, 255).astype(np.uint8))
        if colours is not None:
            colours[at[0] : at[0] + ids.shape[0]] = palette.decode(ids)
        at[0] += ids.shape[0]

    try:
        if scene.geo:
            open_writer(lambda: GeoTiffRowWriter(plan[0], scene, palette=palette))
            if probabilities:
                open_writer(lambda: GeoTiffRowWriter(plan[1], scene, bands=palette.num_classes))
        else:
            open_writer(lambda: PngRowWriter(plan[0], scene.width, scene.height, palette=palette))
        colours = np.empty((scene.height, scene.width, 3), np.uint8) if overlay else None
        segment_scene(model, scene, on_rows=on_rows, progress=progress, **options)
        for w in writers:
            w.close()
        if colours is not None:
            blended = Image.blend(Image.fromarray(read_scaled(scene, 1.0)), Image.fromarray(colours), 0.45)
            tmp = plan[-1].with_name(f".{plan[-1].name}.tmp{os.getpid()}")
            place.stage(tmp, plan[-1])
            blended.save(tmp, format="JPEG", quality=90)
    except BaseException:  # a failure or Ctrl-C at any point: close the files; the caller removes them
        for w in writers:
            w.abort()
        raise
