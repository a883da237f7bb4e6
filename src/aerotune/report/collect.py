"""Everything a report shows, gathered from run folders: histories, the study, and fresh evaluations.

A training run folder is what :func:`aerotune.train.fit.fit` writes; a tuning run folder holds
``study.json``, ``trials.json``, ``summary.json`` and one training run folder per trial under
``trials/NNNN``. Models are evaluated again from their ``checkpoints/best.pt`` on the tuned run's
validation patches, so baseline and tuned numbers always describe the same pixels.

Curves are accumulated in bounded memory: torchmetrics' ``MulticlassPrecisionRecallCurve`` with a fixed
number of thresholds keeps a ``thresholds x classes x 2 x 2`` table of counts, never the pixel scores
(about 100 million one-hot scores for the Dubai validation set at 256x256). The reference's pooled curve
(every one-hot pixel against its softmax score) is the sum of those per-class tables over classes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.errors import RunError

log = logging.getLogger(__name__)

#: Settings that describe the machine or the console, not the experiment.
IGNORED_SETTINGS = ("train.progress", "train.threads", "train.device")


@dataclass
class RunInfo:
    """A training run folder, read but not evaluated."""

    path: Path
    config: Any  # RunConfig
    config_dict: dict[str, Any]
    split: Any  # Split
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    cache_path: Path
    checkpoint: Path

    @property
    def final_val_loss(self) -> float:
        return float(self.history[-1]["val_loss"]) if self.history else math.nan

    @property
    def best_epoch(self) -> int | None:
        return self.metrics.get("best_epoch")

    def setting(self, key: str) -> Any:
        """A config value by ``section.field`` (or alias), or None if unknown."""
        from aerotune.config import resolve_key
        from aerotune.errors import ConfigError

        try:
            section, name = resolve_key(key)
        except ConfigError:
            return None
        return self.config_dict[section][name]


@dataclass
class StudyInfo:
    """A tuning run folder."""

    path: Path
    study: dict[str, Any]
    trials: list[dict[str, Any]]
    summary: dict[str, Any]
    best_trial: int | None
    baseline_trial: int | None

    def trial_dir(self, number: int) -> Path:
        return self.path / "trials" / f"{number:04d}"


@dataclass
class ModelEval:
    """Metrics of one model on the validation (and a sample of the training) patches."""

    val: dict[str, float]
    train: dict[str, float]
    confusion: list[list[int]]  # rows: truth, columns: prediction (ignored pixels skipped)
    thresholds: list[float]
    pr_class: list[dict[str, list[float]]]  # per class: precision, recall
    pr_pooled: dict[str, list[float]]
    ap_class: list[float]
    ap_pooled: float
    predictions: np.ndarray  # (n, P, P) class ids of the shown patches
    train_patches: int = 0
    val_patches: int = 0


@dataclass
class Sources:
    """What one report compares: the tuned run, an optional baseline, an optional study."""

    tuned: RunInfo
    baseline: RunInfo | None
    study: StudyInfo | None
    kind: str  # "tuning" or "training"
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ reading folders


def _read_json(path: Path, *, fix: str) -> Any:
    if not path.is_file():
        raise RunError(f"{path}: file not found; {fix}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read ({str(exc).splitlines()[0]}); {fix}") from None


def is_tuning_run(path: str | Path) -> bool:
    return (Path(path) / "study.json").is_file()


def load_run(path: str | Path) -> RunInfo:
    """Read a training run folder; a missing or incomplete one is a ``RunError``."""
    from aerotune.config import RunConfig
    from aerotune.data.dataset import Split

    path = Path(path)
    fix = "give the folder of a finished training run (aerotune train --out RUN)"
    if not path.is_dir():
        raise RunError(f"{path}: run folder not found; {fix}")
    config_dict = _read_json(path / "config.json", fix=fix)
    config = RunConfig.from_dict(config_dict, where=str(path / "config.json"))
    split = Split.from_dict(_read_json(path / "split.json", fix=fix))
    history = _read_json(path / "history.json", fix=fix)
    if not history:
        raise RunError(f"{path}: the run has no finished epoch; train it for at least one epoch")
    metrics = _read_json(path / "metrics.json", fix="let the run finish, or resume it with the same aerotune train "
                         "command") if (path / "metrics.json").is_file() else {}
    if not metrics:  # a run still going (or killed): take what its history says
        best = min(history, key=lambda h: h["val_loss"])
        metrics = {"status": "incomplete", "epochs": len(history), "best_epoch": best["epoch"],
                   "best_val_loss": best["val_loss"], "final": history[-1]}
    data = _read_json(path / "data.json", fix=fix)
    checkpoint = path / "checkpoints" / "best.pt"
    if not checkpoint.is_file():
        raise RunError(f"{checkpoint}: checkpoint not found; train the run again (aerotune train --out {path})")
    cache_path = Path(data["cache"])
    if not cache_path.is_absolute():
        cache_path = (path / cache_path).resolve()
    return RunInfo(path, config, config_dict, split, history, metrics, cache_path, checkpoint)


def load_study(path: str | Path) -> StudyInfo:
    """Read a tuning run folder (``study.json``, ``trials.json``, ``summary.json``)."""
    path = Path(path)
    fix = "give the folder of a tuning run (aerotune tune --out RUN), or wait until it has written its summary"
    study = _read_json(path / "study.json", fix=fix)
    trials = _read_json(path / "trials.json", fix=fix)
    if isinstance(trials, dict):
        trials = trials.get("trials", [])
    summary = _read_json(path / "summary.json", fix=fix) if (path / "summary.json").is_file() else {}
    best = summary.get("best_trial")
    if best is None:
        done = [t for t in trials if t.get("state") == "COMPLETE" and _finite(t.get("value"))]
        if done:
            pick = min if study.get("direction", "minimize") == "minimize" else max
            best = pick(done, key=lambda t: t["value"])["number"]
    # study.json is written before the baseline trial exists; the summary knows its number.
    baseline = study.get("baseline_trial")
    if baseline is None:
        baseline = summary.get("baseline_trial")
    return StudyInfo(path, study, list(trials), summary, best, baseline)


def gather(run: str | Path, baseline: str | Path | None = None) -> Sources:
    """Resolve which folders are tuned and baseline for a report of ``run``."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"{run}: run folder not found; give a training run or a tuning run folder")
    notes: list[str] = []
    study = None
    if is_tuning_run(run):
        study = load_study(run)
        if study.best_trial is None:
            raise RunError(f"{run}: the study has no complete trial yet; let it run longer (aerotune tune resumes)")
        tuned = load_run(study.trial_dir(study.best_trial))
        base = None
        if baseline is not None:
            base = load_run(baseline)
        elif study.baseline_trial is not None:
            if study.baseline_trial == study.best_trial:
                notes.append("The best trial is the baseline trial itself: tuning found nothing better than the "
                             "initial parameters.")
            base = load_run(study.trial_dir(study.baseline_trial))
        else:
            notes.append("The study has no baseline trial, so the report shows the tuned model alone.")
        kind = "tuning"
    else:
        tuned = load_run(run)
        base = load_run(baseline) if baseline is not None else None
        kind = "training"
    if base is not None:
        if base.path.resolve() != tuned.path.resolve():
            _check_comparable(tuned, base, notes)
    return Sources(tuned, base, study, kind, notes)


