"""``aerotune report RUN --seeds K``: retrain the study's compared trials with K seeds each, to measure seed noise.

One trial's number on the validation patches is one draw: another ``train.seed`` (weights, batch order,
augmentation) gives another. The report retrains each compared trial (the reference, the default recipe, the
tuned one) with ``train.seed`` = the trial's seed + 1 … + K, on the study's patches and split for the study's
``max_resource`` epochs, and judges the difference of the means with Welch's t-test (``seed_stats.py``). The
trials themselves are left out of the means: the best trial was chosen *because* its draw was good.

Where the retrainings live: ``RUN/seeds/<trial>-seed<k>/``, ordinary training run folders (marked ``train-run``,
resumable with ``fit``) inside a folder of their own kind (``seeds``, locked while a report retrains). They belong
to the study, not to one report: the report folder is replaced whole each time it is written, so retrainings kept
there could not survive an interrupted report, and a report written to another ``--out`` reuses them too. A
finished retraining is reused as it is, an unfinished one resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aerotune.errors import AerotuneError, RunError
from aerotune.outputs import Output, check_output, mark, writing
from aerotune.report.collect import Sources
from aerotune.report.records import SeedComparison, SeedCost, SeedModel, SeedsSection
from aerotune.report.seed_stats import ALPHA, TEST_NAME, comparison, spread

log = logging.getLogger(__name__)

#: The folder of a tuning run that holds the retrainings.
SEEDS_DIR = "seeds"
#: Seeds per model when ``--seeds`` is not given and the study's own budget covers them.
DEFAULT_SEEDS = 3
#: The most seeds a report retrains (more is a mistake rather than a plan).
MAX_SEEDS = 20
#: How the note that there is no seed verdict begins (the CLI prints it too).
NO_SEEDS = "No seed verdict"
#: The compared models, in the order the report shows them.
ROLES = ("baseline", "default", "tuned")


@dataclass(frozen=True, kw_only=True)
class SeedJob:
    """One retraining: a trial's settings with another ``train.seed``."""

    trial: int
    seed: int
    path: Path
    config: Any  # RunConfig
    finished: bool


@dataclass(frozen=True, kw_only=True)
class SeedPlan:
    """What ``--seeds`` will retrain; checked, nothing written yet."""

    k: int
    note: str = ""  # why there is no seed verdict (default K = 0)
    models: dict[str, int] = field(default_factory=dict)  # role -> trial number
    jobs: list[SeedJob] = field(default_factory=list)
    epochs: int = 0  # each retraining's epochs: the study's max resource
    output: Output | None = None  # RUN/seeds

    @property
    def epochs_total(self) -> int:
        """Epochs of all retrainings together."""
        return self.epochs * len(self.jobs)


@dataclass(frozen=True)
class SeedNumbers:
    """Each retraining's numbers by (trial, seed), and what they were measured on."""

    runs: dict[tuple[int, int], dict[str, float]]  # val_loss, val_mean_iou (and test_mean_iou, test_pixel_accuracy)
    basis: str  # test or validation
    test_images: int


def check_seeds(seeds: int | None) -> None:
    """A ``--seeds`` value outside 0..MAX_SEEDS is a one-line ``RunError``."""
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int) or not 0 <= seeds <= MAX_SEEDS):
        raise RunError(
            f"--seeds {seeds!r} is out of range; use a whole number from 0 (off) to {MAX_SEEDS}, e.g. --seeds 3"
        )


def plan_seeds(src: Sources, seeds: int | None, *, external_baseline: bool) -> SeedPlan:
    """Decide K (``seeds``; None: 3 when the study's own epochs cover them, else 0 with a note) and check every
    retraining folder. Writes nothing. Raises ``RunError`` for ``--seeds`` on what cannot be retrained."""
    check_seeds(seeds)
    if seeds == 0:
        return SeedPlan(k=0)
    study = src.study
    if study is None or external_baseline:
        if seeds is None:
            return SeedPlan(k=0)
        what = "a training run" if study is None else "a study compared with --baseline RUN"
        raise RunError(
            f"--seeds {seeds}: seed retraining needs a tuning run's own trials, and this is {what}; report the "
            "tuning run folder without --baseline, or use --seeds 0"
        )
    models = _models(src)
    trials = sorted(set(models.values()))
    r = int(study.study.max_resource)
    if seeds is None:
        spent = study.summary.epochs_spent if study.summary else 0
        cost = DEFAULT_SEEDS * len(trials) * r
        if cost > spent:
            return SeedPlan(
                k=0,
                note=f"{NO_SEEDS}: {DEFAULT_SEEDS} seeds × {len(trials)} model(s) × {r} epochs = {cost} epochs "
                f"would cost more than the study's own {spent}; ask for it with aerotune report RUN --seeds K "
                f"(each seed costs {len(trials) * r} epochs).",
            )
        seeds = DEFAULT_SEEDS
    folder = study.path / SEEDS_DIR
    output = check_output(folder, "seeds", option="the seed retraining folder")
    jobs = [_job(study.trial_dir(t), folder, t, i, r) for t in trials for i in range(1, seeds + 1)]
    return SeedPlan(k=seeds, models=models, jobs=jobs, epochs=r, output=output)


