"""``report.json``: every number a report shows, as one typed record (the HTML and Markdown are rendered from it).

Each section is a :class:`~aerotune.records.Part`, built by the function named in its docstring and read by
``tables.py`` and ``render.py`` through its attributes; ``report.json`` is :meth:`ReportRecord.to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aerotune.records import Part, Record

# ------------------------------------------------------------------ the run and its settings


@dataclass(frozen=True)
class Protocol(Part):
    """How the models were trained and evaluated (``numbers.protocol``); a fact the run lacks is None, left out."""

    OMIT_NONE = (
        "data",
        "images",
        "classes",
        "patch_size",
        "scale",
        "mode",
        "unknown_colors",
        "split",
        "patches",
        "normalization",
        "augment",
        "loss",
        "training_seed",
        "evaluated",
        "patch_seed",
        "pr_thresholds",
        "ignored_pixels",
        "color_tolerance",
        "test",
        "skipped",
    )

    data: str | None = None
    images: int | None = None
    classes: str | None = None
    patch_size: int | None = None
    scale: float | None = None
    mode: str | None = None
    unknown_colors: str | None = None
    split: str | None = None
    patches: str | None = None
    normalization: str | None = None
    augment: bool | None = None
    loss: str | None = None
    training_seed: int | None = None
    evaluated: str | None = None
    patch_seed: int | None = None
    pr_thresholds: int | None = None
    ignored_pixels: str | None = None
    color_tolerance: str | None = None  # lossy masks only
    test: str | None = None  # with a test portion only
    skipped: str | None = None  # pairs --skip-bad-pairs left out


@dataclass(frozen=True)
class ParameterRow(Part):
    """One row of parameter | baseline | default recipe | tuned (``numbers.parameters``)."""

    name: str
    baseline: Any
    tuned: Any
    changed: bool
    default: Any = None
    shows_default: bool = False  # whether the report has a default-recipe column (not in the JSON: "default" is)

    def to_json(self) -> dict[str, Any]:
        """The row; ``default`` only when the report has a default-recipe column."""
        found = {"name": self.name, "baseline": self.baseline, "tuned": self.tuned, "changed": self.changed}
        return found | ({"default": self.default} if self.shows_default else {})

    @classmethod
    def from_json(cls, data: Any, *, where: str | None = None) -> ParameterRow:
        """Read a row; a ``default`` key means a default-recipe column."""
        row = super().from_json(data, where=where)
        return cls(row.name, row.baseline, row.tuned, row.changed, row.default, shows_default="default" in data)


# ------------------------------------------------------------------ one model's numbers


@dataclass(frozen=True)
class ClassNumbers(Part):
    """One class's validation metrics (``numbers.model_numbers``)."""

    name: str = field(metadata={"key": "class"})
    iou: float
    f1: float
    precision: float
    recall: float
    ap: float
    share: float  # of the validation pixels


@dataclass(frozen=True)
class Curves(Part):
    """Binned precision-recall curves: pooled and per class, each ``{"precision": [...], "recall": [...]}``."""

    thresholds: list[float]
    pooled: dict[str, list[float]]
    per_class: dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class HistoryPoint(Part):
    """One logged epoch."""

    epoch: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_mean_iou: float | None = None


@dataclass(frozen=True)
class WholeNumbers(Part):
    """A model's pooled metrics on one set of whole held-out images (``predict.evaluate.metrics``)."""

    images: int
    pixels: int = 0
    pixel_accuracy: float | None = None
    majority_rate: float | None = None
    majority_class: str | None = None
    mean_iou: float | None = None
    iou: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelNumbers(Part):
    """One model's numbers (``numbers.model_numbers``); ``whole`` per set of whole images, when it has any."""

    OMIT_NONE = ("whole",)

    run: str
    val_patches: int
    epochs: int
    status: str
    best_epoch: int | None
    final_val_loss: float
    final_train_loss: float
    history_best_val_loss: float | None
    val: dict[str, float]  # metric name (tune.settings.METRIC_NAMES) -> value
    train: dict[str, float]
    ap_pooled: float
    per_class: list[ClassNumbers]
    confusion: list[list[int]]
    curves: Curves
    history: list[HistoryPoint]
    whole: dict[str, WholeNumbers] | None = None


# ------------------------------------------------------------------ the verdict and the numbers table


@dataclass(frozen=True)
class Change(Part):
    """A number of the baseline and of the tuned model, and the change (tuned - baseline)."""

    baseline: float
    tuned: float
    change: float


@dataclass(frozen=True)
class Verdict(Part):
    """Whether tuning paid off: ``status`` is better, worse, mixed or single (no baseline) (``numbers.verdict``)."""

    OMIT_NONE = ("val_loss", "mean_iou", "test_mean_iou", "test_pixel_accuracy")

    status: str
    text: str  # the whole sentence
    headline: str = ""  # e.g. "Tuning paid off" (empty for a single model)
    detail: str = ""  # the sentence after the headline
    val_loss: Change | None = None
    mean_iou: Change | None = None
    basis: str = "validation"  # which numbers decided: validation (patches) or test (whole held-out images)
    basis_text: str = ""  # the sentence that says so, and why
    test_mean_iou: Change | None = None  # on the test images
    test_pixel_accuracy: Change | None = None


