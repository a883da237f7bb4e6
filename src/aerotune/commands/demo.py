"""``aerotune demo``: the end-to-end demo on a built-in synthetic dataset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on a synthetic dataset")
    p.add_argument("--out", default="demo-output", help="folder for everything the demo writes")
    p.add_argument("--quick", action="store_true", help="a smaller, faster demo (used by the tests)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # Before torch loads: its OpenMP threads then sleep while they wait instead of spinning. On 2 cores shared
    # with other work, spinning threads took the cores from the thread doing the work (docs/benchmarks.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from aerotune.commands.tune import quiet_optuna
    from aerotune.demo import run_demo

    quiet_optuna()
    run_demo(Path(args.out), quick=args.quick)
    return 0