def _models(src: Sources) -> dict[str, int]:
    study = src.study
    assert study is not None and study.best_trial is not None
    found = {"tuned": study.best_trial}
    if src.baseline is not None and study.baseline_trial is not None:
        found["baseline"] = study.baseline_trial
    if src.default is not None:
        found["default"] = next(t.number for t in study.trials if t.default_recipe and t.state == "COMPLETE")
    return {k: found[k] for k in ROLES if k in found}


def _job(trial_dir: Path, folder: Path, trial: int, i: int, epochs: int) -> SeedJob:
    """The retraining of ``trial`` with its seed + ``i``, checked against what its folder already holds."""
    from aerotune.train.fit import check_resume
    from aerotune.train.records import RunMetrics, read_training_run

    run = read_training_run(trial_dir)
    seed = int(run.config.train.seed) + i
    config = run.config.with_overrides({"train.seed": seed, "train.epochs": epochs, "train.progress": False})
    path = folder / f"{trial:04d}-seed{seed}"
    finished = False
    if path.exists():
        check_output(path, "train-run", option="the seed retraining folder")
        try:
            check_resume(path, config)
        except AerotuneError as exc:
            raise RunError(
                f"{path}: holds a retraining with other settings than trial {trial} ({str(exc).split('; ')[0]}); "
                "remove that folder to retrain it"
            ) from None
        if (path / RunMetrics.FILE).is_file():
            m = RunMetrics.read(path / RunMetrics.FILE, fix=f"remove {path} to retrain it")
            finished = m.status == "diverged" or (m.status == "completed" and m.epochs >= epochs)
    return SeedJob(trial=trial, seed=seed, path=path, config=config, finished=finished)


def run_seeds(plan: SeedPlan, src: Sources, cache, say: Callable[[str], None]) -> tuple[int, float]:
    """Train every unfinished retraining (resuming any with a checkpoint); return the epochs and seconds spent."""
    from aerotune.train.fit import fit

    assert plan.output is not None
    t0, trained = time.perf_counter(), 0
    split = src.tuned.split  # every trial of a study trains on the study's split
    keep = lambda: any(j.path.is_dir() for j in plan.jobs)  # noqa: E731 - a finished or begun retraining stays
    with writing(plan.output.path, "seeds", keep=keep, option="the seed retraining folder"):
        for n, job in enumerate(plan.jobs, 1):
            where = f"trial {job.trial} with seed {job.seed} ({n}/{len(plan.jobs)})"
            if job.finished:
                say(f"reusing the finished retraining of {where}: {job.path}")
                continue
            resumed = (job.path / "checkpoints" / "last.pt").is_file()
            say(f"{'resuming' if resumed else 'retraining'} {where} for {plan.epochs} epochs -> {job.path}")
            job.path.mkdir(exist_ok=True)  # signals are only recorded: the folder is never there without its marker
            mark(job.path, "train-run")
            before = _epochs_done(job.path)
            result = fit(job.config, cache, job.path, split=split)
            trained += result.epochs - before
    return trained, round(time.perf_counter() - t0, 1)


def _epochs_done(path: Path) -> int:
    """Epochs a retraining folder has logged (0 without a readable history)."""
    import json

    try:
        return len(json.loads((path / "history.json").read_text()))
    except (OSError, ValueError):
        return 0


def seed_numbers(plan: SeedPlan, src: Sources, cache, *, device: str, say: Callable[[str], None]) -> SeedNumbers:
    """Each retraining's validation loss and mean IoU (and, with a test portion, its whole test images')."""
    from aerotune.report.whole import test_samples
    from aerotune.train.records import read_training_run

    samples = test_samples(src.tuned, cache)
    per_run: dict[tuple[int, int], dict[str, float]] = {}
    for job in plan.jobs:
        run = read_training_run(job.path)
        if run.best_epoch is None:  # diverged before its first epoch ended: nothing to judge
            continue
        best = next(h for h in run.history if h["epoch"] == run.best_epoch)
        found = {"val_loss": float(best["val_loss"]), "val_mean_iou": float(best["val_mean_iou"])}
        if samples:
            from aerotune.predict.evaluate import score_samples
            from aerotune.predict.scene import Predictor

            say(f"evaluating trial {job.trial}'s seed {job.seed} on {len(samples)} whole test image(s)")
            pooled = score_samples(Predictor.load(run.checkpoint, device=device), samples)["pooled"]
            found |= {"test_mean_iou": pooled["mean_iou"], "test_pixel_accuracy": pooled["pixel_accuracy"]}
        per_run[(job.trial, job.seed)] = found
    return SeedNumbers(per_run, "test" if samples else "validation", len(samples or []))


