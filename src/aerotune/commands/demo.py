"""``aerotune demo``: the end-to-end demo on a built-in synthetic dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on a synthetic dataset")
    p.add_argument("--out", default="demo-output", help="folder for everything the demo writes")
    p.add_argument("--quick", action="store_true", help="a smaller, faster demo (used by the tests)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # OpenMP's wait policy stays the user's: OMP_WAIT_POLICY=PASSIVE pays on a busy shared machine and costs
    # about 1.3x on a quiet one (docs/benchmarks.md, "The demo's time").
    from aerotune.commands.tune import quiet_optuna
    from aerotune.demo import run_demo

    quiet_optuna()
    run_demo(Path(args.out), quick=args.quick)
    return 0
