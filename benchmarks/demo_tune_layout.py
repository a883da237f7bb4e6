"""The demo's tuning step on 2 cores: 1 worker with 1 or 2 torch threads against 2 workers of 1 thread each.

Builds the FULL demo's data once (24 synthetic scenes of 256, 384 patches of 64 px, as ``aerotune demo``),
then runs ``run_tune`` with the demo's space, seed and study settings but a smaller budget (``--epochs``
per trial, ``--cap`` in all), once per layout and ``--rounds`` times, the layouts alternating so a busy
machine weighs on each alike. Prints per run: wall seconds, CPU seconds of this process and its worker
processes, epochs spent, the seconds the trials' histories record for their epochs, and the load average.

Usage: python benchmarks/demo_tune_layout.py [--work /tmp/demo-layout] [--layouts 1x2,1x1,2x1]
       [--epochs 3] [--cap 12] [--trials 6] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import time
from pathlib import Path

from aerotune.data.palette import Palette
from aerotune.data.patches import prepare_patches
from aerotune.data.synthetic import write_synthetic_dataset
from aerotune.demo import DEMO_SPACE, FULL, demo_config
from aerotune.tune.space_parse import parse_space
from aerotune.tune.study import TuneSettings, run_tune


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def epoch_seconds(run: Path) -> float:
    return sum(float(r["seconds"]) for h in run.glob("trials/*/history.json") for r in json.loads(h.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/demo-layout"))
    ap.add_argument("--layouts", default="1x2,1x1,2x1", help="WORKERSxTHREADS, comma-separated")
    ap.add_argument("--epochs", type=int, default=3, help="HyperBand's R: epochs of a full trial")
    ap.add_argument("--cap", type=int, default=12, help="epochs in all")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()

    cache = args.work / "cache"
    args.work.mkdir(parents=True, exist_ok=True)
    if not cache.is_dir():
        write_synthetic_dataset(args.work / "data", scenes=FULL.scenes, size=FULL.size, seed=7)
        prepare_patches(args.work / "data", cache, demo_config(FULL).data, Palette.dubai())
    print(f"layout  round  wall s  CPU s  epochs  epoch-seconds  load  (cap {args.cap}, R {args.epochs})", flush=True)
    for rnd in range(args.rounds):
        for layout in args.layouts.split(","):
            workers, threads = (int(v) for v in layout.split("x"))
            config = demo_config(FULL).with_overrides({"train.epochs": args.epochs, "train.threads": threads})
            out = args.work / f"tune-{layout}-{rnd}"
            shutil.rmtree(out, ignore_errors=True)
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), cpu_seconds()
            result = run_tune(
                TuneSettings(
                    data=cache,
                    out=out,
                    config=config,
                    space=parse_space(DEMO_SPACE),
                    trials=args.trials,
                    max_epochs_total=args.cap,
                    seed=0,
                    study_name="demo",
                    startup_trials=4,
                    workers=workers,
                )
            )
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            print(
                f"{layout:6}  {rnd:5}  {wall:6.1f}  {cpu:5.1f}  {result.epochs_spent:6}  {epoch_seconds(out):13.1f}"
                f"  {load:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