def section(plan: SeedPlan, numbers: SeedNumbers, cost: tuple[int, float], labels: dict[str, str]) -> SeedsSection:
    """``report.json``'s ``seeds``: per model mean ± spread, the comparisons and the verdict sentence."""
    from aerotune.report.seed_text import basis_text, verdict_text

    iou_key = "test_mean_iou" if numbers.basis == "test" else "val_mean_iou"
    values = {role: _values(plan, numbers, trial, iou_key) for role, trial in plan.models.items()}
    models = {role: _seed_model(plan, numbers, trial, iou_key) for role, trial in plan.models.items()}
    found = SeedsSection(
        k=plan.k,
        epochs_each=plan.epochs,
        folder=str(plan.output.path.resolve()) if plan.output else "",
        basis=numbers.basis,
        basis_text=basis_text(numbers.basis, numbers.test_images),
        test=TEST_NAME,
        alpha=ALPHA,
        models=models,
        comparisons=_comparisons(values, iou_key),
        cost=SeedCost(
            runs=len(plan.jobs),
            epochs=plan.epochs_total,
            seconds=round(sum(_seconds(j.path) for j in plan.jobs), 1),
            epochs_now=cost[0],
            seconds_now=cost[1],
        ),
    )
    return dataclasses.replace(found, verdict=verdict_text(found, labels))


def _measured(plan: SeedPlan, numbers: SeedNumbers, trial: int) -> list[dict[str, float]]:
    """The numbers of ``trial``'s retrainings that gave any."""
    return [
        numbers.runs[(j.trial, j.seed)] for j in plan.jobs if j.trial == trial and (j.trial, j.seed) in numbers.runs
    ]


def _values(plan: SeedPlan, numbers: SeedNumbers, trial: int, iou_key: str) -> dict[str, list[float]]:
    """``trial``'s validation losses and mean IoUs (on the basis), one per retraining."""
    mine = _measured(plan, numbers, trial)
    return {k: [m[k] for m in mine if m.get(k) is not None] for k in ("val_loss", iou_key)}


def _seed_model(plan: SeedPlan, numbers: SeedNumbers, trial: int, iou_key: str) -> SeedModel:
    """One compared model's retrainings: its seeds, folders, and mean ± spread of each number."""
    values, mine = _values(plan, numbers, trial, iou_key), _measured(plan, numbers, trial)
    test = numbers.basis == "test"
    return SeedModel(
        trial=trial,
        seeds=[j.seed for j in plan.jobs if j.trial == trial],
        runs=[str(j.path.resolve()) for j in plan.jobs if j.trial == trial],
        val_loss=spread(values["val_loss"]),
        mean_iou=spread(values[iou_key]),
        pixel_accuracy=spread([m["test_pixel_accuracy"] for m in mine]) if test else None,
        val_mean_iou=spread([m["val_mean_iou"] for m in mine]) if test else None,
    )


def _comparisons(values: dict[str, dict[str, list[float]]], iou_key: str) -> list[SeedComparison]:
    """Tuned against the reference, tuned against the default recipe, the default recipe against the reference."""
    found = []
    for a, b in (("tuned", "baseline"), ("tuned", "default"), ("default", "baseline")):
        if not {a, b} <= set(values):
            continue
        va, vb = values[a], values[b]
        if not (va[iou_key] and vb[iou_key]):
            continue
        found.append(
            SeedComparison(
                model=a,
                than=b,
                mean_iou=comparison(va[iou_key], vb[iou_key], higher_is_better=True),
                val_loss=comparison(va["val_loss"], vb["val_loss"], higher_is_better=False),
            )
        )
    return found


def _seconds(path: Path) -> float:
    """Seconds a retraining folder's logged epochs took."""
    import json

    try:
        return sum(float(h.get("seconds", 0.0)) for h in json.loads((path / "history.json").read_text()))
    except (OSError, ValueError):
        return 0.0


def seed_verdict(
    plan: SeedPlan, src: Sources, *, labels: dict[str, str], device: str, say: Callable[[str], None]
) -> SeedsSection:
    """Retrain what ``plan`` says (reusing finished retrainings), evaluate them and return the ``seeds`` section."""
    from aerotune.report.evaluate import open_run_cache

    cache = open_run_cache(src.tuned)
    say(f"seed noise: {len(plan.jobs)} retraining(s) of {plan.epochs} epochs in {plan.output.path}")
    cost = run_seeds(plan, src, cache, say)
    return section(plan, seed_numbers(plan, src, cache, device=device, say=say), cost, labels)
