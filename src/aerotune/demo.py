"""The end-to-end demo on a synthetic dataset: synthesise, prepare, tune (baseline first), report, predict.

Everything lands in one folder; nothing is downloaded. Sized to finish in a few minutes on 2 CPU cores.
The baseline is trial 0 of the study (the reference's initial parameters, trained for every epoch), so
baseline and tuned models share the patches, the split and the epoch budget. A fifth of the scenes is held out
as the test portion, so the report's verdict is measured on images that neither training nor the choice of the
best trial saw, and the report retrains each compared trial with two more seeds to say whether the difference
exceeds the seed noise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aerotune.config import RunConfig
from aerotune.outputs import writing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPlan:
    scenes: int
    size: int
    patch_size: int
    epochs: int  # HyperBand's R: the baseline and every surviving trial train this many epochs
    trials: int  # the baseline included
    max_epochs_total: int  # hard cap over all trials
    new_scenes: int  # unseen scenes segmented at the end, by the tuned and the baseline model
    new_size: int
    big_size: int  # one large unseen scene segmented whole, in bounded memory, by the tuned model
    test_fraction: float = 0.2  # scenes held out whole: the report's unbiased verdict is measured on them
    seeds: int = 2  # the report retrains each compared trial with this many seeds (report --seeds)


FULL = DemoPlan(
    scenes=16,
    size=256,
    patch_size=64,
    epochs=6,
    trials=10,
    max_epochs_total=36,
    new_scenes=2,
    new_size=384,
    big_size=2000,
)
QUICK = DemoPlan(
    scenes=6, size=128, patch_size=32, epochs=3, trials=4, max_epochs_total=9, new_scenes=1, new_size=96, big_size=200
)

#: The demo's search space (NNI format): five levers of the default space, over ranges that suit the demo.
DEMO_SPACE = {
    "learning_rate": {"_type": "loguniform", "_value": [0.0005, 0.02]},
    "weight_decay": {"_type": "loguniform", "_value": [0.00001, 0.1]},
    "batch_size": {"_type": "choice", "_value": [8, 16, 32]},
    "jitter": {"_type": "uniform", "_value": [0.0, 0.4]},
    "norm": {"_type": "choice", "_value": ["none", "batch", "group"]},
}


def demo_config(plan: DemoPlan) -> RunConfig:
    """aerotune's default recipe on the demo's patches (trial 0 trains the reference's recipe instead)."""
    return RunConfig().with_overrides(
        {
            "data.patch_size": plan.patch_size,
            "data.test_fraction": plan.test_fraction,
            "train.epochs": plan.epochs,
            "train.progress": False,
        }
    )


@dataclass
class StepClock:
    """Wall and CPU seconds of each demo step, printed after the step and summed up at the end."""

    echo: Callable[[str], None]
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    _start: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._start = (time.perf_counter(), time.process_time())

    def elapsed(self) -> float:
        return time.perf_counter() - self._start[0]

    def stop(self, name: str, detail: str = "") -> float:
        """End the step ``name``: print its time (and ``detail``), return its wall seconds."""
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        self.steps[name] = (wall, cpu)
        self.echo(f"      {name} took {wall:.1f} s (CPU {cpu:.1f} s){'; ' + detail if detail else ''}")
        self.start()
        return wall

    def summary(self) -> str:
        return "time per step: " + ", ".join(f"{k} {w:.0f} s" for k, (w, _c) in self.steps.items())


def run_demo(out: Path, *, quick: bool = False, echo=print) -> dict[str, Path]:
    """Run every stage into ``out`` and return the paths written.

    An earlier demo in ``out`` is moved aside while the new one runs and removed only when it has finished:
    a demo that fails or is interrupted half-way leaves no half demo behind and the earlier one as it was."""
    plan = QUICK if quick else FULL
    with writing(out, "demo", replace="aside"):
        return _run_stages(Path(out), plan, echo)


def _run_stages(out: Path, plan: DemoPlan, echo) -> dict[str, Path]:
    """The six steps, each timed by one clock; return the paths written."""
    t0 = time.perf_counter()
    clock = StepClock(echo)
    clock.start()
    config = demo_config(plan)
    _synthesise(out, plan, echo, clock)
    _prepare(out, plan, config, echo, clock)
    _tune(out, plan, config, echo, clock)
    report = _report(out, plan, echo, clock)
    tuned = _new_scenes(out, plan, report, echo, clock)
    _big_scene(out, plan, tuned, echo, clock)
    echo(clock.summary())

    echo(f"done in {time.perf_counter() - t0:.0f} s; everything is in {out}")
    echo(f"report: {report.html}")
    return {
        "data": out / "data",
        "cache": out / "cache",
        "tune": out / "tune",
        "report": report.html,
        "predictions": out / "predictions",
        "big-scene": out / "big-scene",
    }


def _synthesise(out: Path, plan: DemoPlan, echo, clock: StepClock) -> None:
    """Step 1: the synthetic aerial scenes."""
    from aerotune.data.synthetic import write_synthetic_dataset

    echo(f"[1/6] synthesising {plan.scenes} aerial scenes of {plan.size}x{plan.size} -> {out / 'data'}")
    synth = write_synthetic_dataset(out / "data", scenes=plan.scenes, size=plan.size, seed=7)
    echo("      class shares: " + ", ".join(f"{k} {v:.0%}" for k, v in synth.class_fractions.items()))
    clock.stop("synthesise")


def _prepare(out: Path, plan: DemoPlan, config: RunConfig, echo, clock: StepClock) -> None:
    """Step 2: the patch cache every trial shares."""
    from aerotune.data.palette import Palette
    from aerotune.data.patches import prepare_patches

    echo(f"[2/6] cutting {plan.patch_size}x{plan.patch_size} patches -> {out / 'cache'}")
    cache = prepare_patches(out / "data", out / "cache", config.data, Palette.dubai())
    echo(f"      {len(cache)} patches")
    clock.stop("prepare")


def _tune(out: Path, plan: DemoPlan, config: RunConfig, echo, clock: StepClock) -> None:
    """Step 3: the study (baseline and default recipe first), with the time its epochs took."""
    from aerotune.reference import baseline_text
    from aerotune.tune.space_parse import parse_space
    from aerotune.tune.study import TuneSettings, run_tune
    from aerotune.tune.summary import summary_lines

    echo(
        f"[3/6] tuning with HyperBand + random sampling: {plan.trials} trials, at most {plan.epochs} epochs each and "
        f"{plan.max_epochs_total} in all -> {out / 'tune'}"
    )
    echo(
        f"      trial 0 is the baseline (the reference's recipe and parameters: {baseline_text()}) and trial 1 "
        f"aerotune's default recipe untuned, each trained all {plan.epochs} epochs"
    )
    result = run_tune(
        TuneSettings(
            data=out / "cache",
            out=out / "tune",
            config=config,
            space=parse_space(DEMO_SPACE),
            trials=plan.trials,
            max_epochs_total=plan.max_epochs_total,
            seed=0,
            study_name="demo",
        )
    )
    for line in summary_lines(result):
        echo("      " + line)
    epochs = _epoch_seconds(out / "tune")
    tune_wall = clock.stop("tune", f"{epochs:.1f} s in the trials' epochs (training and validation)")
    echo(f"      the rest of tuning (start-up, study, checkpoints): {tune_wall - epochs:.1f} s")


def _report(out: Path, plan: DemoPlan, echo, clock: StepClock):
    """Step 4: the report, with what it concluded and what its parts cost."""
    from aerotune.report import make_report

    echo(
        f"[4/6] writing the report (reference, default recipe and tuned), each compared trial retrained with "
        f"{plan.seeds} more seeds -> {out / 'report'}"
    )
    marks: dict[str, float] = {}
    report = make_report(
        out / "tune",
        out=out / "report",
        seed=0,
        seeds=plan.seeds,
        progress=lambda msg: marks.setdefault(msg, time.perf_counter()),
    )
    drawing = time.perf_counter() - marks.get("drawing figures", time.perf_counter())
    seeds = report.data.get("seeds")
    retrain = f", seed retraining {seeds['cost']['seconds_now']:.1f} s" if seeds else ""
    clock.stop("report", f"figures and HTML {drawing:.1f} s of it{retrain}, the rest evaluating the models")
    for name, model in report.data["models"].items():
        echo(f"      {report.data['labels'].get(name, name)}: " + _metrics_line(model["val"]))
    for note in report.data["notes"]:
        if note.startswith("Recipe and tuning"):
            echo("      " + note)
    echo("      " + report.data["verdict"]["text"])
    if seeds:
        from aerotune.report.seed_text import cost_text

        echo("      seed noise: " + seeds["verdict"])
        echo("      " + cost_text(seeds))
    return report


def _new_scenes(out: Path, plan: DemoPlan, report, echo, clock: StepClock):
    """Step 5: new scenes segmented by the tuned model, scored with the baseline's; return the tuned model."""
    from aerotune.data.synthetic import write_synthetic_dataset
    from aerotune.predict.run import predict_files
    from aerotune.predict.scene import Predictor

    echo(
        f"[5/6] segmenting {plan.new_scenes} new scene(s) of {plan.new_size}x{plan.new_size} with the tuned "
        f"model -> {out / 'predictions'}"
    )
    new = write_synthetic_dataset(out / "new-scenes", scenes=plan.new_scenes, size=plan.new_size, seed=2026, tiles=1)
    images = sorted(new.root.glob("*/images/*"))
    tuned = Predictor.load(out / "tune")
    predict_files(tuned, images, out / "predictions", overlay=True)
    # the tuned model is scored on the masks it just wrote, not by segmenting the scenes a second time
    scores = {"tuned": _mean_accuracy(tuned, images, written=out / "predictions")}
    if "baseline" in report.data["models"]:  # the study's baseline trial, as the report evaluated it
        scores["baseline"] = _mean_accuracy(Predictor.load(report.data["models"]["baseline"]["run"]), images)
    echo("      pixel accuracy on the new scenes: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    clock.stop("new scenes")
    return tuned


def _big_scene(out: Path, plan: DemoPlan, tuned, echo, clock: StepClock) -> None:
    """Step 6: one large scene segmented whole in bounded memory, with its speed."""
    from aerotune.data.synthetic import write_synthetic_dataset
    from aerotune.predict.run import scene_accuracy

    echo(
        f"[6/6] segmenting one whole {plan.big_size}x{plan.big_size} scene in bounded memory with the tuned model "
        f"-> {out / 'big-scene'}"
    )
    big = write_synthetic_dataset(out / "big-scene", scenes=1, size=plan.big_size, seed=2027, tiles=1)
    image = next(big.root.glob("*/images/*"))
    t1 = time.perf_counter()
    written = clock.elapsed()
    accuracy = scene_accuracy(tuned, image, next(big.root.glob("*/masks/*")))
    seconds = time.perf_counter() - t1
    echo(
        f"      whole-image pixel accuracy {accuracy:.3f} ({plan.big_size**2 / 1e6:.2f} megapixels in "
        f"{seconds:.0f} s, {plan.big_size**2 / 1e6 / max(seconds, 1e-9):.2f} MP/s)"
    )
    clock.stop("big scene", f"{written:.1f} s of it writing the scene")


def _epoch_seconds(tune: Path) -> float:
    """The seconds of every epoch of every trial, as their histories record them (training and validation)."""
    total = 0.0
    for history in tune.glob("trials/*/history.json"):
        total += sum(float(r.get("seconds", 0.0)) for r in json.loads(history.read_text()))
    return total


def _mean_accuracy(predictor, images: list[Path], written: Path | None = None) -> float:
    """Mean whole-scene pixel accuracy over ``images`` against their own masks (labelled pixels only).

    ``written``: a folder where ``predict_files`` wrote this predictor's masks (``<stem>.png``, class ids), read
    instead of segmenting the images again.
    """
    from aerotune.predict.run import mask_ids, scene_accuracy
    from aerotune.reading import load_image

    masks = [next(p.parent.parent.joinpath("masks").glob(f"{p.stem}.*")) for p in images]
    if written is None:
        return float(np.mean([scene_accuracy(predictor, i, m) for i, m in zip(images, masks)]))
    scores = []
    for image, mask in zip(images, masks):
        truth, _unknown = mask_ids(predictor, mask)
        pred = np.asarray(load_image(written / f"{image.stem}.png", what="mask"))
        labelled = truth != predictor.palette.ignore_index
        scores.append(np.count_nonzero((pred == truth) & labelled) / max(1, np.count_nonzero(labelled)))
    return float(np.mean(scores))


def _metrics_line(m: dict) -> str:
    def f(key: str, fmt: str = ".3f") -> str:
        v = m.get(key)
        return "n/a" if v is None else format(v, fmt)

    return (
        f"validation loss {f('loss', '.4f')}, mean IoU {f('mean_iou')}, pixel accuracy {f('pixel_accuracy')} "
        f"(majority class {f('majority_rate')}), precision/recall {f('precision_ref')}/{f('recall_ref')}"
    )
