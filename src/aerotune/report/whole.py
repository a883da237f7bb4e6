"""The report's whole-image numbers: each model segments whole held-out images as ``aerotune evaluate`` does.

Two sets, when a run has them: its **test** images (``--test-fraction`` / ``--test-tiles``: never cut into
training or validation patches, so neither the training nor the choice of trial or checkpoint saw them) and
its **validation** images (a split by image or by tile holds out whole images; a random split has none, since
every image gives patches to training). The verdict uses the test images when both models have them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aerotune.errors import RunError
from aerotune.report.collect import Sources
from aerotune.report.records import WholeImagesSection, WholeNumbers, WholeSet
from aerotune.train.records import TrainingRun

#: The sets of whole images, in the order the report shows them.
SETS = ("test", "validation")


@dataclass
class WholeImages:
    """Per set: the images and each model's pooled metrics; notes for the report."""

    images: dict[str, list[str]] = field(default_factory=dict)  # set -> image ids
    models: dict[str, dict[str, WholeNumbers]] = field(default_factory=dict)  # model -> set -> pooled metrics
    notes: list[str] = field(default_factory=list)
    overlap: float = 0.0

    def section(self) -> WholeImagesSection | None:
        """``report.json``'s ``whole_images``: None when the run has no whole held-out images."""
        if not self.images:
            return None
        return WholeImagesSection(self.overlap, {k: WholeSet(v) for k, v in self.images.items()})


def same_test_portion(a: TrainingRun, b: TrainingRun) -> bool:
    """Whether two runs held out the same test images of the same files (so neither trained on the other's)."""
    return (a.split.test_images, a.split.dataset_hash) == (b.split.test_images, b.split.dataset_hash)


def held_out_sets(run: TrainingRun, cache) -> dict[str, list[str]]:
    """The image ids of the run's test images and of its whole validation images (split by image or tile)."""
    from aerotune.data.holdout import image_id

    split = run.split
    sets: dict[str, list[str]] = {}
    if split.test_images:
        sets["test"] = list(split.test_images)
    if split.method in ("image", "tile") and split.val_groups:
        groups, test = set(split.val_groups), set(split.test_images)
        ids = [
            image_id(s["tile"], s["stem"])
            for s in cache.sources
            if (image_id(s["tile"], s["stem"]) if split.method == "image" else s["tile"]) in groups
        ]
        sets["validation"] = [i for i in ids if i not in test]
    return sets


def evaluate_whole(src: Sources, cache, *, device: str, say: Callable[[str], None]) -> WholeImages:
    """Evaluate the tuned model (and the baseline) on the tuned run's whole held-out images.

    The baseline is evaluated on the test images only when its run held out the same ones (else it may have
    trained on them, and a note says the verdict stays on the validation patches). Raises ``RunError`` when the
    dataset folder is gone or its files changed since the run drew its test images.
    """
    from aerotune.predict.evaluate import score_samples
    from aerotune.predict.run import DEFAULT_OVERLAP

    tuned, base = src.tuned, src.baseline
    result = WholeImages(overlap=DEFAULT_OVERLAP)
    wanted = held_out_sets(tuned, cache)
    if not wanted:
        return result
    samples = _find_samples(tuned, cache, wanted)
    if samples is None:  # the folder is gone or its files changed, and there is no test portion to insist on
        result.notes.append(
            "The dataset folder the run was cut from is gone or its files changed, so the report shows no "
            "whole-image numbers."
        )
        return result
    runs = {"tuned": tuned} | ({"baseline": base} if base is not None else {})
    if "test" in wanted and base is not None and not same_test_portion(tuned, base):
        result.notes.append(
            "The baseline's run did not hold out the same test images (it may have trained on them), so the "
            "baseline is not evaluated on them and the verdict uses the validation patches."
        )
    result.images = {k: [s.name for s in v] for k, v in samples.items()}
    for name, run in runs.items():
        model = _load(run, device)
        for set_name, chosen in samples.items():
            if set_name == "test" and name == "baseline" and not same_test_portion(tuned, run):
                continue
            say(f"evaluating the {name} model on {len(chosen)} whole {set_name} image(s)")
            pooled = score_samples(model, chosen, overlap=result.overlap)["pooled"]
            if pooled["mean_iou"] is None:  # every pixel ignored (unknown colours): nothing to judge on
                note = f"The {set_name} images have no labelled pixel, so they give no whole-image numbers."
                result.notes += [note] if note not in result.notes else []
                continue
            whole = WholeNumbers.from_json({"images": len(chosen), **pooled}, where=f"{set_name} images")
            result.models.setdefault(name, {})[set_name] = whole
    return result


def test_samples(run: TrainingRun, cache) -> list | None:
    """The image/mask pairs of the run's test images (checked to be the same files), or None without any."""
    if not run.split.test_images:
        return None
    found = _find_samples(run, cache, {"test": list(run.split.test_images)})
    return found["test"] if found else None


def _load(run: TrainingRun, device: str):
    from aerotune.predict.scene import Predictor

    return Predictor.load(run.checkpoint, device=device)


def _find_samples(run: TrainingRun, cache, wanted: dict[str, list[str]]):
    """The image/mask pairs of each set in the dataset folder the cache was cut from, checked to be the same
    files (its fingerprint); None when the folder is gone or changed and no test portion is at stake."""
    from aerotune.data.patches import plan_cache
    from aerotune.data.sources import discover_for

    root = Path(cache.manifest.get("root", ""))
    fix = "restore the dataset folder the run was trained on (its path is in the cache's manifest.json)"
    if not root.is_dir():
        if "test" not in wanted:
            return None
        raise RunError(f"{run.path}: its dataset folder {root} is gone, so its test images cannot be read; {fix}")
    recorded = run.split.dataset_hash or cache.manifest.get("inputs_hash")
    if plan_cache(root, run.config.data, cache.classes_palette)[2] != recorded:
        if "test" in wanted:
            raise RunError(
                f"{root}: the dataset's files changed since {run.path} drew its test images, so the test numbers "
                f"would describe other images; {fix}"
            )
        return None
    found = discover_for(root, run.config.data)
    by_name = {s.name: s for s in found.samples}
    missing = [i for ids in wanted.values() for i in ids if i not in by_name]
    if missing:
        raise RunError(f"{root}: held-out image {missing[0]} of {run.path} is not in the dataset folder; {fix}")
    return {k: [by_name[i] for i in ids] for k, ids in wanted.items()}


def set_label(name: str) -> str:
    return {"test": "test images", "validation": "validation images"}[name]
