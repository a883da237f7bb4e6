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
from metrics import learns, pooled_sd  # noqa: E402
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


#: How the synthetic grid's rows (``record.py``) name their settings.
LEGACY_PARAMS = {
    "learning_rate": "train.learning_rate",
    "batch_size": "train.batch_size",
    "activation": "model.activation",
}


def params_of(row: dict[str, Any]) -> dict[str, Any]:
    """A row's configuration as settings: ``row["params"]`` (generic tables, e.g. ``record.py --dataset dubai``),
    else the synthetic grid's three columns."""
    if "params" in row:
        return dict(row["params"])
    return {
        "train.learning_rate": float(row["learning_rate"]),
        "train.batch_size": int(row["batch_size"]),
        "model.activation": str(row["activation"]),
    }


def config_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, v) for k, v in params.items()))


@dataclass
class Table:
    """Recorded curves: ``curves[key]`` is the main seed's row of a configuration (``key = config_key(params)``),
    ``keys`` the configurations in a fixed order (a study names them by index), ``quality[i]`` configuration i's
    mean best loss over its recorded seeds (the truth a kept model is judged by), ``learns[i]`` whether it is below
    the loss of predicting at chance; ``sigma`` the per-epoch standard deviation between seeds over configurations
    that learn and ``rho`` the share of it that lasts a whole run."""

    curves: dict[tuple, dict[str, Any]]
    learning_rates: list[float]
    epochs: int
    sigma: np.ndarray
    rho: float
    noise_configs: int
    keys: list[tuple] = dataclasses.field(default_factory=list)
    quality: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    learns: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, bool))
    chance_loss: float = 1.0
    eps: float = 0.0
    learn_threshold: float = 1.0
    sigma_all: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    space: dict[str, Any] | None = None
    index: dict[tuple, int] = dataclasses.field(default_factory=dict)

    def lookup(self, *values: Any) -> dict[str, Any]:
        """The row of the recorded configuration nearest to a draw (settings -> values; or, for the synthetic
        grid, ``lookup(lr, batch, activation)``): fewest differing categorical settings, then the smallest sum of
        numeric distances, each over the recorded range (log scale for positive floats spanning more than 3x).
        On the full synthetic grid this is the recorded configuration of the same activation and batch size with the
        nearest learning rate on a log scale."""
        want = values[0] if len(values) == 1 else dict(zip(LEGACY_PARAMS.values(), values))
        return self.curves[self.nearest(want)]

    def nearest(self, want: dict[str, Any]) -> tuple:
        scales = self._scales()

        def distance(key: tuple) -> tuple:
            mismatch, far = 0, 0.0
            for name, have in key:
                if name not in want:
                    continue
                v = want[name]
                kind, lo, hi = scales[name]
                if kind == "cat":
                    mismatch += v != have
                elif kind == "log":
                    far += abs(math.log(float(v)) - math.log(float(have))) / max(math.log(hi / lo), 1e-12)
                else:
                    far += abs(float(v) - float(have)) / max(hi - lo, 1e-12)
            return (mismatch, round(far, 12), key)

        return min(self.curves, key=distance)

    def _scales(self) -> dict[str, tuple[str, float, float]]:
        values: dict[str, list] = {}
        for key in self.curves:
            for name, v in key:
                values.setdefault(name, []).append(v)
        out = {}
        for name, vs in values.items():
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
                lo, hi = float(min(vs)), float(max(vs))
                floats = any(isinstance(v, float) for v in vs)
                out[name] = ("log" if floats and lo > 0 and hi > 3 * lo else "lin", lo, hi)
            else:
                out[name] = ("cat", 0.0, 0.0)
        return out

    def values_of(self, name: str) -> list:
        return sorted({dict(k)[name] for k in self.curves if name in dict(k)}, key=str)


def space_for(table: Table) -> dict[str, Any]:
    """The search space over what the table holds: the space recorded with a generic table, else (the synthetic
    grid) the reference's space with batch sizes 8/16/24/32 (learning rate log-uniform over [1e-4, 0.1], four
    activations)."""
    if table.space is not None:
        return table.space
    batches = sorted({dict(k)["train.batch_size"] for k in table.curves})
    activations = sorted({dict(k)["model.activation"] for k in table.curves})
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


