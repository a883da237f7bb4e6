"""Quality on places the model never saw: aerotune's default recipe against the reference's, on the Dubai set.

Two protocols, each for both recipes (``--preset default`` and ``--preset reference``) at the same scale,
patches and epochs:

* **leave-one-tile-out** (the honest one): for each of the 8 tiles, a model is trained on the other seven
  (validation inside them split by tile, so the validation curve is on unseen places too) and
  ``aerotune evaluate`` scores the held-out tile stitched whole; per-class IoU, mean IoU and pixel accuracy;
* **random 80/20 patch split** (the reference's protocol, the one published figures use): all eight tiles,
  validation mean IoU on patches.

Everything runs through the real command line with this repository's sources. The dataset is never copied:
each fold's data folders hold symlinks to its tile folders. Results are appended to ``<work>/results.jsonl``
as each run finishes, and a rerun skips what is there; an interrupted training resumes from its checkpoint.
``--report`` prints the tables (Markdown) from what is there.

CPU scale (the default): images at scale 0.25 cut into 128-px patches (full mode: every labelled pixel kept),
unknown colours ignored; the reference trains on those patches, the default recipe on random 64-px windows of
them. GPU scale: ``--scale 1 --patch-size 512`` (256-px windows), see ``benchmarks/gpu_quality.sh``.

Usage: python benchmarks/quality.py [--data ../shared/datasets/dubai-aerial] [--epochs 12]
       [--work /tmp/aerotune-quality] [--folds 1,2,...] [--recipes default,reference] [--skip-random] [--report]
       [--set KEY=VALUE ... --report --results VARIANT.jsonl --compare benchmarks/quality-results-cpu-12epochs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dubai_tiles import append, load  # noqa: E402 - the same resumable results file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "dubai-aerial"
TILES = [f"Tile {i}" for i in range(1, 9)]
RECIPES = ("default", "reference")


def cpu_name() -> str:
    """The CPU model and whether it has native bf16 (benchmarks say which CPU they ran on)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    return f"{name}, {os.cpu_count()} cores, {'AVX512-BF16' if 'avx512_bf16' in info else 'no AVX512-BF16 (fp32)'}"