def _check_comparable(tuned: RunInfo, base: RunInfo, notes: list[str]) -> None:
    t_cache = _read_manifest(tuned.cache_path)
    b_cache = _read_manifest(base.cache_path)
    if t_cache and b_cache and t_cache.get("palette") != b_cache.get("palette"):
        raise RunError(f"{base.path}: baseline was trained on other classes than {tuned.path}; "
                       "compare runs of the same dataset")
    same_cache = tuned.cache_path.resolve() == base.cache_path.resolve() or (
        t_cache.get("inputs_hash") is not None and t_cache.get("inputs_hash") == b_cache.get("inputs_hash"))
    if not same_cache or tuned.split.to_dict() != base.split.to_dict():
        notes.append("The baseline was trained on other patches or another split; both models are evaluated on the "
                     "tuned run's validation patches, some of which the baseline may have seen in training. Its "
                     "loss curves are on its own validation set.")
    if tuned.config.train.loss != base.config.train.loss or _loss_settings(tuned) != _loss_settings(base):
        notes.append("Baseline and tuned runs use different loss settings, so their losses are not comparable; "
                     "compare mean IoU instead.")


def _loss_settings(run: RunInfo) -> tuple:
    t = run.config.train
    return t.loss, t.dice_weight, t.focal_weight, t.focal_gamma, t.focal_alpha


