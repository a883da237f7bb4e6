"""Peak memory of cutting the Dubai set into 256x256 patches: aerotune's cache against the reference's arrays.

Each way runs in a fresh child process; its peak resident memory (ru_maxrss) is read after it exits.

* aerotune: ``prepare_patches`` (reference mode, 1,305 patches) into a uint8 memmap cache.
* reference: the seed system's loading, re-done with numpy: every patch min-max scaled into a float64
  array, masks one-hot encoded (Keras' ``to_categorical``, float32), all held in memory at once.

Usage: python benchmarks/prepare_memory.py [--data ../shared/datasets/dubai-aerial] [--skip-reference]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai-aerial"


def run_aerotune(data: str, out: str) -> None:
    from aerotune.config import DataConfig
    from aerotune.data.palette import Palette
    from aerotune.data.patches import prepare_patches

    cache = prepare_patches(data, out, DataConfig(unknown_colors="ignore"), Palette.dubai(), force=True)
    print(f"  aerotune: {len(cache)} patches", flush=True)


def run_reference(data: str, out: str) -> None:
    import numpy as np

    from aerotune.data.masks import read_mask_rgb
    from aerotune.data.palette import Palette
    from aerotune.data.sources import discover, read_image

    palette = Palette.dubai()
    images, masks = [], []
    for s in discover(data).samples:
        img = np.asarray(read_image(s.image))
        ids, _ = palette.encode(read_mask_rgb(s.mask))
        h, w = (img.shape[0] // 256) * 256, (img.shape[1] // 256) * 256
        for r in range(0, h, 256):
            for c in range(0, w, 256):
                patch = img[r : r + 256, c : c + 256].astype(np.float64)
                lo, hi = patch.min(axis=(0, 1)), patch.max(axis=(0, 1))
                images.append((patch - lo) / np.maximum(hi - lo, 1))
                masks.append(ids[r : r + 256, c : c + 256])
    x = np.array(images)
    del images
    labels = np.array(masks)
    y = np.eye(palette.num_classes, dtype=np.float32)[np.minimum(labels, palette.num_classes - 1)]
    print(f"  reference: {x.shape[0]} patches, {(x.nbytes + y.nbytes) / 2**30:.2f} GiB of arrays", flush=True)


def measure(target, data: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.get_context("spawn")
        t0 = time.perf_counter()
        proc = ctx.Process(target=target, args=(data, str(Path(tmp) / "cache")))
        proc.start()
        proc.join()
        seconds = time.perf_counter() - t0
        if proc.exitcode != 0:
            sys.exit(f"{target.__name__} failed with exit code {proc.exitcode}")
    # Children are measured one at a time, and RUSAGE_CHILDREN keeps the maximum over waited-for children.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data}: Dubai dataset not found; pass --data")
    ours, ours_s = measure(run_aerotune, args.data)
    print(f"aerotune prepare: peak RSS {ours:,.0f} MB, {ours_s:.1f} s (target: under 400 MB)")
    if not args.skip_reference:
        ref, ref_s = measure(run_reference, args.data)
        print(f"reference arrays: peak RSS {ref:,.0f} MB, {ref_s:.1f} s")
        print(f"ratio: aerotune uses {ours / ref:.3f} of the reference's peak memory ({ref / ours:.1f}x less)")


if __name__ == "__main__":
    main()