def aerotune(*args: str) -> float:
    """Run ``python -m aerotune ARGS`` with this repo's sources; return its wall time in seconds."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aerotune", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"aerotune {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def link_tiles(folder: Path, data: Path, tiles: list[str]) -> Path:
    """A folder of symlinks to ``tiles`` of ``data`` (the dataset itself is never copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    for tile in tiles:
        if not (folder / tile).is_symlink():
            (folder / tile).symlink_to(data / tile, target_is_directory=True)
    return folder


def settings(args: argparse.Namespace, recipe: str) -> list[str]:
    return [
        "--preset", recipe, "--unknown-colors", "ignore", "--scale", str(args.scale),
        "--patch-size", str(args.patch_size), "--mode", "full", "--epochs", str(args.epochs),
        "--set", "train.progress=false", *[x for kv in args.set for x in ("--set", kv)],
    ]  # fmt: skip


def curve(run: Path) -> list[dict[str, float]]:
    history = json.loads((run / "history.json").read_text())
    return [{"val_loss": h["val_loss"], "val_mean_iou": h["val_mean_iou"]} for h in history]


def run_fold(k: int, recipe: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train ``recipe`` on every tile but ``Tile k``; score the stitched held-out tile."""
    held = f"Tile {k}"
    fold = work / f"fold-{k}"
    train_data = link_tiles(fold / "train-data", args.data, [t for t in TILES if t != held])
    test_data = link_tiles(fold / "test-data", args.data, [held])
    run = fold / f"run-{recipe}"
    train_s = aerotune(
        "train", "--data", str(train_data), "--out", str(run), *settings(args, recipe), "--set", "data.split=tile"
    )
    out = fold / f"eval-{recipe}"
    eval_s = aerotune("evaluate", str(run), "--data", str(test_data), "--split", "all", "--out", str(out))
    pooled = json.loads((out / "metrics.json").read_text())["tta"]["none"]["pooled"]
    return {
        "kind": "fold",
        "held_out": held,
        "recipe": recipe,
        "epochs": args.epochs,
        "scale": args.scale,
        "patch_size": args.patch_size,
        "settings": args.set,
        "mean_iou": pooled["mean_iou"],
        "pixel_accuracy": pooled["pixel_accuracy"],
        "iou": pooled["iou"],
        "curve": curve(run),
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(eval_s, 1),
        "cpu": cpu_name(),
    }


def run_random(recipe: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The reference's protocol: all eight tiles, random 80/20 patch split; validation mean IoU on patches."""
    data = link_tiles(work / "random" / "data", args.data, TILES)
    run = work / "random" / f"run-{recipe}"
    train_s = aerotune(
        "train", "--data", str(data), "--out", str(run), *settings(args, recipe), "--set", "data.split=random"
    )
    final = json.loads((run / "metrics.json").read_text())["final"]
    best = max(curve(run), key=lambda h: h["val_mean_iou"])
    return {
        "kind": "random",
        "recipe": recipe,
        "epochs": args.epochs,
        "scale": args.scale,
        "patch_size": args.patch_size,
        "settings": args.set,
        "val_mean_iou": final["val_mean_iou"],
        "best_val_mean_iou": best["val_mean_iou"],
        "curve": curve(run),
        "train_seconds": round(train_s, 1),
        "cpu": cpu_name(),
    }


def first_epoch_reaching(rows: list[dict[str, Any]], target: float) -> int | None:
    """The first epoch at which the mean over ``rows`` of the validation mean IoU reaches ``target``."""
    n = min(len(r["curve"]) for r in rows)
    for e in range(n):
        if statistics.mean(r["curve"][e]["val_mean_iou"] for r in rows) >= target:
            return e + 1
    return None


def best_epoch(row: dict[str, Any]) -> int:
    """The epoch of a run's lowest validation loss (the checkpoint that is scored)."""
    losses = [c["val_loss"] for c in row["curve"]]
    return losses.index(min(losses)) + 1


def time_to_quality(ref_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]]) -> list[str]:
    """When the default recipe reaches the reference's final quality, and where each run's loss stopped falling."""
    final_ref = statistics.mean(r["curve"][-1]["val_mean_iou"] for r in ref_rows)
    reach = first_epoch_reaching(new_rows, final_ref)
    epochs = len(ref_rows[0]["curve"])
    return [
        f"\nTime to quality (validation tiles inside each fold's training tiles, mean over folds): the reference "
        f"ends at {final_ref:.3f} mean IoU after {epochs} epochs; the default recipe reaches it "
        + (f"at epoch {reach} ({reach / epochs:.2f} of the epochs)." if reach else "within no epoch run."),
        f"\nEpoch of the lowest validation loss, per fold: reference {[best_epoch(r) for r in ref_rows]} "
        f"(median {statistics.median(best_epoch(r) for r in ref_rows)}), default {[best_epoch(r) for r in new_rows]} "
        f"(median {statistics.median(best_epoch(r) for r in new_rows)}).",
    ]


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown tables: per fold, per class, the mean and spread, time to quality, the random protocol."""
    folds = {r: {x["held_out"]: x for x in rows if x["kind"] == "fold" and x["recipe"] == r} for r in RECIPES}
    both = sorted(set(folds["default"]) & set(folds["reference"]), key=lambda t: int(t.split()[-1]))
    lines = [
        "| held-out tile | reference mIoU | default mIoU | gain | reference acc. | default acc. |",
        "|---|---|---|---|---|---|",
    ]
    for t in both:
        a, b = folds["reference"][t], folds["default"][t]
        lines.append(
            f"| {t} | {a['mean_iou']:.3f} | {b['mean_iou']:.3f} | {b['mean_iou'] - a['mean_iou']:+.3f} | "
            f"{a['pixel_accuracy']:.3f} | {b['pixel_accuracy']:.3f} |"
        )
    if both:
        ref = [folds["reference"][t]["mean_iou"] for t in both]
        new = [folds["default"][t]["mean_iou"] for t in both]
        gains = [b - a for a, b in zip(ref, new)]
        sd = statistics.stdev if len(both) > 1 else (lambda _: 0.0)
        lines.append(
            f"| **mean of {len(both)} folds** | {statistics.mean(ref):.3f} ± {sd(ref):.3f} | "
            f"{statistics.mean(new):.3f} ± {sd(new):.3f} | {statistics.mean(gains):+.3f} (worst fold "
            f"{min(gains):+.3f}) | | |"
        )
        classes = list(folds["default"][both[0]]["iou"])
        lines += ["", "Per-class IoU, mean over the folds (a class absent from a held-out tile is left out):", ""]
        lines += ["| class | reference | default |", "|---|---|---|"]
        for c in classes:
            vals = {r: [folds[r][t]["iou"][c] for t in both if folds[r][t]["iou"][c] is not None] for r in RECIPES}
            if vals["default"] and vals["reference"]:
                lines.append(
                    f"| {c} | {statistics.mean(vals['reference']):.3f} | {statistics.mean(vals['default']):.3f} |"
                )
        lines += time_to_quality([folds["reference"][t] for t in both], [folds["default"][t] for t in both])
    for r in RECIPES:
        for x in rows:
            if x["kind"] == "random" and x["recipe"] == r:
                lines.append(
                    f"\nRandom 80/20 patch split, {r} recipe: validation mean IoU {x['val_mean_iou']:.3f} after "
                    f"{x['epochs']} epochs (best epoch {x['best_val_mean_iou']:.3f}; {x['train_seconds']:.0f} s)."
                )
    cpus = sorted({x.get("cpu", "?") for x in rows})
    secs = {r: [x["train_seconds"] for x in rows if x["kind"] == "fold" and x["recipe"] == r] for r in RECIPES}
    if secs["default"] and secs["reference"]:
        new, ref = statistics.mean(secs["default"]), statistics.mean(secs["reference"])
        lines.append(
            f"\nTraining time per fold (same epochs, {', '.join(cpus)}): default {new:.0f} s, reference {ref:.0f} s "
            f"(ratio {new / ref:.2f}; a shared machine)."
        )
    return "\n".join(lines)


def compare(rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> str:
    """A variant's default-recipe folds (``rows``) beside the plain recipes' folds in ``base`` (same epochs)."""
    plain = {(x["recipe"], x["held_out"]): x["mean_iou"] for x in base if x["kind"] == "fold" and not x.get("settings")}
    variant = {x["held_out"]: x["mean_iou"] for x in rows if x["kind"] == "fold" and x["recipe"] == "default"}
    tiles = sorted((t for t in variant if ("default", t) in plain), key=lambda t: int(t.split()[-1]))
    lines = ["| held-out tile | reference | default | variant | variant − default | variant − reference |"]
    lines.append("|---|---|---|---|---|---|")
    for t in tiles:
        ref, new, var = plain.get(("reference", t), float("nan")), plain[("default", t)], variant[t]
        lines.append(f"| {t} | {ref:.3f} | {new:.3f} | {var:.3f} | {var - new:+.3f} | {var - ref:+.3f} |")
    if tiles:
        ref, new = (statistics.mean(plain.get((k, t), float("nan")) for t in tiles) for k in RECIPES[::-1])
        var = statistics.mean(variant[t] for t in tiles)
        lines.append(
            f"| **mean of {len(tiles)}** | {ref:.3f} | {new:.3f} | {var:.3f} | {var - new:+.3f} | {var - ref:+.3f} |"
        )
    return "\n".join(lines)


def seed_table(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> str:
    """Both recipes' folds at two training seeds (``first``, ``second``: one row per recipe and fold each): the
    gain per seed, its mean, and whether a fold is worse at either seed."""
    by = [
        {(x["recipe"], x["held_out"]): x["mean_iou"] for x in rows if x["kind"] == "fold"} for rows in (first, second)
    ]
    tiles = sorted({t for r, t in by[1] if all((k, t) in b for k in RECIPES for b in by)}, key=lambda t: int(t[5:]))
    lines = [
        "| held-out tile | reference, seed A / B | default, seed A / B | gain, seed A / B | mean gain |",
        "|---|---|---|---|---|",
    ]
    gains = []
    for t in tiles:
        g = [b[("default", t)] - b[("reference", t)] for b in by]
        gains.append(g)
        ref, new = (" / ".join(f"{b[(k, t)]:.3f}" for b in by) for k in RECIPES[::-1])
        lines.append(f"| {t} | {ref} | {new} | {g[0]:+.3f} / {g[1]:+.3f} | {statistics.mean(g):+.3f} |")
    if tiles:
        per_seed = [statistics.mean(g[i] for g in gains) for i in (0, 1)]
        worst = min(min(g) for g in gains)
        lines.append(
            f"| **mean of {len(tiles)}** | | | {per_seed[0]:+.3f} / {per_seed[1]:+.3f} | "
            f"**{statistics.mean(per_seed):+.3f}** (worst fold at one seed {worst:+.3f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--work", type=Path, default=Path("/tmp/aerotune-quality"))
    parser.add_argument("--folds", default="1,2,3,4,5,6,7,8", help="held-out tiles to run, e.g. 1,2")
    parser.add_argument("--recipes", default="default,reference")
    parser.add_argument("--skip-random", action="store_true", help="leave out the random-split runs")
    parser.add_argument("--report", action="store_true", help="print the tables from the results and stop")
    parser.add_argument(
        "--seed-results", type=Path, metavar="RESULTS",
        help="with --report: both recipes' folds at another training seed (run with --set train.seed=N), beside "
        "the folds --report prints",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, help="the results file to read and append to (<work>/results.jsonl)")
    parser.add_argument(
        "--compare", type=Path, metavar="RESULTS",
        help="with --report: the variant's rows as the default recipe against the reference's rows in RESULTS, and "
        "beside the plain default's",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a setting added to every training (a variant of the recipes; use its own --work)",
    )  # fmt: skip
    args = parser.parse_args()
    args.data = args.data.resolve()
    work = args.work.resolve()
    results = args.results.resolve() if args.results else work / "results.jsonl"

    def same(r: dict[str, Any]) -> bool:
        return (r["epochs"], r["scale"], r["patch_size"], r.get("settings", [])) == (
            args.epochs, args.scale, args.patch_size, args.set,
        )  # fmt: skip

    if args.report:
        rows = [r for r in load(results) if same(r)]
        if args.compare:  # the variant as the default recipe, against the plain reference's rows in RESULTS
            base = [r for r in load(args.compare) if (r["epochs"], r["scale"]) == (args.epochs, args.scale)]
            plain_ref = [r for r in base if r["recipe"] == "reference" and not r.get("settings")]
            rows = [r for r in rows if r["recipe"] == "default"] + plain_ref
            print(report(rows))
            print("\nThe variant beside the plain recipes' folds in", args.compare.name, "\n")
            print(compare(rows, base))
        else:
            print(report(rows))
        if args.seed_results:
            other = [r for r in load(args.seed_results) if (r["epochs"], r["scale"]) == (args.epochs, args.scale)]
            print(f"\nTwo training seeds: A as above, B from {args.seed_results.name}\n")
            print(seed_table(rows, other))
        return
    if not all((args.data / t).is_dir() for t in TILES):
        sys.exit(f"{args.data}: Dubai dataset (Tile 1 .. Tile 8) not found; pass --data")
    if work == REPO or REPO in work.parents:
        sys.exit(f"{work}: --work must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_name()}", flush=True)
    recipes = args.recipes.split(",")
    jobs = [(int(k), r) for k in args.folds.split(",") if k for r in recipes]  # --folds "": the random split only
    if not args.skip_random:
        jobs += [("random", r) for r in recipes]
    for job, recipe in jobs:
        done = load(results)
        key = "random" if job == "random" else f"Tile {job}"
        if any(same(r) and r["recipe"] == recipe and r.get("held_out", "random") == key for r in done):
            print(f"{key} {recipe}: already in {results}, skipped", flush=True)
            continue
        row = run_random(recipe, args, work) if job == "random" else run_fold(job, recipe, args, work)
        append(results, row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    print(report([r for r in load(results) if same(r)]))


if __name__ == "__main__":
    main()
