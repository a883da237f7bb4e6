"""SMAC3's multi-fidelity facade (random forest + Hyperband intensifier) replayed on the recorded learning curves.

Unlike ``replay.py``'s methods this does NOT go through aerotune's Optuna machinery: SMAC schedules configurations
and budgets itself (``MultiFidelityFacade`` with its default Hyperband intensifier, eta = 3, budgets 1..27 epochs,
its random initial design and random-forest model), driven by its ask-and-tell interface. It sees the same table,
noise model, space and epoch budget as the replayed Optuna studies, and its studies are measured the same way
(epochs until the best validation loss so far reaches the same seed's random-search final best; random search is
replayed by ``replay.replay_fast``), so its rows join ``replay.py``'s table.

Epoch accounting: SMAC evaluates a configuration at budget b by training it from scratch for b epochs (it has no
notion of continuing a run), so a configuration promoted from 3 to 9 epochs costs 3 + 9 epochs ("restart",
SMAC's native way, key ``smac_mf``). ``smac_mf_continue`` charges only the epochs a promoted configuration had not
trained yet (as if its checkpoint were resumed, the way aerotune's pruners work): the same SMAC, cheaper
evaluations. A configuration's replayed noise is drawn once per configuration and seed (a retraining with the same
training seed repeats its curve); a trial's cost is its best validation loss over its b epochs, and every epoch is
an observed value at the tick it is trained (as in ``replay.py``). The study stops when the budget is spent,
mid-evaluation if need be.

Needs SMAC3 and Optuna beside aerotune's source but not torch (``requirements-smac.txt``); SMAC 2.4 pulls in dask,
distributed and scikit-learn, so it lives in its own environment:

    python3 -m venv /tmp/smacvenv && /tmp/smacvenv/bin/pip install -r benchmarks/hpo_replay/requirements-smac.txt
    PYTHONPATH=src /tmp/smacvenv/bin/python benchmarks/hpo_replay/smac_replay.py          # 100 seeds, budget 16 R

Writes ``benchmarks/hpo_replay/results-smac.json`` and ``docs/figures/hpo_replay/smac.md``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from analysis import summarize  # noqa: E402
from record import CURVES, read_rows  # noqa: E402
from replay import METHODS, ROOT, Table, _picked, load_table, replay_fast  # noqa: E402

SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else None  # SMAC writes its run history after every tell
SMAC_METHODS = {
    "smac_mf": "SMAC3 multi-fidelity (RF + Hyperband), retrains from scratch",
    "smac_mf_continue": "SMAC3 multi-fidelity (RF + Hyperband), epochs charged as if resumed",
}


def config_space(table: Table, seed: int):
    """The reference's space over what the table holds (as ``replay.space_for``), in ConfigSpace."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float

    cs = ConfigurationSpace(seed=seed)
    cs.add(
        [
            Float("learning_rate", (table.learning_rates[0], table.learning_rates[-1]), log=True),
            Categorical("batch_size", table.values_of("train.batch_size")),
            Categorical("activation", table.values_of("model.activation")),
        ]
    )
    return cs


