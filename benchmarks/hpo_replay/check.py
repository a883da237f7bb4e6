"""Check the replay's verdict with real ``aerotune tune`` studies on the replay's own task.

``run`` trains real studies -- the same task as ``record.py`` (the synthetic set, 32x32 patches, U-Net 8 filters
depth 3, fp32, 1 thread), the same space, seed, study name (``replay-<seed>``, which sets HyperBand's brackets) and
epoch budget (16 full trainings of R = 27 = 432 epochs) as a replayed study -- one after the other, each as an
``aerotune tune`` command line; every finished study's trials (parameters, per-epoch values and epoch ticks) are
written to ``check.json``. Resumable: a finished study is skipped, an interrupted one is continued by ``aerotune
tune`` itself (same run folder). ``compare`` replays the same methods and seed (and the distribution over many
seeds) and compares: epochs to reach random search's final best, best loss at 10/25/50/100 % of the budget.

    nice -n 15 python benchmarks/hpo_replay/check.py run &        # background; about 5-10 min of one core a study
    python benchmarks/hpo_replay/check.py compare --seeds 50      # needs the studies in check.json
    python benchmarks/hpo_replay/check.py compare --seeds 50 --noise-scale 0   # against the noise-free replay
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from analysis import MARKS, anytime, epochs_to_reach  # noqa: E402
from record import CURVES, LEARNING_RATES, TASK, prepare_cache, read_rows  # noqa: E402
from replay import METHODS, load_table, replay_fast, scaled, space_for  # noqa: E402

CHECK = HERE / "check.json"
FLAGS = {  # TuneSettings field -> aerotune tune option
    "sampler": "--sampler",
    "pruner": "--pruner",
    "min_resource": "--min-resource",
    "reduction_factor": "--reduction-factor",
    "sampler_scope": "--sampler-scope",
}


def tune_command(method: str, seed: int, budget: int, cache: Path, space: Path, out: Path) -> list[str]:
    """The ``aerotune tune`` command line of a replayed study of ``method``."""
    cmd = [sys.executable, "-m", "aerotune", "tune", "--data", str(cache), "--out", str(out), "--space", str(space)]
    for key, value in TASK["overrides"].items():
        cmd += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    cmd += ["--seed", str(seed), "--study-name", f"replay-{seed}", "--no-baseline"]
    cmd += ["--trials", "100000", "--max-epochs-total", str(budget), "--workers", "1"]
    for key, value in METHODS[method][1].items():
        cmd += [FLAGS[key], str(value)]
    return cmd


def study_record(out: Path) -> dict[str, Any]:
    """The part of a finished study's ``trials.json``/``summary.json`` the comparison needs."""
    trials = json.loads((out / "trials.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    return {
        "epochs": summary["epochs_spent"],
        "wall_s": summary.get("wall_seconds"),
        "trials": [
            {
                "number": t["number"],
                "status": t["status"],
                "params": t["params"],
                "values": [round(float(v), 6) for v in t["values"]],
                "epoch_ticks": t["epoch_ticks"],
            }
            for t in trials
        ],
    }


def events_of(study: dict[str, Any]) -> list[list[float]]:
    """(epoch tick, value) of every reported epoch: the input of ``analysis.anytime``."""
    return sorted([int(k), float(v)] for t in study["trials"] for k, v in zip(t["epoch_ticks"], t["values"]))


def figures(events: list[list[float]], target: float, budget: int) -> dict[str, Any]:
    """Epochs to reach ``target`` and the best value at each mark of the budget."""
    curve = anytime(events, budget)
    reach = epochs_to_reach(curve, target)
    return {
        "reach": None if math.isinf(reach) else int(reach),
        "share": None if math.isinf(reach) else round(reach / budget, 3),
        "best_at": {f"{m:.2f}": round(float(curve[int(m * budget) - 1]), 6) for m in MARKS},
    }


def compare(real: dict[str, dict], replayed: dict[str, list[dict]], seed: int, budget: int) -> dict[str, Any]:
    """Real studies against replayed ones of the same method: ``real[method]`` one study, ``replayed[method]``
    the replayed studies of seeds 0..n-1 (``replayed["rs"]`` gives each seed's yardstick). Each real study is
    measured against the real random search's final best; each replayed one against its seed's replayed one."""
    target_real = anytime(events_of(real["rs"]), budget)[-1]
    rs_final = {s["seed"]: anytime(s["events"], budget)[-1] for s in replayed["rs"]}
    out: dict[str, Any] = {"seed": seed, "budget": budget, "real_rs_final_best": round(float(target_real), 6)}
    for method, study in real.items():
        fig = figures(events_of(study), target_real, budget)
        reps = [figures(s["events"], rs_final[s["seed"]], budget) for s in replayed.get(method, [])]
        same = next((r for r, s in zip(reps, replayed.get(method, [])) if s["seed"] == seed), None)
        reach = np.array([math.inf if r["reach"] is None else r["reach"] for r in reps], float)
        real_reach = math.inf if fig["reach"] is None else fig["reach"]
        final = np.array([r["best_at"]["1.00"] for r in reps], float)
        out[method] = {
            "label": METHODS[method][0],
            "real": {**fig, "trials": len(study["trials"]), "epochs": study["epochs"]},
            "replay_same_seed": same,
            "replay_seeds": len(reps),
            "replay_reach_median": _q(reach, 0.5),
            "replay_reach_quartiles": [_q(reach, 0.25), _q(reach, 0.75)],
            "replay_reached_share": round(float(np.isfinite(reach).mean()), 3) if reps else None,
            # where the real study falls among the replayed seeds: the share of them that needed fewer epochs
            # (ties count half), and the share with a lower final best
            "real_reach_percentile": _pct(reach, real_reach),
            "real_final_percentile": _pct(final, fig["best_at"]["1.00"]),
            "replay_final_median": round(float(np.median(final)), 6) if reps else None,
        }
    return out


def _q(x: np.ndarray, q: float) -> float | None:
    if not len(x):
        return None
    v = float(np.quantile(x, q, method="lower"))
    return None if math.isinf(v) else v


def _pct(x: np.ndarray, v: float) -> float | None:
    if not len(x):
        return None
    return round(float(((x < v).sum() + 0.5 * (x == v).sum()) / len(x)), 3)


def table_gap(study: dict[str, Any], table) -> dict[str, Any]:
    """How far the real trials lie from the table: real loss minus the recorded loss of the configuration the
    replay would use, per epoch in units of the measured noise sd at that epoch (median and 1.4826 x the median
    absolute deviation: diverging runs without activation reach losses of 1e8), and per trial the difference of
    the best losses; over all trials and over those the table holds (same batch size and activation, learning
    rate within half a grid step of a recorded one: on a partial table the others are snapped further)."""
    half_step = math.log(LEARNING_RATES[1] / LEARNING_RATES[0]) / 2
    out: dict[str, Any] = {}
    for scope in ("all", "on_grid"):
        z, best = [], []
        for t in study["trials"]:
            p = t["params"]
            lr, batch, act = p["train.learning_rate"], p["train.batch_size"], p["model.activation"]
            row = table.lookup(lr, batch, act)
            near = (row["batch_size"], row["activation"]) == (batch, act) and abs(
                math.log(lr / row["learning_rate"])
            ) <= half_step + 1e-9
            if scope == "on_grid" and not near:
                continue
            n = min(len(t["values"]), len(row["val_loss"]))
            z += [(t["values"][i] - row["val_loss"][i]) / max(float(table.sigma[i]), 1e-9) for i in range(n)]
            if n:
                best.append(min(t["values"][:n]) - min(row["val_loss"][:n]))
        out[scope] = {
            "trials": len(best),
            "epochs": len(z),
            "median_z": round(float(np.median(z)), 2) if z else None,
            "robust_sd_z": round(float(1.4826 * np.median(np.abs(np.asarray(z) - np.median(z)))), 2) if z else None,
            "best_diff_median": round(float(np.median(best)), 4) if best else None,
        }
    return out


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"studies": {}}