def _read_manifest(cache: Path) -> dict[str, Any]:
    try:
        return json.loads((cache / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


# ------------------------------------------------------------------ evaluation


def open_run_cache(run: RunInfo):
    """The patch cache a run was trained on, with a fix in the message when it is gone."""
    from aerotune.data.patches import is_cache, open_cache

    if not is_cache(run.cache_path):
        raise RunError(f"{run.path}: its patch cache {run.cache_path} is gone; prepare it again with "
                       "aerotune data prepare ROOT --out CACHE (same settings) and update data.json")
    return open_cache(run.cache_path)


def pick_patches(count: int, n: int, seed: int) -> list[int]:
    """Positions of ``n`` of ``count`` validation patches, drawn with ``seed`` (the same for every model)."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(count, size=min(n, count), replace=False).tolist())


def evaluate_model(run: RunInfo, cache, val_indices: list[int], train_indices: list[int], shown: list[int], *,
                   thresholds: int = 101, device: str = "cpu",
                   progress: Callable[[str], None] | None = None) -> ModelEval:
    """Evaluate ``run``'s best checkpoint on cache patches ``val_indices`` (with curves) and ``train_indices``.

    ``shown`` are positions in ``val_indices`` whose predictions are returned for the patch figure.
    """
    import torch
    from torchmetrics.classification import MulticlassPrecisionRecallCurve

    from aerotune.data.dataset import PatchDataset
    from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint
    from aerotune.model.losses import make_loss
    from aerotune.runtime import select_device
    from aerotune.train.fit import evaluate

    ckpt = load_checkpoint(run.checkpoint)
    model, config, palette = model_from_checkpoint(ckpt, where=run.checkpoint)
    if palette.to_dict() != cache.palette.to_dict():
        raise RunError(f"{run.checkpoint}: model classes {list(palette.names)} differ from the patch cache's "
                       f"{list(cache.palette.names)}; compare runs of the same dataset")
    depth_factor = 2 ** (config.model.depth - 1)
    if cache.patch_size % depth_factor:
        raise RunError(f"{run.path}: a depth-{config.model.depth} U-Net needs patches whose side is a multiple of "
                       f"{depth_factor}, but the patches are {cache.patch_size} px; compare runs of the same "
                       "patch size")
    dev = select_device(device)
    model = model.to(dev)
    stats = ckpt.get("norm_stats")
    norm = config.data.normalization
    if norm == "meanstd" and not stats:
        from aerotune.data.dataset import channel_stats

        stats = channel_stats(cache, run.split.train)
    stats = tuple(stats) if stats else None
    loss_fn = make_loss(config.train, ignore_index=palette.ignore_index)
    batch = max(config.train.batch_size, 8)  # as in training, so the loss matches the run's history
    c = palette.num_classes

    curve = MulticlassPrecisionRecallCurve(num_classes=c, thresholds=thresholds, validate_args=False)

    def extra(logits: torch.Tensor, y: torch.Tensor) -> None:
        valid = y != palette.ignore_index
        if valid.any():
            probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[valid]  # (pixels, classes)
            curve.update(probs.cpu(), y[valid].cpu())

    val_ds = PatchDataset(cache, val_indices, normalization=norm, stats=stats)
    if progress:
        progress("validation patches")
    val_metrics = evaluate(model, val_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn, extra=extra)
    train_values: dict[str, float] = {}
    if train_indices:
        if progress:
            progress("training patches")
        train_ds = PatchDataset(cache, train_indices, normalization=norm, stats=stats)
        train_values = evaluate(model, train_ds, palette, batch_size=batch, device=dev, loss_fn=loss_fn).compute()

    pr_class, ap_class, pooled, ap_pooled = pr_summary(curve.confmat)

    with torch.no_grad():
        x, _ = val_ds.batch(shown) if shown else (None, None)
        preds = (model(x.to(dev)).argmax(dim=1).to(torch.uint8).cpu().numpy() if shown
                 else np.zeros((0, cache.patch_size, cache.patch_size), np.uint8))
    return ModelEval(
        val=val_metrics.compute(), train=train_values, confusion=val_metrics.confusion_matrix(),
        thresholds=curve.thresholds.tolist(), pr_class=pr_class, pr_pooled=pooled, ap_class=ap_class,
        ap_pooled=ap_pooled, predictions=preds, train_patches=len(train_indices),
        val_patches=len(val_indices))


def pr_summary(confmat) -> tuple[list[dict[str, list[float]]], list[float], dict[str, list[float]], float]:
    """Per-class curves and AP, and the pooled curve and AP, from ``(thresholds, classes, 2, 2)`` counts.

    The pooled curve (every one-hot (pixel, class) pair against its score) counts the same true and false
    positives as all per-class curves together, so its table is their sum over classes.
    """
    confmat = confmat.double()
    pr_class, ap_class = [], []
    for k in range(confmat.shape[1]):
        p, r = _pr_from_counts(confmat[:, k])
        pr_class.append({"precision": p.tolist(), "recall": r.tolist()})
        # A class absent from the validation pixels has no recall and no AP.
        ap_class.append(_average_precision(p, r) if confmat[0, k, 1].sum() > 0 else math.nan)
    p, r = _pr_from_counts(confmat.sum(dim=1))
    return pr_class, ap_class, {"precision": p.tolist(), "recall": r.tolist()}, _average_precision(p, r)


def _pr_from_counts(confmat):
    """Precision and recall per threshold from ``(thresholds, 2, 2)`` counts (NaN where undefined)."""
    import torch

    tp, fp, fn = confmat[:, 1, 1], confmat[:, 0, 1], confmat[:, 1, 0]
    nan = torch.tensor(math.nan, dtype=torch.float64)
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), nan)
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), nan)
    return precision, recall


def _average_precision(precision, recall) -> float:
    """Step-wise area under a binned PR curve, as torchmetrics computes it with fixed thresholds."""
    import torch

    p = torch.cat([precision.nan_to_num(0.0), torch.ones(1, dtype=precision.dtype)])
    r = torch.cat([recall.nan_to_num(0.0), torch.zeros(1, dtype=recall.dtype)])
    return float(-torch.sum((r[1:] - r[:-1]) * p[:-1]))


# ------------------------------------------------------------------ the study


def load_importances(info: StudyInfo) -> tuple[dict[str, float] | None, str]:
    """Optuna parameter importances of the study, or ``(None, why not)``."""
    import optuna

    storage_spec = info.study.get("storage")
    name = info.study.get("study_name")
    complete = [t for t in info.trials if t.get("state") == "COMPLETE"]
    if len(complete) < 3:
        return None, f"Parameter importances need at least 3 complete trials; this study has {len(complete)}."
    try:
        storage = _open_storage(info.path, storage_spec)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=name, storage=storage)
        # PED-ANOVA (Optuna 5's default): deterministic, fast, and meaningful for a few dozen trials.
        values = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except Exception as exc:  # noqa: BLE001 - importances are optional; the report says why they are missing
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return None, f"Parameter importances are not shown: the study could not be analysed ({first})."
    if not values:
        return None, "Parameter importances are not shown: the study has no varying parameter."
    return {k: float(v) for k, v in values.items()}, ""


def _open_storage(folder: Path, spec: Any):
    """The Optuna storage named in study.json: a database URL, or a journal file (relative to the run)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if spec is None:
        candidates = sorted(folder.glob("*.journal")) + sorted(folder.glob("*.log"))
        if not candidates:
            raise RunError(f"{folder}: no storage in study.json and no journal file")
        spec = str(candidates[0])
    spec = str(spec)
    if "://" in spec and not spec.startswith("file://"):
        if "***" in spec:
            raise RunError("the database password is not saved in study.json")
        return spec  # an RDB URL (sqlite:///..., postgresql://...)
    path = Path(spec.removeprefix("journal:").removeprefix("file://"))
    if not path.is_absolute():
        path = folder / path
    if not path.is_file() and (folder / path.name).is_file():
        path = folder / path.name  # the run folder was moved after study.json was written
    if not path.is_file():
        raise RunError(f"{path}: journal file not found")
    return JournalStorage(JournalFileBackend(str(path)))


def trial_curve(trial: dict[str, Any]) -> list[float]:
    """Per-epoch values of the tuned metric reported by a trial."""
    for key in ("values", "intermediate_values", "curve", "epoch_values"):
        v = trial.get(key)
        if isinstance(v, dict):  # {epoch: value}
            return [float(v[k]) for k in sorted(v, key=lambda s: int(s))]
        if isinstance(v, list):
            return [float(x) for x in v]
    return []


def trial_epochs(trial: dict[str, Any]) -> int:
    for key in ("epochs", "epochs_reached"):
        if isinstance(trial.get(key), (int, float)):
            return int(trial[key])
    return len(trial_curve(trial))
