"""Does the fast training path keep the U-Net's quality? The same run twice: every speed switch off, then defaults.

``plain``: ``train.precision=fp32``, ``channels_last=off``, ``fused_adam=off``, ``fast_dropout=off``, ``compile=off``
(torch's own layers and optimizer loop, the code before the speed work); ``fast``: the defaults
(``auto`` everywhere). Dubai set at scale 0.25, 64x64 patches, unknown colours ignored, the reference's split and
seed. Prints seconds per epoch and the validation loss / mean IoU of every epoch, then the differences.

Usage: python benchmarks/fast_path_quality.py [--data ../shared/datasets/dubai-aerial] [--epochs 4] [--threads 0]
       [--work /tmp/aerotune-fastq]
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
PLAIN = {
    "train.precision": "fp32",
    "train.channels_last": "off",
    "train.fused_adam": "off",
    "train.fast_dropout": "off",
    "train.compile": "off",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=0.002)
    parser.add_argument("--work", default="/tmp/aerotune-fastq")
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
            "train.threads": args.threads,
        }
    )
    cache = cache_for(args.data, base.data, work / "cache")
    results = {}
    for name, overrides in (("plain", PLAIN), ("fast", {})):
        run = work / name
        shutil.rmtree(run, ignore_errors=True)
        r = fit(base.with_overrides(overrides), cache, run)
        secs = [h["seconds"] for h in r.history]
        results[name] = r.history
        print(
            f"{name}: {sum(secs) / len(secs):.1f} s/epoch (validation included), precision {r.metrics.precision}",
            flush=True,
        )
        for h in r.history:
            print(
                f"  epoch {h['epoch']}: {h['seconds']:.1f} s, val loss {h['val_loss']:.4f}, "
                f"val mIoU {h['val_mean_iou']:.4f}, pixel accuracy {h['val_pixel_accuracy']:.4f}",
                flush=True,
            )
    p, f = results["plain"], results["fast"]
    speed = sum(h["seconds"] for h in p) / sum(h["seconds"] for h in f)
    print(
        f"fast / plain: {speed:.2f}x the speed; final val mIoU plain {p[-1]['val_mean_iou']:.4f}, fast "
        f"{f[-1]['val_mean_iou']:.4f} (difference {f[-1]['val_mean_iou'] - p[-1]['val_mean_iou']:+.4f}); best val "
        f"loss plain {min(h['val_loss'] for h in p):.4f}, fast {min(h['val_loss'] for h in f):.4f}"
    )


if __name__ == "__main__":
    main()