def load_table(
    rows: list[dict[str, Any]],
    *,
    epochs: int | None = EPOCHS,
    main_seed: int = MAIN_SEED,
    chance_loss: float | None = None,
    space: dict[str, Any] | None = None,
    noise_from: str = "learners",
) -> Table:
    """Build the replay table from recorded rows, cut to ``epochs`` (None: the longest recorded run).

    A configuration's quality is the mean, over the seeds recorded for all ``epochs`` epochs, of each run's best
    validation loss (the epoch ``best.pt`` keeps; no complete run: infinite). It learns when that is clearly below
    ``chance_loss`` (the loss of the best constant prediction, ``record.chance_loss``; None: 1.0): by more than the
    seed-noise sd of a run's best loss pooled over every configuration recorded with several seeds (a model at
    chance plus noise is not learning). ``eps`` is that sd over the configurations that learn. The replayed noise
    comes from configurations recorded with several seeds: a pooled, bias-corrected standard deviation per epoch
    over those that learn (``noise_from="all"``: over all of them, the old model), zero when there are none."""
    if epochs is None:
        epochs = max(len(r["val_loss"]) for r in rows)
    chance = 1.0 if chance_loss is None else float(chance_loss)
    # a run recorded for at least ``epochs`` epochs is a complete run of ``epochs`` (valid where the learning rate
    # does not depend on the run's length: the synthetic table's constant rate, or a table recorded at R = epochs)
    cut = [
        {**r, "val_loss": r["val_loss"][:epochs], "val_mean_iou": r["val_mean_iou"][:epochs]}
        | ({"status": "completed"} if len(r["val_loss"]) >= epochs else {})
        for r in rows
    ]
    curves = {config_key(params_of(r)): r for r in cut if int(r["seed"]) == main_seed}
    if not curves:
        raise SystemExit(f"no configuration recorded at seed {main_seed} yet; run record.py first")
    keys = sorted(curves, key=lambda k: tuple((n, str(v)) for n, v in k))
    by_config: dict[tuple, list[np.ndarray]] = {}
    for r in cut:
        if r["status"] == "completed" and len(r["val_loss"]) == epochs:
            by_config.setdefault(config_key(params_of(r)), []).append(np.asarray(r["val_loss"], float))
    # what a fresh training hands the user is its best epoch (best.pt): a configuration's quality is the mean over
    # its recorded seeds of each run's best validation loss
    quality = np.array([float(np.mean([c.min() for c in by_config[k]])) if k in by_config else math.inf for k in keys])
    multi = {k: np.stack(v) for k, v in by_config.items() if len(v) >= 2}
    sigma_all = pooled_sd(list(multi.values())) if multi else np.zeros(epochs)
    best_sd_all = float(pooled_sd([g.min(1, keepdims=True) for g in multi.values()])[0]) if multi else 0.0
    learn = np.array([learns(q, chance - best_sd_all) for q in quality], bool)
    chosen = [g for k, g in multi.items() if noise_from == "all" or learn[keys.index(k)]]
    sigma, rho = np.zeros(epochs), 0.0
    if chosen:
        sigma = pooled_sd(chosen)
        # share of the variance shared by all epochs of a run: E[mean_e(u)^2] = rho + (1 - rho) / E
        u = [((g - g.mean(0)) * math.sqrt(len(g) / (len(g) - 1)) / np.maximum(sigma, 1e-12)).mean(1) for g in chosen]
        m = float(np.mean(np.concatenate(u) ** 2))
        rho = float(np.clip((m - 1 / epochs) / (1 - 1 / epochs), 0.0, 1.0)) if epochs > 1 else 1.0
    eps = float(pooled_sd([g.min(1, keepdims=True) for g in chosen])[0]) if chosen else 0.0
    lrs = sorted({dict(k).get("train.learning_rate") for k in curves} - {None})
    return Table(
        curves=curves,
        learning_rates=lrs,
        epochs=epochs,
        sigma=sigma,
        rho=rho,
        noise_configs=len(chosen),
        keys=keys,
        quality=quality,
        learns=learn,
        chance_loss=chance,
        sigma_all=sigma_all,
        eps=eps,
        learn_threshold=chance - best_sd_all,
        space=space,
        index={k: i for i, k in enumerate(keys)},
    )


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
        row = table.lookup(settings_of(config, table))
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
        return RunResult(Path(out), status, len(history), None, best, history, None, reason)

    return fit


