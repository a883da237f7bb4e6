"""Leave-one-tile-out on the Dubai set: whole stitched tiles, with and without D4 test-time augmentation.

Eight folds: each tile is held out once; a model is trained on the other seven through the CLI (scale 0.25,
64-px patches, full mode, unknown colours ignored, validation inside the seven tiles split by tile) and
``aerotune evaluate`` scores the stitched held-out tile, once without TTA and once with D4 (the second
call does both; the time TTA costs is the difference of the two calls). Beside it, the leaky protocol
published numbers use: one model trained on all eight tiles with the default random patch split, and its
validation mean IoU on patches.

The dataset is never copied: each fold's data folders hold symlinks to the tile folders. Results are
appended to ``<work>/results.jsonl`` as they finish; a rerun skips what is already there.

One epoch by default: seven tiles at scale 0.25 give about 1,400 training patches of 64 px, and one epoch
(validation included) took 12-240 s on the 2-core fp32 machine, depending on what else ran (89 s for the first
one measured, which set the default).

Usage: python benchmarks/dubai_tiles.py [--data ../shared/datasets/dubai-aerial] [--epochs 1]
       [--work /tmp/aerotune-dubai-tiles] [--folds 1,2,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "dubai-aerial"
TILES = [f"Tile {i}" for i in range(1, 9)]
SETTINGS = [
    "--unknown-colors", "ignore", "--scale", "0.25", "--patch-size", "64", "--mode", "full",
    "--set", "train.learning_rate=0.002",
]  # fmt: skip


def aerotune(*args: str) -> float:
    """Run ``python -m aerotune ARGS`` with this repo's sources; return its wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aerotune", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"aerotune {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def link_tiles(folder: Path, data: Path, tiles: list[str]) -> Path:
    """A fresh folder of symlinks to ``tiles`` of ``data`` (the dataset itself is never copied)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for tile in tiles:
        (folder / tile).symlink_to(data / tile, target_is_directory=True)
    return folder


def pooled(metrics: dict[str, Any], mode: str) -> dict[str, float]:
    p = metrics["tta"][mode]["pooled"]
    return {"mean_iou": p["mean_iou"], "pixel_accuracy": p["pixel_accuracy"]}


def run_fold(k: int, data: Path, work: Path, epochs: int) -> dict[str, Any]:
    """Train on every tile but ``Tile k``; evaluate the stitched held-out tile without and with D4."""
    held = f"Tile {k}"
    fold = work / f"fold-{k}"
    train_data = link_tiles(fold / "train-data", data, [t for t in TILES if t != held])
    test_data = link_tiles(fold / "test-data", data, [held])
    run = fold / "run"
    train_s = aerotune(
        "train", "--data", str(train_data), "--out", str(run), "--restart", *SETTINGS,
        "--epochs", str(epochs), "--set", "data.split=tile",
    )  # fmt: skip
    plain_s = aerotune(
        "evaluate", str(run), "--data", str(test_data), "--split", "all", "--out", str(fold / "eval-none")
    )
    d4_s = aerotune(
        "evaluate", str(run), "--data", str(test_data), "--split", "all", "--tta", "d4", "--out", str(fold / "eval")
    )
    m = json.loads((fold / "eval" / "metrics.json").read_text())
    val = json.loads((run / "metrics.json").read_text())["final"]
    return {
        "kind": "fold",
        "held_out": held,
        "epochs": epochs,
        "train_seconds": round(train_s, 1),
        "inner_val_mean_iou": val["val_mean_iou"],
        "none": pooled(m, "none"),
        "d4": pooled(m, "d4"),
        "eval_seconds_none": round(plain_s, 1),
        "eval_seconds_none_and_d4": round(d4_s, 1),
        "tta_seconds": round(d4_s - plain_s, 1),
    }


def run_random(data: Path, work: Path, epochs: int) -> dict[str, Any]:
    """The leaky protocol: all eight tiles, random patch split; validation mean IoU on patches."""
    all_data = link_tiles(work / "random" / "data", data, TILES)
    run = work / "random" / "run"
    train_s = aerotune(
        "train", "--data", str(all_data), "--out", str(run), "--restart", *SETTINGS,
        "--epochs", str(epochs), "--set", "data.split=random",
    )  # fmt: skip
    val = json.loads((run / "metrics.json").read_text())["final"]
    return {
        "kind": "random",
        "epochs": epochs,
        "train_seconds": round(train_s, 1),
        "val_mean_iou": val["val_mean_iou"],
        "val_pixel_accuracy": val["val_pixel_accuracy"],
    }


def load(results: Path) -> list[dict[str, Any]]:
    if not results.exists():
        return []
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def append(results: Path, row: dict[str, Any]) -> None:
    with results.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def table(rows: list[dict[str, Any]]) -> str:
    folds = sorted((r for r in rows if r["kind"] == "fold"), key=lambda r: r["held_out"])
    lines = [
        "| held-out tile | mIoU | pixel acc. | mIoU D4 | pixel acc. D4 | D4 gain (mIoU) | eval s | D4 extra s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in folds:
        gain = r["d4"]["mean_iou"] - r["none"]["mean_iou"]
        lines.append(
            f"| {r['held_out']} | {r['none']['mean_iou']:.3f} | {r['none']['pixel_accuracy']:.3f} | "
            f"{r['d4']['mean_iou']:.3f} | {r['d4']['pixel_accuracy']:.3f} | {gain:+.3f} | "
            f"{r['eval_seconds_none']:.1f} | {r['tta_seconds']:.1f} |"
        )
    if folds:
        n = len(folds)

        def mean(get) -> float:
            return sum(get(r) for r in folds) / n

        m_none, m_d4 = mean(lambda r: r["none"]["mean_iou"]), mean(lambda r: r["d4"]["mean_iou"])
        lines.append(
            f"| **mean of {n} folds** | {m_none:.3f} | {mean(lambda r: r['none']['pixel_accuracy']):.3f} | "
            f"{m_d4:.3f} | {mean(lambda r: r['d4']['pixel_accuracy']):.3f} | {m_d4 - m_none:+.3f} | "
            f"{mean(lambda r: r['eval_seconds_none']):.1f} | {mean(lambda r: r['tta_seconds']):.1f} |"
        )
    for r in rows:
        if r["kind"] == "random":
            lines.append(
                f"\nSame settings, all 8 tiles, random patch split (leaky): validation mean IoU on patches "
                f"{r['val_mean_iou']:.3f}, pixel accuracy {r['val_pixel_accuracy']:.3f} "
                f"({r['epochs']} epochs, {r['train_seconds']:.0f} s)."
            )
    if folds:
        lines.append(
            f"Leave-one-tile-out: {len(folds)} fold(s), {folds[0]['epochs']} epochs each, "
            f"{mean(lambda r: r['train_seconds']):.0f} s training per fold on average; 'eval s' is one "
            "evaluate call without TTA (model loading included), 'D4 extra s' what the D4 pass adds."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", default="/tmp/aerotune-dubai-tiles")
    parser.add_argument("--folds", default="1,2,3,4,5,6,7,8", help="held-out tiles to run, e.g. 1,2")
    parser.add_argument("--skip-random", action="store_true", help="leave out the random-split run")
    args = parser.parse_args()
    data = Path(args.data).resolve()
    if not all((data / t).is_dir() for t in TILES):
        sys.exit(f"{args.data}: Dubai dataset (Tile 1 .. Tile 8) not found; pass --data")
    work = Path(args.work).resolve()
    if work == REPO or REPO in work.parents:
        sys.exit(f"{work}: --work must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    done = load(results)
    have = {r["held_out"] for r in done if r["kind"] == "fold" and r["epochs"] == args.epochs}
    jobs: list[Any] = [int(k) for k in args.folds.split(",")]
    if not args.skip_random and not any(r["kind"] == "random" and r["epochs"] == args.epochs for r in done):
        jobs.append("random")
    for job in jobs:
        if job != "random" and f"Tile {job}" in have:
            print(f"Tile {job}: already in {results}, skipped", flush=True)
            continue
        row = run_random(data, work, args.epochs) if job == "random" else run_fold(job, data, work, args.epochs)
        append(results, row)
        print(json.dumps(row), flush=True)
    print(table([r for r in load(results) if r["epochs"] == args.epochs]))


if __name__ == "__main__":
    main()
