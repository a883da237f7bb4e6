"""What an epoch of aerotune's default recipe costs against the reference recipe's, on the same patches.

Both recipes train the same synthetic patch cache (128-px patches; the default recipe on its random 64-px windows,
four per patch, so both see the same pixels) through the real training step (``train.step.train_epoch``), in one
process, alternating epochs so a busy machine slows both alike; the best of ``--repeats`` epochs is kept. Variants
of the default recipe (no augmentation, no normalisation layers, whole patches) show where the difference comes
from. Prints the CPU it ran on and the ratio to the reference measured in the same run.

Usage: python benchmarks/recipe_epoch.py [--repeats 3] [--scenes 12] [--threads 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from aerotune.config import DataConfig, RunConfig, load_config
from aerotune.data.dataset import make_split
from aerotune.data.palette import Palette
from aerotune.data.patches import prepare_patches
from aerotune.data.synthetic import write_synthetic_dataset
from aerotune.model.losses import make_loss
from aerotune.model.unet import build_model
from aerotune.runtime import autocast_dtype, select_device, torch_threads
from aerotune.train.fit import make_datasets
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.step import learning_rate, make_optimizer, prepare_model, resolve_speed, train_epoch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import cpu_name  # noqa: E402


def variants() -> dict[str, RunConfig]:
    default = load_config(None)
    return {
        "reference": load_config(None, preset="reference"),
        "default": default,
        "default, no colour cast": default.with_overrides({"data.channel_gamma": 0.0}),
        "default, no flips, jitter or cast": default.with_overrides(
            {"data.augment": False, "data.jitter": 0.0, "data.channel_gamma": 0.0}
        ),
        "default, no batch norm": default.with_overrides({"model.norm": "none"}),
        "default, whole patches": default.with_overrides({"data.window": 1.0}),
        "default, batch of 64 windows": default.with_overrides({"train.batch_size": 64}),
        "default, depth 4": default.with_overrides({"model.depth": 4}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    device = select_device("cpu")
    with tempfile.TemporaryDirectory() as tmp, torch_threads(args.threads):
        root = Path(tmp)
        write_synthetic_dataset(root / "data", scenes=args.scenes, size=256, seed=3, tiles=2)
        cache = prepare_patches(root / "data", root / "cache", DataConfig(patch_size=128), Palette.dubai())
        runs = {}
        for name, config in variants().items():
            config = config.with_overrides({"data.patch_size": 128, "train.progress": False})
            train, _val, _stats = make_datasets(cache, config, make_split(cache, config.data))
            torch.manual_seed(0)
            model = build_model(config.model, num_classes=cache.palette.num_classes)
            speed = resolve_speed(config.train, device)
            runs[name] = (config, train, prepare_model(model, speed), make_optimizer(model, config.train, speed))
        dtype = autocast_dtype("auto", device)
        print(f"CPU: {cpu_name()}; precision {dtype or 'fp32'}; {len(cache)} patches of 128 px", flush=True)
        best = {name: float("inf") for name in runs}
        for rep in range(args.repeats):
            for name, (config, train, model, optimizer) in runs.items():
                tc = config.train
                schedule = None if tc.schedule == "constant" else (lambda b, n, tc=tc: learning_rate(tc, 1, b, n, 10))
                t0 = time.perf_counter()
                train_epoch(
                    model,
                    optimizer,
                    make_loss(tc, ignore_index=255),
                    train,
                    list(range(len(train))),
                    batch_size=tc.batch_size,
                    device=device,
                    dtype=dtype,
                    channels_last=False,
                    metrics=SegmentationMetrics(cache.palette.names, ignore_index=255, device=device),
                    schedule=schedule,
                )
                best[name] = min(best[name], time.perf_counter() - t0)
                print(f"  repeat {rep + 1}: {name}: {time.perf_counter() - t0:.2f} s", flush=True)
    ref = best["reference"]
    print("\n| recipe | best epoch, s | ratio to the reference |\n|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {seconds / ref:.2f} |")


if __name__ == "__main__":
    main()
