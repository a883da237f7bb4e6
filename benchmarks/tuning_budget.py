"""Tuning at the same total epoch budget: the reference's way against HyperBand (random, TPE).

On the Dubai set at a CPU-feasible scale (0.25, 64x64 patches, unknown colours ignored) it runs three
studies with ``aerotune tune`` and the same seed, space and epoch budget:

  (a) the reference's way: random configurations, each trained for the full epochs
      (``--sampler random --min-resource R``: one bracket, nothing pruned);
  (b) HyperBand with random sampling (``--sampler random``), classic HyperBand;
  (c) HyperBand with TPE (``--sampler tpe``).

With the same seed, (a) and (b) draw the same configurations in the same order; (b) stops the poor ones
early. No baseline trial, so the three compare search alone. It then prints best validation loss (and
the mean IoU of that model) against epochs spent, the number of epochs (c) needed to reach (a)'s final
best, and writes a figure and a Markdown table.

    python benchmarks/tuning_budget.py --work /tmp/aerotune-bench --budget 81 --epochs 9

``--analyze-only`` redraws from finished or partial studies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DUBAI = ROOT.parent / "shared" / "datasets" / "dubai-aerial"

METHODS = {
    "a": ("(a) reference: random, full epochs", ["--sampler", "random", "--min-resource", "{epochs}"]),
    "b": ("(b) HyperBand + random", ["--sampler", "random"]),
    "c": ("(c) HyperBand + TPE", ["--sampler", "tpe", "--startup-trials", "{startup}"]),
    "d": (
        "(d) HyperBand + TPE learning from every bracket",
        ["--sampler", "tpe", "--startup-trials", "{startup}", "--sampler-scope", "study"],
    ),
}

#: The reference space with batch sizes a CPU can afford (batch 1..7 makes one epoch many times slower).
SPACE = {
    "batch_size": {"_type": "choice", "_value": [8, 16, 24, 32]},
    "learning_rate": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "activation_type": {"_type": "choice", "_value": ["relu", "tanh", "swish", None]},
}


def run_studies(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    space = work / "space.json"
    space.write_text(json.dumps(SPACE, indent=1))
    cache = work / "cache"
    if not (cache / "manifest.json").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aerotune",
                "data",
                "prepare",
                str(args.data),
                "--out",
                str(cache),
                "--scale",
                str(args.scale),
                "--patch-size",
                str(args.patch_size),
                "--unknown-colors",
                "ignore",
            ],
            check=True,
        )
    procs = []
    for key in args.methods:
        label, extra = METHODS[key]
        extra = [e.format(epochs=args.epochs, startup=args.startup_trials) for e in extra]
        cmd = [
            sys.executable,
            "-m",
            "aerotune",
            "tune",
            "--data",
            str(cache),
            "--out",
            str(work / key),
            "--space",
            str(space),
            "--scale",
            str(args.scale),
            "--patch-size",
            str(args.patch_size),
            "--unknown-colors",
            "ignore",
            "--epochs",
            str(args.epochs),
            "--no-baseline",
            "--trials",
            str(args.trials),
            "--max-epochs-total",
            str(args.budget),
            "--seed",
            str(args.seed),
            "--study-name",
            f"budget-{key}",
            "--set",
            "train.progress=false",
            "--set",
            f"train.threads={args.threads}",
            "--set",
            f"train.precision={args.precision}",
            *extra,
        ]
        print("$", " ".join(cmd), flush=True)
        log = open(work / f"{key}.log", "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        if args.parallel:
            procs.append((p, log))
        else:
            p.wait()
            log.close()
    for p, log in procs:
        p.wait()
        log.close()


def curves(run: Path) -> dict:
    """Best-so-far validation loss (and the mean IoU of that model) after each epoch spent."""
    trials = json.loads((run / "trials.json").read_text())
    events = []  # (tick, val_loss, val_mean_iou, trial)
    for t in trials:
        history = []
        hist_path = run / (t["run_dir"] or "") / "history.json"
        if t["run_dir"] and hist_path.is_file():
            history = json.loads(hist_path.read_text())
        for i, tick in enumerate(t["epoch_ticks"]):
            if i < len(history):
                h = history[i]
                events.append((tick, h["val_loss"], h["val_mean_iou"], t["number"]))
    events.sort()
    best, xs, losses, ious = None, [], [], []
    for tick, loss, iou, number in events:
        if best is None or loss < best[0]:
            best = (loss, iou, number)
        xs.append(tick)
        losses.append(best[0])
        ious.append(best[1])
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return {"x": xs, "loss": losses, "iou": ious, "trials": len(trials), "summary": summary}


def epochs_to_reach(c: dict, target: float) -> int | None:
    for x, v in zip(c["x"], c["loss"]):
        if v <= target:
            return x
    return None


def analyze(args: argparse.Namespace) -> str:
    work = Path(args.work)
    for k in args.methods:  # a study still running or stopped early: export what it has
        if (work / k / "study.json").is_file() and not (work / k / "summary.json").is_file():
            from aerotune.tune.study import export_study

            export_study(work / k)
    results = {k: curves(work / k) for k in args.methods if (work / k / "trials.json").is_file()}
    lines = [
        "| method | trials | epochs spent | best val loss | mean IoU of that model | "
        + " | ".join(f"best loss at {m} epochs" for m in args.marks)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(args.marks),
    ]
    for key, c in results.items():
        if not c["x"]:
            continue
        at = []
        for m in args.marks:
            vals = [v for x, v in zip(c["x"], c["loss"]) if x <= m]
            at.append(f"{vals[-1]:.4f}" if vals else "-")
        counts = c["summary"].get("counts", {})
        trials = f"{c['trials']}" + (
            f" ({counts.get('complete', 0)} complete, {counts.get('pruned', 0)} pruned)" if counts else ""
        )
        lines.append(
            f"| {METHODS[key][0]} | {trials} | {c['x'][-1]} | {c['loss'][-1]:.4f} | {c['iou'][-1]:.3f} | "
            + " | ".join(at)
            + " |"
        )
    text = "\n".join(lines)
    if "a" in results and results["a"]["x"]:
        target = results["a"]["loss"][-1]
        spent_a = results["a"]["x"][-1]
        text += f"\n\n(a)'s final best validation loss: {target:.4f} after {spent_a} epochs.\n"
        for key in ("b", "c"):
            if key in results and results[key]["x"]:
                reach = epochs_to_reach(results[key], target)
                if reach is None:
                    text += f"- {METHODS[key][0]}: did not reach it within {results[key]['x'][-1]} epochs.\n"
                else:
                    text += (
                        f"- {METHODS[key][0]}: reached it after {reach} epochs, {reach / spent_a:.2f} of (a)'s "
                        f"epochs (target: at most 0.20).\n"
                    )
    print(text)
    out_dir = Path(args.figures)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tuning_budget.md").write_text(text + "\n")
    _plot(results, out_dir / "tuning_budget.png")
    return text


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for key, c in results.items():
        if c["x"]:
            axes[0].step(c["x"], c["loss"], where="post", label=METHODS[key][0])
            axes[1].step(c["x"], c["iou"], where="post", label=METHODS[key][0])
    axes[0].set(
        xlabel="epochs spent (all trials)",
        ylabel="best validation loss so far",
        title="Best validation loss (dice + focal)",
    )
    axes[1].set(
        xlabel="epochs spent (all trials)", ylabel="mean IoU of the best-loss model", title="Mean IoU of that model"
    )
    if "a" in results and results["a"]["x"]:
        axes[0].axhline(results["a"]["loss"][-1], color="grey", lw=0.8, ls="--")
        axes[0].axvline(results["a"]["x"][-1] / 5, color="grey", lw=0.8, ls=":")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Dubai, scale 0.25, 64x64 patches: tuning at the same epoch budget")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DUBAI), help="the Dubai dataset folder")
    p.add_argument("--work", default="/tmp/aerotune-bench", help="folder for the cache and the three studies")
    p.add_argument("--figures", default=str(ROOT / "docs" / "figures"), help="where the figure and table go")
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--patch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=9, help="max epochs per trial (HyperBand's R)")
    p.add_argument("--budget", type=int, default=81, help="epochs over all trials, per method")
    p.add_argument("--trials", type=int, default=200, help="upper bound on trials (the budget binds first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--startup-trials", type=int, default=5, help="TPE's random start-up trials per bracket")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--precision", default="fp32")
    p.add_argument("--methods", default="abc")
    p.add_argument("--parallel", action="store_true", help="run the three studies at once (1 thread each)")
    p.add_argument(
        "--marks",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="epoch counts to tabulate, e.g. 16,27,54,81",
    )
    p.add_argument("--analyze-only", action="store_true")
    args = p.parse_args()
    args.methods = list(args.methods)
    if args.marks is None:
        args.marks = sorted({max(1, args.budget // 5), args.budget // 3, 2 * args.budget // 3, args.budget})
    t0 = time.time()
    if not args.analyze_only:
        run_studies(args)
    analyze(args)
    print(f"wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
