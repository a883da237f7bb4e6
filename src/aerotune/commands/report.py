"""``aerotune report``: evaluate tuned and baseline models and write the report. Imports nothing heavy until run."""

from __future__ import annotations

import argparse

from aerotune.commands.common import whole_number


def add_parser(subparsers) -> None:
    """Add ``report`` to the CLI's sub-commands."""
    p = subparsers.add_parser(
        "report",
        help="write an HTML and Markdown report of a tuning or training run",
        description="Evaluate the tuned model (a tuning run's best trial, or a training run) and a baseline on the "
        "same validation patches and write report.html (self-contained), report.md with figures/*.png, "
        "and report.json.",
    )
    p.add_argument("run", metavar="RUN", help="tuning run folder (aerotune tune --out) or training run folder")
    p.add_argument(
        "--baseline",
        metavar="RUN",
        help="training run to compare with (default: the study's baseline trial; none for a training run)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="report folder (an earlier report there is replaced)")
    p.add_argument(
        "--seed", type=whole_number(0, 2**32 - 1), default=0, help="seed that picks the 10 shown patches (default 0)"
    )
    p.add_argument(
        "--max-patches",
        type=whole_number(0),
        default=512,
        dest="max_train_patches",
        metavar="N",
        help="evaluate at most N training patches for training precision/recall (default 512)",
    )
    p.add_argument(
        "--thresholds",
        type=whole_number(3, 100_000),
        default=101,
        help="thresholds of the binned PR curves (default 101)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] for the evaluation (default auto)")
    p.add_argument(
        "--seeds",
        type=whole_number(0, 20),
        default=None,
        metavar="K",
        help="retrain the study's reference, default-recipe and tuned trials with K training seeds each (kept in "
        "RUN/seeds, reused and resumed by a rerun) and judge the difference against the seed noise (Welch's "
        "t-test); 0: off; default: 3 when K x models x epochs is at most the epochs the study spent, else 0",
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import logging

    from aerotune.commands.tune import quiet_optuna
    from aerotune.report.make import make_report
    from aerotune.report.seed_text import cost_text
    from aerotune.report.seeds import NO_SEEDS

    quiet_optuna()  # the study of a tuning run is opened for its parameter importances
    args.resumable = args.seeds != 0  # an interrupted report keeps its finished seed retrainings
    log = logging.getLogger("aerotune.report")
    result = make_report(
        args.run,
        baseline=args.baseline,
        out=args.out,
        seed=args.seed,
        max_train_patches=args.max_train_patches,
        thresholds=args.thresholds,
        device=args.device,
        progress=lambda msg: log.info("%s", msg),
        seeds=args.seeds,
    )
    print(f"{result.html}")
    print(f"  {result.data['verdict']['text']}")
    print("".join(f"  {n}\n" for n in result.data["notes"] if n.startswith(NO_SEEDS)), end="")
    if "seeds" in result.data:
        print(f"  Seed noise: {result.data['seeds']['verdict']}")
        print(f"  {cost_text(result.data['seeds'])}")
    print(f"  also {result.markdown} and {result.json}")
    return 0