@dataclass(frozen=True)
class HeadlineRow(Part):
    """A row of the numbers table (``numbers.headline``): its values by model name beside the row's own keys."""

    label: str
    format: str
    lower_is_better: bool | None
    values: dict[str, float | str] = field(default_factory=dict)  # model -> value (None: the model lacks it)

    def to_json(self) -> dict[str, Any]:
        """The row with each model's value under the model's name."""
        return {"label": self.label, "format": self.format, "lower_is_better": self.lower_is_better, **self.values}

    @classmethod
    def from_json(cls, data: Any, *, where: str | None = None) -> HeadlineRow:
        """Read a row; every key other than the row's own is a model's value."""
        row = super().from_json(data, where=where)
        values = {k: v for k, v in data.items() if k not in ("label", "format", "lower_is_better", "values")}
        return cls(row.label, row.format, row.lower_is_better, values)


# ------------------------------------------------------------------ the study and the whole images


@dataclass(frozen=True)
class TrialRow(Part):
    """One trial of the study, as the report shows it."""

    number: int
    state: str
    status: str
    params: dict[str, float | str | bool]  # the trial's searched values
    epochs: int
    value: float | None
    duration: float | None
    reason: str
    curve: list[float]


@dataclass(frozen=True)
class StudyNumbers(Part):
    """The study section (``numbers.study_numbers``): its settings, every trial, the budget, the importances."""

    study_name: str
    storage: str
    direction: str
    metric: str
    sampler: str
    seed: int | None
    min_resource: int
    max_resource: int
    reduction_factor: int
    space: dict[str, Any]
    best_trial: int | None
    baseline_trial: int | None
    best_value: float | None
    epochs_spent: int
    reference_epochs: int
    wall_time: float | None
    counts: dict[str, int]
    trials: list[TrialRow]
    importances: dict[str, float] | None
    importance_note: str = ""


@dataclass(frozen=True)
class WholeSet(Part):
    """The ids of one set of whole held-out images."""

    images: list[str]


@dataclass(frozen=True)
class WholeImagesSection(Part):
    """``whole_images`` (``whole.WholeImages.section``): the held-out whole images by set, and the windows' overlap."""

    overlap: float
    sets: dict[str, WholeSet]


# ------------------------------------------------------------------ the seed verdict (report/seeds.py)


@dataclass(frozen=True)
class Spread(Part):
    """``seed_stats.spread``: n, mean, sample standard deviation (None for one value), min, max and the values."""

    n: int
    mean: float
    sd: float | None
    min: float | None
    max: float | None
    values: list[float]


@dataclass(frozen=True)
class Welch(Part):
    """``seed_stats.comparison``: Welch's test of a difference of means, and what it says."""

    difference: float
    t: float | None
    df: float | None
    p: float | None
    better: bool = False
    beyond_noise: bool = False


@dataclass(frozen=True)
class SeedModel(Part):
    """One compared model's retrainings."""

    OMIT_NONE = ("pixel_accuracy", "val_mean_iou")

    trial: int
    seeds: list[int]
    runs: list[str]
    val_loss: Spread
    mean_iou: Spread  # on the test images when the study has them
    pixel_accuracy: Spread | None = None  # test basis only
    val_mean_iou: Spread | None = None  # test basis only


@dataclass(frozen=True)
class SeedComparison(Part):
    """``model`` against ``than``."""

    model: str
    than: str
    mean_iou: Welch
    val_loss: Welch


@dataclass(frozen=True)
class SeedCost(Part):
    """What the retrainings cost, and what this report spent on them."""

    runs: int
    epochs: int
    seconds: float
    epochs_now: int
    seconds_now: float


@dataclass(frozen=True)
class SeedsSection(Part):
    """``seeds`` (``seeds.section``): per model mean ± spread, the comparisons and the verdict sentence."""

    k: int
    epochs_each: int
    folder: str
    basis: str
    basis_text: str
    test: str
    alpha: float
    models: dict[str, SeedModel]
    comparisons: list[SeedComparison]
    cost: SeedCost
    verdict: str = ""


# ------------------------------------------------------------------ the report


@dataclass(frozen=True)
class ReportRecord(Record):
    """``report.json``."""

    FILE = "report.json"
    OMIT_NONE = ("study", "whole_images", "seeds")  # a training run has no study; a random split no whole images

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
    protocol: Protocol
    parameters: list[ParameterRow]
    models: dict[str, ModelNumbers]  # "tuned" and maybe "baseline" and "default"
    verdict: Verdict
    headline: list[HeadlineRow]
    baseline_run: str | None = None
    notes: list[str] = field(default_factory=list)
    study: StudyNumbers | None = None  # a tuning run's
    whole_images: WholeImagesSection | None = None  # the held-out whole images, when the run has them
    seeds: SeedsSection | None = None  # the seed verdict, when --seeds retrained
    figures: dict[str, str] = field(default_factory=dict)  # name -> path relative to the report folder
    seconds: float = 0.0
    #: Where ``colors`` come from: the colour masks ("masks"), the masks' PNG palette ("mask palette", masks of
    #: class ids) or aerotune's fixed display colours ("fixed", masks of ids without one).
    colors_from: str = "masks"

    def model_names(self) -> list[str]:
        """The compared models, in the order the report shows them."""
        return [k for k in ("baseline", "default", "tuned") if k in self.models]