def replay_smac(table: Table, seed: int, budget: int, *, resume: bool = False, workdir: Path | None = SHM) -> dict:
    """One SMAC study on the table; returns a study in ``replay.replay_fast``'s form."""
    from smac import MultiFidelityFacade, Scenario
    from smac.model.random_forest import RandomForest
    from smac.runhistory.dataclasses import TrialValue
    from smac.runhistory.enumerations import StatusType

    with tempfile.TemporaryDirectory(prefix="smac-replay-", dir=workdir) as tmp:
        scenario = Scenario(
            config_space(table, seed),
            name=f"replay-{seed}",
            output_directory=Path(tmp),
            deterministic=True,
            n_trials=budget,  # an upper bound on evaluations (each costs at least one epoch); the epoch cap stops
            min_budget=1,
            max_budget=table.epochs,
            seed=seed,
        )
        # the facade's default surrogate (``get_model``'s settings) with two speed-ups that keep its model: one
        # thread (n_jobs=-1 makes joblib threads that sleep-wait on a shared machine: two thirds of the wall time
        # in a profile) and no leaf cap (SMAC's 2**20 makes scikit-learn's best-first builder preallocate: 0.37 s
        # per tree of 60 points against 0.002 s; trees grow to min_samples_split either way)
        model = RandomForest(
            scenario.configspace,
            log_y=True,
            n_trees=10,
            bootstrapping=True,
            ratio_features=1.0,
            min_samples_split=2,
            min_samples_leaf=1,
            max_depth=2**20,
            instance_features=scenario.instance_features,
            seed=scenario.seed,
            n_jobs=1,
            max_leaf_nodes=None,
        )
        smac = MultiFidelityFacade(
            scenario,
            lambda config, seed=0, budget=0.0: 0.0,  # never called: ask-and-tell
            model=model,
            intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=3),
            overwrite=True,
            logging_level=logging.ERROR,
        )
        noise: dict[tuple, np.ndarray] = {}
        trained: dict[tuple, int] = {}
        spent, events, seen, evaluations, complete = 0, [], [], 0, 0
        while spent < budget:
            info = smac.ask()
            c = info.config
            key = (float(c["learning_rate"]), int(c["batch_size"]), str(c["activation"]))
            row = table.lookup(*key)
            if key not in noise:
                rng = np.random.default_rng([seed, len(noise)])
                n = len(row["val_loss"])
                z = math.sqrt(table.rho) * rng.standard_normal() + math.sqrt(1 - table.rho) * rng.standard_normal(n)
                noise[key] = np.asarray(row["val_loss"], float) + table.sigma[:n] * z
            losses = noise[key]
            b = int(round(info.budget))
            start = trained.get(key, 0) if resume else 0
            for epoch in range(start + 1, min(b, len(losses)) + 1):
                if spent >= budget:
                    break
                spent += 1
                events.append([spent, round(float(losses[epoch - 1]), 6)])
                seen.append((spent, float(losses[epoch - 1]), row["val_loss"][epoch - 1]))
            trained[key] = max(trained.get(key, 0), min(b, len(losses)))
            evaluations += 1
            if b > len(losses):  # the recorded run diverged in epoch len + 1: that epoch was spent too
                spent += spent < budget and start <= len(losses)
                smac.tell(info, TrialValue(cost=math.inf, status=StatusType.CRASHED))
            else:
                complete += b == table.epochs
                smac.tell(info, TrialValue(cost=float(losses[:b].min())))
    return {
        "method": "smac_mf_continue" if resume else "smac_mf",
        "seed": seed,
        "epochs": spent,
        "trials": evaluations,
        "complete": complete,
        "events": sorted(events),
        "picked": _picked(seen),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--budget-trials", type=int, default=16, help="random search's full trainings (default 16)")
    p.add_argument("--methods", default=",".join(SMAC_METHODS))
    p.add_argument("--results", type=Path, default=HERE / "results-smac.json")
    p.add_argument("--table", type=Path, default=ROOT / "docs" / "figures" / "hpo_replay" / "smac.md")
    args = p.parse_args()
    from aerotune.files import write_json

    logging.getLogger("smac").setLevel(logging.ERROR)
    rows = read_rows(args.curves)
    table = load_table(rows)
    budget = args.budget_trials * table.epochs
    methods = args.methods.split(",")
    labels = {"rs": METHODS["rs"][0], **{m: SMAC_METHODS[m] for m in methods}}
    t0 = time.time()
    studies: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        studies.append(replay_fast(table, "rs", seed, budget))
        for m in methods:
            studies.append(replay_smac(table, seed, budget, resume=m == "smac_mf_continue"))
        if seed % 10 == 9:
            print(f"{seed + 1} seeds, {time.time() - t0:.0f} s", flush=True)
    summary = summarize(studies, rows, table, budget, labels)
    slim = {k: v for k, v in summary.items() if k != "markdown"}
    for d in slim["methods"].values():
        for k in [k for k in d if k.endswith("_curve")]:
            del d[k]
        d["reach"] = [None if math.isinf(x) else x for x in d["reach"]]
        d["reach_quartiles"] = [None if math.isinf(x) else x for x in d["reach_quartiles"]]
        d["reach_share_median"] = None if math.isinf(d["reach_share_median"]) else d["reach_share_median"]
    write_json(args.results, slim)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(summary["markdown"] + "\n")
    print(summary["markdown"])
    print(f"replayed {len(studies)} studies in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
