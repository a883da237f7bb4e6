"""Does bf16 autocast on CPU keep the U-Net's quality? Same run, same seed, fp32 against bf16.

Trains the reference U-Net on the Dubai set (scale 0.25, 64x64 patches, unknown colours ignored) for
``--epochs`` epochs in each precision and prints seconds per epoch, training throughput, and the
validation loss / mean IoU of every epoch, then the speed ratio.

Usage: python benchmarks/bf16_quality.py [--data ../shared/datasets/dubai-aerial] [--epochs 8] [--work /tmp/bf16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from aerotune.config import RunConfig
from aerotune.data.run_data import cache_for
from aerotune.train.fit import fit

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai-aerial"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--work", default="/tmp/aerotune-bf16")
    parser.add_argument("--learning-rate", type=float, default=0.002)
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data}: Dubai dataset not found; pass --data")
    work = Path(args.work)
    base = RunConfig().with_overrides(
        {
            "data.scale": 0.25,
            "data.patch_size": 64,
            "data.unknown_colors": "ignore",
            "train.epochs": args.epochs,
            "train.learning_rate": args.learning_rate,
            "train.progress": False,
        }
    )
    cache = cache_for(args.data, base.data, work / "cache")
    results = {}
    for precision in ("fp32", "bf16"):
        run = work / precision
        shutil.rmtree(run, ignore_errors=True)
        r = fit(base.with_overrides({"train.precision": precision}), cache, run)
        n_train = r.metrics.patches["train"]
        secs = [h["seconds"] for h in r.history]
        results[precision] = (sum(secs) / len(secs), r.history)
        print(
            f"{precision}: {sum(secs) / len(secs):.2f} s/epoch ({n_train * len(secs) / sum(secs):.1f} patches/s "
            "training, validation included)"
        )
        for h in r.history:
            print(
                f"  epoch {h['epoch']}: val loss {h['val_loss']:.4f}, val mIoU {h['val_mean_iou']:.3f}, "
                f"pixel accuracy {h['val_pixel_accuracy']:.3f}"
            )
    f32, b16 = results["fp32"], results["bf16"]
    print(f"speed: bf16 is {f32[0] / b16[0]:.2f}x fp32")
    best = {p: min(h["val_loss"] for h in r[1]) for p, r in results.items()}
    miou = {p: r[1][-1]["val_mean_iou"] for p, r in results.items()}
    print(
        f"best val loss: fp32 {best['fp32']:.4f}, bf16 {best['bf16']:.4f}; final mIoU: fp32 {miou['fp32']:.3f}, "
        f"bf16 {miou['bf16']:.3f}"
    )


if __name__ == "__main__":
    main()
