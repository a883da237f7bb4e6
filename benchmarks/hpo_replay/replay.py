"""Replay tuning methods on recorded learning curves: hundreds of studies at no training cost.

Each replayed study is a real ``aerotune.tune.study.run_tune`` call -- the same worker loop, sampler
(``optuna_study.make_sampler``), pruner (``optuna_study.make_pruner``), per-epoch reporting and pruning callback,
and ``--max-epochs-total`` cap -- in which ``aerotune.train.fit.fit`` is replaced by a function that reads
the learning curve of the drawn configuration from ``curves.jsonl`` (written by ``record.py``) and adds
run-to-run noise drawn from the spread measured between seeds. The space is the reference's (learning rate
log-uniform over [1e-4, 0.1], batch 8/16/24/32, four activations); a drawn learning rate is snapped to the
nearest of the 8 recorded values (log scale), so every draw is a recorded configuration while TPE models
the real continuous space.

    python benchmarks/hpo_replay/replay.py                 # 100 seeds per method; writes results + figure
    python benchmarks/hpo_replay/replay.py --seeds 10      # quick look
    python benchmarks/hpo_replay/replay.py --noise-scale 0 --results /tmp/r.json --figures /tmp/f  # no noise

Writes ``benchmarks/hpo_replay/results.json``, ``docs/figures/hpo_replay/hpo_replay.md`` (the table) and
``docs/figures/hpo_replay/hpo_replay.png`` (anytime curves).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from analysis import summarize, write_outputs  # noqa: E402
from record import CURVES, EPOCHS, MAIN_SEED, read_rows  # noqa: E402

#: key: (label, TuneSettings overrides). "rs" is the reference's way and the yardstick.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "rs": ("random search, full epochs (reference)", {"sampler": "random", "pruner": "none"}),
    "tpe": ("TPE, full epochs", {"sampler": "tpe", "pruner": "none"}),
    "hb": ("HyperBand + random", {"sampler": "random", "pruner": "hyperband"}),
    "hb_tpe": ("HyperBand + TPE, bracket scope (default)", {"sampler": "tpe", "pruner": "hyperband"}),
    "hb_tpe_study": (
        "HyperBand + TPE, study scope (BOHB-like)",
        {"sampler": "tpe", "pruner": "hyperband", "sampler_scope": "study"},
    ),
    "sha": ("successive halving (ASHA) + random", {"sampler": "random", "pruner": "sha"}),
    "sha_tpe": ("successive halving (ASHA) + TPE", {"sampler": "tpe", "pruner": "sha"}),
    "sha_tpe_r3": ("successive halving (ASHA) + TPE, r = 3", {"sampler": "tpe", "pruner": "sha", "min_resource": 3}),
    "sha_tpe_r9": ("successive halving (ASHA) + TPE, r = 9", {"sampler": "tpe", "pruner": "sha", "min_resource": 9}),
    "hb_tpe_eta2": ("HyperBand + TPE, eta = 2", {"sampler": "tpe", "pruner": "hyperband", "reduction_factor": 2}),
}


@dataclass
class Table:
    """Recorded curves: ``curves[(lr, batch, activation)]`` is the main seed's row; ``noise`` the
    per-epoch standard deviation between seeds and ``rho`` the share of it that lasts a whole run."""

    curves: dict[tuple[float, int, str], dict[str, Any]]
    learning_rates: list[float]
    epochs: int
    sigma: np.ndarray
    rho: float
    noise_configs: int

    def lookup(self, lr: float, batch: int, activation: str) -> dict[str, Any]:
        """The row of the recorded configuration nearest to a draw: the same activation and batch size and the
        nearest recorded learning rate on a log scale (on a partial table: the same activation if recorded,
        then the nearest batch size, then the nearest learning rate)."""
        near = min(
            self.curves,
            key=lambda k: (k[2] != str(activation), abs(k[1] - int(batch)), abs(math.log(k[0]) - math.log(lr)), k),
        )
        return self.curves[near]


def space_for(table: Table) -> dict[str, Any]:
    """The search space over what the table holds: with the whole grid recorded, the reference's space with
    batch sizes 8/16/24/32 (learning rate log-uniform over [1e-4, 0.1], four activations)."""
    batches = sorted({k[1] for k in table.curves})
    activations = sorted({k[2] for k in table.curves})
    lr = (
        {"_type": "loguniform", "_value": [table.learning_rates[0], table.learning_rates[-1]]}
        if len(table.learning_rates) > 1
        else {"_type": "choice", "_value": table.learning_rates}
    )
    return {
        "batch_size": {"_type": "choice", "_value": batches},
        "learning_rate": lr,
        "activation_type": {"_type": "choice", "_value": activations},
    }


def load_table(rows: list[dict[str, Any]], *, epochs: int = EPOCHS, main_seed: int = MAIN_SEED) -> Table:
    """Build the replay table from recorded rows; the noise comes from configurations recorded with several
    seeds (a pooled, bias-corrected standard deviation per epoch), zero when there are none."""
    curves = {
        (float(r["learning_rate"]), int(r["batch_size"]), str(r["activation"])): r
        for r in rows
        if int(r["seed"]) == main_seed
    }
    if not curves:
        raise SystemExit(f"no configuration recorded at seed {main_seed} yet; run record.py first")
    by_config: dict[tuple, list[np.ndarray]] = {}
    for r in rows:
        if r["status"] == "completed" and len(r["val_loss"]) == epochs:
            key = (float(r["learning_rate"]), int(r["batch_size"]), str(r["activation"]))
            by_config.setdefault(key, []).append(np.asarray(r["val_loss"], float))
    groups = [np.stack(v) for v in by_config.values() if len(v) >= 2]
    sigma, rho = np.zeros(epochs), 0.0
    if groups:
        ss = sum(((g - g.mean(0)) ** 2).sum(0) for g in groups)
        dof = sum(len(g) - 1 for g in groups)
        sigma = np.sqrt(ss / dof)
        # share of the variance shared by all epochs of a run: E[mean_e(u)^2] = rho + (1 - rho) / E
        u = [((g - g.mean(0)) * math.sqrt(len(g) / (len(g) - 1)) / np.maximum(sigma, 1e-12)).mean(1) for g in groups]
        m = float(np.mean(np.concatenate(u) ** 2))
        rho = float(np.clip((m - 1 / epochs) / (1 - 1 / epochs), 0.0, 1.0))
    lrs = sorted({k[0] for k in curves})
    return Table(curves, lrs, epochs, sigma, rho, len(groups))


def replayed_curve(table: Table, row: dict[str, Any], rng: np.random.Generator) -> list[float]:
    """One replayed run of a configuration: its recorded validation losses plus noise of the measured spread."""
    n = len(row["val_loss"])
    z = math.sqrt(table.rho) * rng.standard_normal() + math.sqrt(1 - table.rho) * rng.standard_normal(n)
    return [float(v) for v in np.asarray(row["val_loss"], float) + table.sigma[:n] * z]


def table_fit(table: Table, noise_seed: int):
    """A stand-in for ``aerotune.train.fit.fit`` that replays the table through the same callback protocol."""
    from aerotune.train.fit import RunResult

    def fit(config, cache, out, *, split=None, callback=None, resume=True):
        number = int(Path(out).name)
        row = table.lookup(config.train.learning_rate, config.train.batch_size, config.model.activation)
        rng = np.random.default_rng([noise_seed, number])
        losses = replayed_curve(table, row, rng)
        ious = row["val_mean_iou"]
        history, status, reason = [], "completed", ""
        for epoch in range(1, config.train.epochs + 1):
            if not callback.on_epoch_start(epoch):
                status, reason = "stopped", "stopped by callback before the epoch"
                break
            if epoch > len(losses):  # the recorded run diverged in this epoch
                status, reason = "diverged", f"training loss became non-finite in epoch {epoch}"
                break
            record = {"epoch": epoch, "val_loss": losses[epoch - 1], "val_mean_iou": ious[epoch - 1]}
            history.append(record)
            callback.on_epoch_end(epoch, record)
        best = min((h["val_loss"] for h in history), default=math.inf)
        return RunResult(Path(out), status, len(history), None, best, history, {}, reason)

    return fit


def study_desc(method: str, seed: int, table: Table) -> dict[str, Any]:
    """The study description (``study.json``) ``aerotune tune`` would write for ``method``: it is what
    ``make_sampler`` and ``make_pruner`` read."""
    from aerotune.tune.description import describe

    return describe(_settings(method, seed, table, budget=None, data=Path("."), out=Path(".")), Path("."))


def _settings(method: str, seed: int, table: Table, *, budget: int | None, data: Path, out: Path):
    from aerotune.config import RunConfig
    from aerotune.tune.settings import TuneSettings
    from aerotune.tune.space_parse import parse_space

    config = RunConfig().with_overrides({"data.patch_size": 32, "train.epochs": table.epochs, "train.progress": False})
    return TuneSettings(
        data=data,
        out=out,
        config=config,
        space=parse_space(space_for(table)),
        seed=seed,
        study_name=f"replay-{seed}",
        trials=100_000,
        max_epochs_total=budget,
        baseline=None,
        **METHODS[method][1],
    ).validate()


def replay_fast(table: Table, method: str, seed: int, budget: int) -> dict[str, Any]:
    """One study in memory: Optuna's ask-and-tell with aerotune's sampler, pruner and space, and the rules of
    its trial callback (report every epoch, the last epoch is no rung, a pruned trial stops before its next
    epoch, each epoch is claimed against the budget before it runs, a diverged run fails). ``replay_aerotune``
    runs the same through ``run_tune``; a test checks both give the same study."""
    import optuna
    from optuna.trial import TrialState

    from aerotune.tune.optuna_study import make_pruner, make_sampler
    from aerotune.tune.space_parse import parse_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    desc = study_desc(method, seed, table)
    space = parse_space(desc.space)
    study = optuna.create_study(
        study_name=desc.study_name, direction=desc.direction, pruner=make_pruner(desc), sampler=make_sampler(desc, 0)
    )
    spent, events, n_trials, complete, seen = 0, [], 0, 0, []
    while spent < budget:
        study.sampler = make_sampler(desc, len(study.get_trials(deepcopy=False)))
        trial = study.ask()
        values = space.suggest(trial)
        row = table.lookup(values["train.learning_rate"], values["train.batch_size"], values["model.activation"])
        losses = replayed_curve(table, row, np.random.default_rng([seed, trial.number]))
        state, history = TrialState.COMPLETE, []
        for epoch in range(1, table.epochs + 1):
            if spent >= budget:
                state = TrialState.PRUNED  # status "budget"
                break
            spent += 1
            if epoch > len(losses):
                state = TrialState.FAIL  # diverged
                break
            history.append(losses[epoch - 1])
            events.append([spent, round(losses[epoch - 1], 6)])
            seen.append((spent, losses[epoch - 1], row["val_loss"][epoch - 1]))
            trial.report(losses[epoch - 1], epoch)
            if epoch < table.epochs and trial.should_prune():
                state = TrialState.PRUNED
                break
        n_trials += 1
        complete += state == TrialState.COMPLETE
        study.tell(trial, min(history) if state == TrialState.COMPLETE else None, state=state)
    return {
        "method": method,
        "seed": seed,
        "epochs": spent,
        "trials": n_trials,
        "complete": complete,
        "events": sorted(events),
        "picked": _picked(seen),
    }


def _picked(seen: list[tuple[int, float, float]]) -> float | None:
    """The recorded (noise-free) loss of the model a study would keep: the epoch with the lowest observed loss."""
    best = min(seen, key=lambda x: (round(x[1], 6), x[0]), default=None)
    return None if best is None else round(float(best[2]), 6)


def replay_aerotune(table: Table, method: str, seed: int, budget: int, work: Path) -> dict[str, Any]:
    """One study through ``aerotune.tune.study.run_tune`` itself (journal storage, worker loop, heartbeats,
    epoch claims), with ``fit`` replaced by the table. About 5x slower than ``replay_fast``."""
    import aerotune.train.fit as fitmod
    from aerotune.data.run_data import cache_for
    from aerotune.data.synthetic import write_synthetic_dataset
    from aerotune.tune.study import run_tune

    settings = _settings(method, seed, table, budget=budget, data=work / "data", out=work / f"{method}-{seed}")
    if not (work / "cache" / "manifest.json").is_file():
        write_synthetic_dataset(work / "data", scenes=1, size=64, seed=0)  # run_tune needs a real cache
        cache_for(work / "data", settings.config.data, work / "cache")
    settings = dataclasses.replace(settings, data=work / "cache")
    shutil.rmtree(settings.out, ignore_errors=True)
    saved, fitmod.fit = fitmod.fit, table_fit(table, noise_seed=seed)
    try:
        result = run_tune(settings)
    finally:
        fitmod.fit = saved
    trials = json.loads((Path(settings.out) / "trials.json").read_text())
    shutil.rmtree(settings.out, ignore_errors=True)
    events, seen = [], []
    for t in trials:
        p = t["params"]
        row = table.lookup(p["train.learning_rate"], p["train.batch_size"], p["model.activation"])
        for i, (tick, v) in enumerate(zip(t["epoch_ticks"], t["values"])):
            events.append([int(tick), round(float(v), 6)])
            seen.append((int(tick), float(v), row["val_loss"][i]))
    return {
        "method": method,
        "seed": seed,
        "epochs": result.epochs_spent,
        "trials": len(trials),
        "complete": result.counts["complete"],
        "events": sorted(events),
        "picked": _picked(seen),
    }


_TABLE: list[Table] = []


def scaled(table: Table, noise_scale: float) -> Table:
    """The table with its replayed noise scaled: 0 replays every run as its recorded curve (as a real study does,
    whose trials all train with the same seed as the recording), 1 (default) adds the measured spread."""
    return dataclasses.replace(table, sigma=table.sigma * noise_scale) if noise_scale != 1 else table


def _init_worker(rows: list[dict[str, Any]], noise_scale: float = 1.0) -> None:
    _TABLE[:] = [scaled(load_table(rows), noise_scale)]


def _job(job: tuple[str, int, int]) -> dict[str, Any]:
    return replay_fast(_TABLE[0], *job)


def run_all(
    rows: list[dict[str, Any]], methods: list[str], seeds: int, budget: int, processes: int, noise_scale: float = 1.0
) -> list[dict]:
    jobs = [(m, s, budget) for s in range(seeds) for m in methods]
    if processes <= 1:
        _init_worker(rows, noise_scale)
        return [_job(j) for j in jobs]
    with multiprocessing.get_context("spawn").Pool(
        processes, initializer=_init_worker, initargs=(rows, noise_scale)
    ) as pool:
        return pool.map(_job, jobs, chunksize=2)


def check_engines(table: Table, methods: list[str], budget: int) -> None:
    """Replay seed 0 of every method both ways; stop if the in-memory loop differs from ``run_tune``."""
    logging.getLogger("aerotune").setLevel(logging.ERROR)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # fsync is free there: the journal syncs every write
    with tempfile.TemporaryDirectory(prefix="aerotune-replay-", dir=shm) as w:
        for m in methods:
            fast, real = replay_fast(table, m, 0, budget), replay_aerotune(table, m, 0, budget, Path(w))
            if fast != real:
                raise SystemExit(
                    f"{m}: the in-memory replay differs from run_tune ({fast['trials']} vs "
                    f"{real['trials']} trials); fix replay_fast"
                )
    print(f"check: seed 0 of {len(methods)} methods gives the same study through run_tune", flush=True)
    if {"hb_tpe", "hb_tpe_study"} <= set(methods):
        a, b = replay_fast(table, "hb_tpe", 0, budget), replay_fast(table, "hb_tpe_study", 0, budget)
        same = {**a, "method": None} == {**b, "method": None}
        print(
            f"check: HyperBand + TPE, bracket and study scope, seed 0: {'the same' if same else 'different'} studies",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument("--seeds", type=int, default=100, help="studies per method (default 100)")
    p.add_argument(
        "--budget-trials",
        type=int,
        default=16,
        help="random search's full trainings; every method gets this many times R epochs (default 16)",
    )
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated keys of METHODS")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip replaying seed 0 of each method through run_tune as a cross-check",
    )
    p.add_argument(
        "--noise-scale",
        type=float,
        default=1.0,
        help="scale of the replayed run-to-run noise: 0 replays the recorded curves as they are (default 1)",
    )
    p.add_argument("--results", type=Path, default=HERE / "results.json")
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures" / "hpo_replay")
    args = p.parse_args()
    rows = read_rows(args.curves)
    table = scaled(load_table(rows), args.noise_scale)
    methods = args.methods.split(",")
    if "rs" not in methods:
        methods.insert(0, "rs")
    budget = args.budget_trials * table.epochs
    print(
        f"table: {len(table.curves)} of 128 configurations recorded, {table.noise_configs} with extra seeds; "
        f"noise sd {table.sigma.mean():.4f} (mean over epochs), {table.rho:.2f} of it per run; "
        f"budget {budget} epochs = {args.budget_trials} full trainings; {args.seeds} seeds x {len(methods)} methods",
        flush=True,
    )
    t0 = time.time()
    if args.check:
        check_engines(table, methods, budget)
    studies = run_all(rows, methods, args.seeds, budget, args.processes, args.noise_scale)
    summary = summarize(studies, rows, table, budget, {m: METHODS[m][0] for m in methods})
    summary["noise_scale"] = args.noise_scale
    write_outputs(summary, studies, args.results, args.figures)
    print(summary["markdown"])
    print(f"replayed {len(studies)} studies in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
