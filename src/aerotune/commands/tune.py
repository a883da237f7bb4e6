"""``aerotune tune`` and ``aerotune dashboard``: parse, call the tuning stage, print the outcome."""

from __future__ import annotations

import argparse
import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

from aerotune import interrupts
from aerotune.commands.common import add_config_options, positive_number, resolve_config, whole_number
from aerotune.config import Value
from aerotune.errors import ConfigError, MissingExtraError, RunError
from aerotune.reference import baseline_text
from aerotune.tune.settings import DIRECTIONS, PRUNERS, SAMPLER_SCOPES, SAMPLERS, TuneSettings
from aerotune.tune.summary import summary_lines

#: argparse defaults are TuneSettings' own, so each is written once.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TuneSettings)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``aerotune tune`` (and ``aerotune dashboard``)."""
    p = sub.add_parser(
        "tune",
        help="tune hyperparameters with HyperBand over epochs (Optuna)",
        description="Run (or resume) an Optuna study with HyperBand over epochs. Running the same "
        "command again continues the study.",
    )
    p.add_argument("--data", required=True, help="dataset folder or patch cache")
    p.add_argument("--out", required=True, help="run folder of the study (an existing one is resumed)")
    p.add_argument(
        "--space",
        metavar="FILE",
        help="search space: NNI JSON, or native TOML/YAML/JSON (default: the reference's NNI space)",
    )
    add_config_options(p)
    _add_study_options(p.add_argument_group("study"))
    _add_budget_options(p.add_argument_group("budget and workers"))
    p.set_defaults(func=cmd_tune, resumable=True)
    _add_dashboard_parser(sub)


def _add_study_options(g: argparse._ArgumentGroup) -> None:
    """The study's options: metric, sampler, storage, HyperBand's r and eta, pruner, baseline."""
    _setting(g, "--metric", "history key to optimise, e.g. val_mean_iou")
    g.add_argument("--direction", choices=DIRECTIONS, help="default: minimize for a loss, maximize otherwise")
    _setting(
        g,
        "--sampler",
        "tpe, or random (classic HyperBand; a new study's default, an earlier study keeps its own)",
        choices=SAMPLERS,
    )
    _setting(g, "--seed", "sampler seed", type=whole_number(0, 2**32 - 1))
    g.add_argument("--study-name", help="default: the run folder's name; workers joining one storage use the same")
    g.add_argument(
        "--storage",
        metavar="URL",
        help="RDB URL, e.g. postgresql://user:pw@host/db (default: a journal file in the run folder)",
    )
    _setting(g, "--min-resource", "HyperBand's minimum epochs r", type=whole_number(1))
    _setting(g, "--reduction-factor", "HyperBand's eta", type=whole_number(2))
    _setting(g, "--startup-trials", "TPE's random start-up trials", type=whole_number(0))
    _setting(
        g,
        "--sampler-scope",
        "trials the sampler learns from: those of the trial's HyperBand bracket (Optuna's way) or the whole study",
        choices=SAMPLER_SCOPES,
    )
    _setting(
        g,
        "--pruner",
        "early stopping over epochs: hyperband, sha (asynchronous successive halving, one bracket) or none "
        "(every trial trains all epochs)",
        choices=PRUNERS,
    )
    g.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"change one setting of the baseline trial 0 (default: {baseline_text()})",
    )
    g.add_argument("--no-baseline", action="store_true", help="no baseline trial")


def _add_budget_options(b: argparse._ArgumentGroup) -> None:
    """The budget and workers options: trials, time, epochs, worker processes, heartbeat, dry run."""
    _setting(b, "--trials", "total trials in the study", type=whole_number(1))
    b.add_argument("--timeout", type=positive_number, metavar="SECONDS", help="start no new trial after this long")
    b.add_argument("--max-epochs-total", type=whole_number(1), metavar="E", help="hard cap on epochs over all trials")
    _setting(b, "--workers", "trial processes on this machine", type=whole_number(1, 256))
    _setting(
        b,
        "--heartbeat",
        "heartbeat interval; a trial silent for 3 intervals is failed and retried",
        type=whole_number(1),
        metavar="SECONDS",
    )
    b.add_argument("--dry-run", action="store_true", help="print the plan (brackets, rungs, trials, epochs) and stop")


