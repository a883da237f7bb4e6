"""``report.json``: every number a report shows, as one typed record (the HTML and Markdown are rendered from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aerotune.records import Record


@dataclass(frozen=True)
class Verdict:
    """Whether tuning paid off: ``status`` is better, worse, mixed or single (no baseline)."""

    status: str
    text: str  # the whole sentence
    headline: str = ""  # e.g. "Tuning paid off" (empty for a single model)
    detail: str = ""  # the sentence after the headline
    val_loss: dict[str, float] | None = None  # baseline, tuned, change
    mean_iou: dict[str, float] | None = None
    basis: str = "validation"  # which numbers decided: validation (patches) or test (whole held-out images)
    basis_text: str = ""  # the sentence that says so, and why
    test_mean_iou: dict[str, float] | None = None  # baseline, tuned, change on the test images
    test_pixel_accuracy: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class ReportRecord(Record):
    """``report.json``. Nested sections are plain JSON, described by the function that builds each."""

    FILE = "report.json"

    aerotune_version: str
    created: str
    kind: str  # tuning or training
    run: str
    tuned_run: str
    title: str
    labels: dict[str, str]
    classes: list[str]
    colors: list[str]
    seed: int
    shown_patches: list[int]
    train_patches_evaluated: int
    val_patches_evaluated: int
    thresholds: int
    protocol: dict[str, Any]  # numbers.protocol
    parameters: list[dict[str, Any]]  # numbers.parameters
    models: dict[str, Any]  # "tuned" and maybe "baseline": numbers.model_numbers
    verdict: dict[str, Any]  # Verdict.to_json()
    headline: list[dict[str, Any]]  # numbers.headline
    baseline_run: str | None = None
    notes: list[str] = field(default_factory=list)
    study: dict[str, Any] | None = None  # numbers.study_numbers, for a tuning run
    whole_images: dict[str, Any] | None = None  # report.whole: the held-out whole images, when the run has them
    seeds: dict[str, Any] | None = None  # report.seeds.section: the seed verdict, when --seeds retrained
    figures: dict[str, str] = field(default_factory=dict)  # name -> path relative to the report folder
    seconds: float = 0.0
    #: Where ``colors`` come from: the colour masks ("masks"), the masks' PNG palette ("mask palette", masks of
    #: class ids) or aerotune's fixed display colours ("fixed", masks of ids without one).
    colors_from: str = "masks"

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        for key in ("study", "whole_images", "seeds"):  # a training run has no study; a random split no whole images
            if data[key] is None:
                del data[key]
        return data
