"""``aerotune tune`` and ``aerotune dashboard``: parse, call the tuning stage, print the outcome."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aerotune.errors import ConfigError, MissingExtraError, RunError


def add_parser(sub: argparse._SubParsersAction) -> None:
    from aerotune.cli import add_config_options

    p = sub.add_parser("tune", help="tune hyperparameters with HyperBand over epochs (Optuna)",
                       description="Run (or resume) an Optuna study with HyperBand over epochs. Running the same "
                                   "command again continues the study.")
    p.add_argument("--data", required=True, help="dataset folder or patch cache")
    p.add_argument("--out", required=True, help="run folder of the study (an existing one is resumed)")
    p.add_argument("--space", metavar="FILE",
                   help="search space: NNI JSON, or native TOML/YAML/JSON (default: the reference's NNI space)")
    add_config_options(p)
    g = p.add_argument_group("study")
    g.add_argument("--metric", default="val_loss", help="history key to optimise (default val_loss; e.g. val_mean_iou)")
    g.add_argument("--direction", choices=["minimize", "maximize"],
                   help="default: minimize for a loss, maximize otherwise")
    g.add_argument("--sampler", choices=["tpe", "random"], default="tpe",
                   help="tpe (default) or random (classic HyperBand)")
    g.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    g.add_argument("--study-name", help="default: the run folder's name; workers joining one storage use the same")
    g.add_argument("--storage", metavar="URL",
                   help="RDB URL, e.g. postgresql://user:pw@host/db (default: a journal file in the run folder)")
    g.add_argument("--min-resource", type=int, default=1, help="HyperBand's minimum epochs r (default 1)")
    g.add_argument("--reduction-factor", type=int, default=3, help="HyperBand's eta (default 3)")
    g.add_argument("--startup-trials", type=int, default=10, help="TPE's random start-up trials (default 10)")
    g.add_argument("--sampler-scope", choices=["bracket", "study"], default="bracket",
                   help="trials the sampler learns from: those of the trial's HyperBand bracket (Optuna's way, "
                        "default) or the whole study")
    g.add_argument("--pruner", choices=["hyperband", "sha", "none"], default="hyperband",
                   help="early stopping over epochs: hyperband (default), sha (asynchronous successive halving, "
                        "one bracket) or none (every trial trains all epochs)")
    g.add_argument("--baseline", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the baseline trial 0 (default: batch 16, lr 0.007, relu)")
    g.add_argument("--no-baseline", action="store_true", help="no baseline trial")
    b = p.add_argument_group("budget and workers")
    b.add_argument("--trials", type=int, default=72, help="total trials in the study (default 72)")
    b.add_argument("--timeout", type=float, metavar="SECONDS", help="start no new trial after this long")
    b.add_argument("--max-epochs-total", type=int, metavar="E", help="hard cap on epochs over all trials")
    b.add_argument("--workers", type=int, default=1, help="trial processes on this machine (default 1)")
    b.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="heartbeat interval; a trial silent for 3 intervals is failed and retried (default 10)")
    b.add_argument("--dry-run", action="store_true", help="print the plan (brackets, rungs, trials, epochs) and stop")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("dashboard", help="open optuna-dashboard on a tuning run (bound to 127.0.0.1)")
    p.add_argument("run", help="tuning run folder")
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    p.add_argument("--storage", metavar="URL", help="full storage URL when the study is in a database")
    p.set_defaults(func=cmd_dashboard)


def settings_from_args(args: argparse.Namespace):
    from aerotune.cli import resolve_config
    from aerotune.tune.space import REFERENCE_BASELINE, load_space
    from aerotune.tune.study import TuneSettings

    config = resolve_config(args)
    space = load_space(args.space, config)
    baseline: dict[str, Any] | None = None
    if not args.no_baseline:
        baseline = dict(REFERENCE_BASELINE)
        for item in args.baseline:
            if "=" not in item:
                raise ConfigError(f"--baseline {item!r}: expected key=value, e.g. --baseline learning_rate=0.01")
            key, value = item.split("=", 1)
            baseline[key.strip()] = _parse_value(value)
    elif args.baseline:
        raise ConfigError("--baseline and --no-baseline contradict each other; keep one")
    return TuneSettings(
        data=args.data, out=args.out, config=config, space=space, metric=args.metric, direction=args.direction,
        sampler=args.sampler, seed=args.seed, study_name=args.study_name, storage=args.storage,
        min_resource=args.min_resource, reduction_factor=args.reduction_factor, trials=args.trials,
        timeout=args.timeout, max_epochs_total=args.max_epochs_total, workers=args.workers, baseline=baseline,
        heartbeat=args.heartbeat, startup_trials=args.startup_trials, sampler_scope=args.sampler_scope,
        pruner=args.pruner,
    ).validate()


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def cmd_tune(args: argparse.Namespace) -> int:
    from aerotune.tune.study import plan_tune, run_tune

    settings = settings_from_args(args)
    if args.dry_run:
        print(plan_tune(settings))
        return 0
    result = run_tune(settings)
    for line in summary_lines(result):
        print(line)
    return 0


def summary_lines(result) -> list[str]:
    """What a finished (or interrupted) study did, as printed by ``aerotune tune`` and ``aerotune demo``."""
    from aerotune.tune.study import REFERENCE_EPOCHS

    s = result.summary
    c = result.counts
    extra = ""
    if c["stopped_by_budget"]:
        extra += f", {c['stopped_by_budget']} stopped by the epoch budget"
    if c["running"]:
        extra += f", {c['running']} running"
    if c["waiting"]:
        extra += f", {c['waiting']} waiting"
    lines = [f"{result.run_dir}: study {result.study_name!r}: {c['trials']} trial(s): {c['complete']} complete, "
             f"{c['pruned']} pruned, {c['failed']} failed ({c['diverged']} diverged, {c['out_of_memory']} out of "
             f"memory, {c['stale']} stale){extra}",
             f"  epochs spent: {result.epochs_spent} (the reference spent {REFERENCE_EPOCHS:,})"]
    if result.best_trial is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in result.best_params.items())
        lines.append(f"  best {s['metric']}: {result.best_value:.4f} (trial {result.best_trial}: {params})")
    else:
        lines.append("  no trial completed yet")
    if result.baseline_value is not None:
        lines.append(f"  baseline (trial {result.baseline_trial}) {s['metric']}: {result.baseline_value:.4f}")
    lines.append(f"  results: {result.run_dir / 'summary.json'}, trials.csv, trials.json, best_params.json"
                 + (", best_checkpoint.pt" if s.get("best_checkpoint") else ""))
    return lines


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from aerotune.tune.study import load_run_study

    run = Path(args.run)
    try:
        from optuna_dashboard import run_server
    except ModuleNotFoundError:
        raise MissingExtraError("optuna-dashboard", "dashboard") from None
    opened, desc = load_run_study(run, args.storage)
    print(f"optuna-dashboard for study {desc['study_name']!r}: http://127.0.0.1:{args.port}/ (Ctrl-C to stop)",
          flush=True)
    try:
        run_server(opened.storage, host="127.0.0.1", port=args.port)
    except OSError as exc:
        raise RunError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); choose another --port") from None
    finally:
        opened.close()
    return 0