def _add_dashboard_parser(sub: argparse._SubParsersAction) -> None:
    """``aerotune dashboard RUN``: optuna-dashboard on a tuning run."""
    p = sub.add_parser("dashboard", help="open optuna-dashboard on a tuning run (bound to 127.0.0.1)")
    p.add_argument("run", help="tuning run folder")
    p.add_argument("--port", type=whole_number(1, 65535), default=8080, help="port on 127.0.0.1 (default 8080)")
    p.add_argument("--storage", metavar="URL", help="full storage URL when the study is in a database")
    p.set_defaults(func=cmd_dashboard)


def _setting(group: argparse._ArgumentGroup, flag: str, help_text: str, **kwargs: Any) -> None:
    """An option whose default is the ``TuneSettings`` field of the same name, shown in its help."""
    default = DEFAULTS[flag.removeprefix("--").replace("-", "_")]
    group.add_argument(flag, default=default, help=f"{help_text} (default %(default)s)", **kwargs)


def settings_from_args(args: argparse.Namespace):
    from aerotune.reference import reference_trial
    from aerotune.tune.space_parse import load_space

    config = resolve_config(args)
    space = load_space(args.space, config)
    baseline: dict[str, Value] | None = None
    if not args.no_baseline:
        baseline = reference_trial()
        for item in args.baseline:
            if "=" not in item:
                raise ConfigError(f"--baseline {item!r}: expected key=value, e.g. --baseline learning_rate=0.01")
            key, value = item.split("=", 1)
            baseline[key.strip()] = _parse_value(value)
    elif args.baseline:
        raise ConfigError("--baseline and --no-baseline contradict each other; keep one")
    return TuneSettings(
        data=args.data,
        out=args.out,
        config=config,
        space=space,
        metric=args.metric,
        direction=args.direction,
        sampler=args.sampler,
        seed=args.seed,
        study_name=args.study_name,
        storage=args.storage,
        min_resource=args.min_resource,
        reduction_factor=args.reduction_factor,
        trials=args.trials,
        timeout=args.timeout,
        max_epochs_total=args.max_epochs_total,
        workers=args.workers,
        baseline=baseline,
        heartbeat=args.heartbeat,
        startup_trials=args.startup_trials,
        sampler_scope=args.sampler_scope,
        pruner=args.pruner,
    ).validate()


def _parse_value(text: str) -> Value:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the commands keep its warnings only (process-wide, so not in the stages)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def cmd_tune(args: argparse.Namespace) -> int:
    if not args.dry_run:  # a refused --out is reported before the tuning stack (torch, optuna) is imported
        from aerotune.outputs import check_output

        check_output(args.out, "tune-run", inputs=[args.data])
    from aerotune.tune.study import plan_tune, run_tune

    quiet_optuna()
    settings = settings_from_args(args)
    if args.dry_run:
        from aerotune.tune.plan import budget_lines, sampler_lines
        from aerotune.tune.study import earlier_sampler

        settings = settings.with_sampler(earlier_sampler(Path(args.out)))
        plan = plan_tune(settings)
        print(plan)
        print("\n".join(sampler_lines(plan, sampler=settings.sampler, startup=settings.startup_trials)))
        print("\n".join(budget_lines(plan)))
        return 0
    result = run_tune(settings)
    for line in summary_lines(result):
        print(line)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from aerotune.tune.study import load_run_study

    run = Path(args.run)
    try:
        from optuna_dashboard import run_server
    except ModuleNotFoundError:
        raise MissingExtraError("optuna-dashboard", "dashboard") from None
    quiet_optuna()
    opened, desc = load_run_study(run, args.storage)
    print(f"optuna-dashboard for study {desc.study_name!r}: http://127.0.0.1:{args.port}/ (Ctrl-C to stop)", flush=True)
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            run_server(opened.storage, host="127.0.0.1", port=args.port)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failed.append(exc)

    # The server runs in a thread and this one waits, checking for Ctrl-C and SIGTERM every half second.
    server = threading.Thread(target=serve, name="optuna-dashboard", daemon=True)
    try:
        server.start()
        while server.is_alive():
            server.join(0.5)
            interrupts.check()
    finally:
        opened.close()
    if failed and isinstance(failed[0], OSError):
        raise RunError(f"cannot listen on 127.0.0.1:{args.port} ({failed[0].strerror}); choose another --port")
    if failed:
        raise failed[0]
    return 0