def _save(path: Path, data: dict[str, Any]) -> None:
    from aerotune.files import write_json

    write_json(path, data)


def run(args) -> None:
    rows = read_rows(args.curves)
    table = load_table(rows)
    budget = args.budget_trials * table.epochs
    args.work.mkdir(parents=True, exist_ok=True)
    _, _ = prepare_cache(args.work)
    space = args.work / "space.json"
    space.write_text(json.dumps(space_for(table)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for method in args.methods.split(","):
        key = f"{method}-seed{args.seed}-budget{budget}"
        if key in _load(args.check)["studies"]:
            print(f"{key}: done", flush=True)
            continue
        out = args.work / key
        cmd = tune_command(method, args.seed, budget, args.work / "cache", space, out)
        print(f"{key}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        subprocess.run(cmd, env=env, check=True)
        record = {"method": method, "seed": args.seed, "budget": budget, **study_record(out)}
        record["run_s"] = round(time.time() - t0, 1)
        data = _load(args.check)
        data["task"] = TASK
        data["space"] = space_for(table)
        data["studies"][key] = record
        _save(args.check, data)
        print(f"{key}: {record['epochs']} epochs, {len(record['trials'])} trials, {record['run_s']} s", flush=True)


def compare_cmd(args) -> None:
    rows = read_rows(args.curves)
    table = scaled(load_table(rows), args.noise_scale)
    budget = args.budget_trials * table.epochs
    data = _load(args.check)
    real = {s["method"]: s for s in data["studies"].values() if s["seed"] == args.seed and s["budget"] == budget}
    if "rs" not in real:
        raise SystemExit(f"no real random search of seed {args.seed}, budget {budget} in {args.check}; run first")
    replayed = {m: [replay_fast(table, m, s, budget) for s in range(args.seeds)] for m in real}
    result = compare(real, replayed, args.seed, budget)
    result["table_gap"] = {m: table_gap(s, table) for m, s in real.items()}
    result["table_configs"] = len(table.curves)
    result["noise_scale"] = args.noise_scale
    data.setdefault("comparisons", {})[f"seed{args.seed}-budget{budget}-noise{args.noise_scale:g}"] = result
    _save(args.check, data)
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    b = result["budget"]
    lines = [
        f"Real studies (seed {result['seed']}, budget {b} epochs) against the replay (noise scale "
        f"{result.get('noise_scale', 1.0):g}); yardstick: each study's random search's final best (real: "
        f"{result['real_rs_final_best']:.4f}).",
        "",
        "| method | real: trials | real: epochs to reach (share) | replay, same seed | replay over seeds: median "
        "[quartiles], reached | real's percentile among replays | real best at 10/25/50/100 % | "
        "replay median final best |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def fmt(r: float | None) -> str:
        return f"> {b}" if r is None else f"{r:.0f}"

    for r in result.values():
        if not isinstance(r, dict) or "real" not in r:
            continue
        real, same = r["real"], r["replay_same_seed"]
        share = "" if real["share"] is None else f" ({real['share']:.2f})"
        q = r["replay_reach_quartiles"]
        lines.append(
            f"| {r['label']} | {real['trials']} | {fmt(real['reach'])}{share} | "
            f"{fmt(same['reach']) if same else '-'} | {fmt(r['replay_reach_median'])} [{fmt(q[0])}, {fmt(q[1])}], "
            f"{r['replay_reached_share']:.0%} | {r['real_reach_percentile']} | "
            f"{' / '.join(f'{v:.4f}' for v in real['best_at'].values())} | {r['replay_final_median']:.4f} |"
        )
    gap = result.get("table_gap", {})
    if gap:
        lines += [
            "",
            "Real trials against the table (real minus the recorded loss of the configuration the replay uses; per "
            "epoch in noise sd: median and robust sd; and the median difference of a trial's best loss), all trials / "
            "those on the grid:",
            "",
        ]
        for m, g in gap.items():
            a, o = g["all"], g["on_grid"]
            lines.append(
                f"* {result[m]['label']}: {a['trials']} trials, median {a['median_z']:+.2f} sd {a['robust_sd_z']:.2f}, "
                f"best {a['best_diff_median']:+.4f} / {o['trials']} trials, median {_f(o['median_z'], '+.2f')} sd "
                f"{_f(o['robust_sd_z'], '.2f')}, best {_f(o['best_diff_median'], '+.4f')}"
            )
    return "\n".join(lines)


def _f(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["run", "compare"])
    p.add_argument("--methods", default="rs,hb_tpe,sha_tpe_r3", help="comma-separated keys of replay.METHODS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-trials", type=int, default=16)
    p.add_argument("--seeds", type=int, default=100, help="replayed seeds to compare with (compare)")
    p.add_argument("--noise-scale", type=float, default=1.0, help="replayed noise, as replay.py's (compare)")
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument("--check", type=Path, default=CHECK)
    p.add_argument("--work", type=Path, default=Path("/tmp/aerotune-hpo-check"))
    args = p.parse_args()
    run(args) if args.action == "run" else compare_cmd(args)


if __name__ == "__main__":
    main()