def settings_of(config, table: Table) -> dict[str, Any]:
    """The values of the table's settings in a run config (what the replayed training would have used)."""
    names = {name for key in table.curves for name, _ in key}
    return {n: getattr(getattr(config, n.split(".")[0]), n.split(".")[1]) for n in names}


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


#: The reference's initial parameters (``aerotune.reference.REFERENCE_BASELINE``) as settings: trial 0 of a study
#: with a baseline. Its recipe part (the reference's training recipe) is not in the table.
BASELINE = {"train.batch_size": 16, "train.learning_rate": 0.007, "model.activation": "relu"}


def replay_fast(
    table: Table, method: str, seed: int, budget: int, *, baseline: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One study in memory: Optuna's ask-and-tell with aerotune's sampler, pruner and space, and the rules of
    its trial callback (report every epoch, the last epoch is no rung, a pruned trial stops before its next
    epoch, each epoch is claimed against the budget before it runs, a diverged run fails). ``replay_aerotune``
    runs the same through ``run_tune``; a test checks both give the same study. ``baseline``: settings of trial 0,
    enqueued and never pruned (as ``aerotune tune``'s baseline trial)."""
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
    if baseline is not None:
        study.enqueue_trial(space.fixed_params(baseline), user_attrs={"baseline": True})
    spent, events, n_trials, complete, seen, trials = 0, [], 0, 0, [], []
    while spent < budget:
        study.sampler = make_sampler(desc, len(study.get_trials(deepcopy=False)))
        trial = study.ask()
        values = space.suggest(trial)
        row = table.lookup(values)
        first = spent + 1
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
            if epoch < table.epochs and not (baseline is not None and trial.number == 0) and trial.should_prune():
                state = TrialState.PRUNED
                break
        n_trials += 1
        complete += state == TrialState.COMPLETE
        trials.append(_trial(table, row, first, history, state == TrialState.COMPLETE))
        study.tell(trial, min(history) if state == TrialState.COMPLETE else None, state=state)
    return {
        "method": method,
        "seed": seed,
        "epochs": spent,
        "trials": n_trials,
        "complete": complete,
        "events": sorted(events),
        "picked": _picked(seen),
        "trials_log": trials,
    }


def _trial(table: Table, row: dict[str, Any], first: int, values: list[float], complete: bool) -> dict[str, Any]:
    """One trial as ``metrics.kept_config`` reads it: configuration index, first epoch tick, observed values."""
    return {
        "config": table.index[config_key(params_of(row))],
        "first": first if values else 0,
        "values": [round(float(v), 6) for v in values],
        "complete": bool(complete),
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
    events, seen, log = [], [], []
    for t in trials:
        row = table.lookup(dict(t["params"]))
        first = int(t["epoch_ticks"][0]) if t["epoch_ticks"] else 0
        log.append(_trial(table, row, first, [float(v) for v in t["values"]], t["status"] == "complete"))
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
        "trials_log": log,
    }


_TABLE: list[Table] = []


def scaled(table: Table, noise_scale: float) -> Table:
    """The table with its replayed noise scaled: 0 replays every run as its recorded curve (as a real study does,
    whose trials all train with the same seed as the recording), 1 (default) adds the measured spread."""
    return dataclasses.replace(table, sigma=table.sigma * noise_scale) if noise_scale != 1 else table


def _init_worker(table: Table) -> None:
    _TABLE[:] = [table]


def _job(job: tuple[str, int, int, dict[str, Any] | None]) -> dict[str, Any]:
    method, seed, budget, baseline = job
    return replay_fast(_TABLE[0], method, seed, budget, baseline=baseline)


def run_all(
    rows: list[dict[str, Any]] | Table,
    methods: list[str],
    seeds: int,
    budget: int,
    processes: int,
    noise_scale: float = 1.0,
    *,
    baseline: dict[str, Any] | None = None,
    first_seed: int = 0,
) -> list[dict]:
    """Replay ``seeds`` studies of every method (seeds ``first_seed ..``) on a table (or rows, read as the synthetic
    table), with its noise scaled by ``noise_scale``."""
    table = scaled(rows if isinstance(rows, Table) else load_table(rows), noise_scale)
    jobs = [(m, s, budget, baseline) for s in range(first_seed, first_seed + seeds) for m in methods]
    if processes <= 1:
        _init_worker(table)
        return [_job(j) for j in jobs]
    with multiprocessing.get_context("spawn").Pool(processes, initializer=_init_worker, initargs=(table,)) as pool:
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
