"""The end-to-end demo on a synthetic dataset: synthesise, prepare, train a baseline, tune, report.

Everything lands in one folder; nothing is downloaded. Sized to finish in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aerotune.config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPlan:
    scenes: int
    size: int
    patch_size: int
    baseline_epochs: int


FULL = DemoPlan(scenes=16, size=256, patch_size=64, baseline_epochs=9)
QUICK = DemoPlan(scenes=6, size=128, patch_size=32, baseline_epochs=2)


def demo_config(plan: DemoPlan) -> RunConfig:
    """The reference U-Net and initial parameters, on the demo's patches."""
    return RunConfig().with_overrides({
        "data.patch_size": plan.patch_size,
        "train.epochs": plan.baseline_epochs,
        "train.progress": False,
    })


def run_demo(out: Path, *, quick: bool = False, echo=print) -> dict[str, Path]:
    """Run every stage into ``out`` (replaced if it holds an earlier demo) and return the paths written."""
    from aerotune.data.palette import Palette
    from aerotune.data.patches import prepare_patches
    from aerotune.data.synthetic import write_synthetic_dataset
    from aerotune.train.fit import fit

    plan = QUICK if quick else FULL
    out = Path(out)
    if out.exists():
        if not (out / ".aerotune-demo").exists():
            from aerotune.errors import RunError

            raise RunError(f"{out}: folder exists and is not an aerotune demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / ".aerotune-demo").write_text("written by aerotune demo\n")
    t0 = time.perf_counter()
    config = demo_config(plan)

    echo(f"[1/3] synthesising {plan.scenes} aerial scenes of {plan.size}x{plan.size} -> {out / 'data'}")
    synth = write_synthetic_dataset(out / "data", scenes=plan.scenes, size=plan.size, seed=7)
    echo("      class shares: " + ", ".join(f"{k} {v:.0%}" for k, v in synth.class_fractions.items()))

    echo(f"[2/3] cutting {plan.patch_size}x{plan.patch_size} patches -> {out / 'cache'}")
    cache = prepare_patches(out / "data", out / "cache", config.data, Palette.dubai())
    echo(f"      {len(cache)} patches")

    echo(f"[3/3] training the baseline U-Net (reference parameters: batch 16, lr 0.007, relu) for "
         f"{plan.baseline_epochs} epochs -> {out / 'baseline'}")
    baseline = fit(config, cache, out / "baseline")
    _print_metrics(echo, "baseline", baseline.history[-1])
    echo(f"done in {time.perf_counter() - t0:.0f} s; everything is in {out}")
    return {"data": out / "data", "cache": out / "cache", "baseline": out / "baseline"}


def _print_metrics(echo, name: str, m: dict) -> None:
    echo(f"      {name}: validation loss {m['val_loss']:.4f}, mean IoU {m['val_mean_iou']:.3f}, pixel accuracy "
         f"{m['val_pixel_accuracy']:.3f} (majority class {m['val_majority_rate']:.3f}), precision/recall "
         f"{m['val_precision_ref']:.3f}/{m['val_recall_ref']:.3f}")
