"""Which settings of the default search space matter on a recorded table, and what each costs per epoch.

Over the configurations recorded at the main seed (``curves-dubai.jsonl`` by default), for each setting of the
space: a categorical setting's mean quality (a run's best validation loss; lower is better) and mean seconds per
epoch for each of its choices; a numeric one's Spearman rank correlation with the quality (a positive one: larger
values give worse models) and the quality of the runs in its lower and upper half; beside the loss, the mean of each
run's best validation mean IoU (what the held-out benchmark scores). The seed noise of a run's best
loss (eps, from the configurations recorded at three seeds) is printed beside it: a difference below it is not
evidence. One random sample of 64 configurations is small for ten settings at once: read it as a guide to the
default recipe and the ranges, not as a measurement of any one setting.

    python benchmarks/hpo_replay/levers.py [--curves benchmarks/hpo_replay/curves-dubai.jsonl]

Writes the table to stdout and to ``docs/figures/hpo_replay/levers-dubai.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

from aerotune.files import write_text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from metrics import spearman  # noqa: E402
from record import read_meta, read_rows  # noqa: E402

ROOT = HERE.parents[1]


def main_rows(rows: list[dict], main_seed: int, epochs: int) -> list[dict]:
    """The runs at the main seed that trained every epoch."""
    return [r for r in rows if int(r["seed"]) == main_seed and len(r["val_loss"]) >= epochs and "params" in r]


def seed_noise(rows: list[dict], epochs: int) -> float:
    """Pooled standard deviation between seeds of a run's best loss, over configurations with several seeds."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if len(r["val_loss"]) >= epochs:
            groups.setdefault(repr(sorted(r["params"].items())), []).append(min(r["val_loss"]))
    ss = sum(sum((x - statistics.mean(g)) ** 2 for x in g) for g in groups.values() if len(g) > 1)
    dof = sum(len(g) - 1 for g in groups.values() if len(g) > 1)
    return math.sqrt(ss / dof) if dof else math.nan


def levers(rows: list[dict], space: dict, epochs: int) -> list[str]:
    quality = np.array([min(r["val_loss"]) for r in rows])
    iou = np.array([max(r["val_mean_iou"]) for r in rows])
    per_epoch = np.array([r["seconds"] / max(len(r["val_loss"]), 1) for r in rows])
    lines = [
        "| setting | choice or half | configurations | mean quality (best val loss) | best val mean IoU | "
        "seconds per epoch |",
        "|---|---|---|---|---|---|",
    ]
    for name in sorted(space):
        spec = space[name]
        values = [r["params"][name] for r in rows]
        if spec.get("type") == "categorical":
            for choice in spec["choices"]:
                pick = np.array([v == choice for v in values])
                if pick.any():
                    q, m, t = quality[pick].mean(), iou[pick].mean(), per_epoch[pick].mean()
                    lines.append(f"| {name} | {choice} | {pick.sum()} | {q:.4f} | {m:.3f} | {t:.1f} |")
            continue
        x = np.array(values, float)
        x = np.log(x) if spec.get("log") else x
        rho = spearman(x, quality)
        low = x <= np.median(x)
        lines.append(
            f"| {name} | lower half / upper half (Spearman {rho:+.2f}) | {low.sum()} / {(~low).sum()} | "
            f"{quality[low].mean():.4f} / {quality[~low].mean():.4f} | "
            f"{iou[low].mean():.3f} / {iou[~low].mean():.3f} | "
            f"{per_epoch[low].mean():.1f} / {per_epoch[~low].mean():.1f} |"
        )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curves", type=Path, default=HERE / "curves-dubai.jsonl")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "hpo_replay" / "levers-dubai.md")
    args = p.parse_args()
    meta = read_meta(args.curves)
    epochs, seed = int(meta["epochs"]), int(meta.get("main_seed", 42))
    rows = read_rows(args.curves)
    main = main_rows(rows, seed, epochs)
    eps = seed_noise(rows, epochs)
    best = min(main, key=lambda r: min(r["val_loss"]))
    text = "\n".join(
        [
            f"{len(main)} configurations at seed {seed}, R = {epochs}; chance loss {meta['chance_loss']:.4f}; "
            f"seed noise of a run's best loss (eps) {eps:.4f}; best run {min(best['val_loss']):.4f}: "
            + ", ".join(f"{k} = {v}" for k, v in sorted(best["params"].items())),
            "",
            *levers(main, meta["space"], epochs),
        ]
    )
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, text + "\n")  # under a temporary name, then renamed: never half a table


if __name__ == "__main__":
    main()
