"""The evidence a user can act on: with a budget, how much better is the model tuning gives, and is it real?

On a recorded table (``curves.jsonl``; any table ``record.py`` writes, e.g. ``--dataset dubai``) this replays
``replay.py``'s studies and reports, per method and fraction of random search's budget (0.1, 0.2, 0.5, 1):

* the kept model's **regret** (``metrics.kept_config``/``metrics.regret``): the quality of the configuration the
  study would hand the user (mean over its recorded seeds of a run's best validation loss, what ``best.pt`` of a
  fresh training gives) minus the best configuration's, mean over seeds [95 % bootstrap];
* **P(within eps)**: the share of seeds whose kept model is within eps of the best configuration, eps = the seed
  noise sd of a run's best loss over configurations that learn [95 % bootstrap];
* secondary: the share of the budget needed to reach the same seed's random search's final best (median);

with the replayed noise **calibrated** so that the real studies of ``check.json`` land in the middle of the
replay's distribution (their percentile before and after), the early-ranking correlations over configurations
that learn, the demo's regime (R = 9, 72 epochs, a baseline trial) and the reference's budget (3,455 epochs; at
the table's R, as R = 50 is not recorded).

    nice -n 15 python benchmarks/hpo_replay/evidence.py --seeds 5 --calibration-seeds 5 --reference-seeds 2  # quick
    nice -n 15 python benchmarks/hpo_replay/evidence.py      # the published run (see docs/tuning.md)

Writes ``benchmarks/hpo_replay/results-evidence.json`` and ``docs/figures/hpo_replay/evidence.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from analysis import anytime, epochs_to_reach  # noqa: E402
from metrics import (  # noqa: E402
    FRACTIONS,
    calibrate,
    early_ranking,
    interval,
    kept_config,
    percentile,
    regret,
    saving_interval,
)
from record import CURVES, read_meta, read_rows  # noqa: E402
from record_dubai import default_config  # noqa: E402
from replay import BASELINE, METHODS, ROOT, Table, config_key, load_table, run_all  # noqa: E402

FINE = tuple(round(0.05 * i, 2) for i in range(1, 21))  # fractions for the saving factor
REFERENCE_EPOCHS = 3455


def per_seed(studies: list[dict], table: Table, budget: int, fractions=FINE) -> dict[str, dict[str, np.ndarray]]:
    """Per method: regret (seeds x fractions), whether a complete trial was kept, and epochs to reach random
    search's final best (same seed) as a share of the budget."""
    out: dict[str, dict[str, Any]] = {}
    rs_final = {s["seed"]: anytime(s["events"], budget)[-1] for s in studies if s["method"] == "rs"}
    for s in sorted(studies, key=lambda s: (s["method"], s["seed"])):
        d = out.setdefault(s["method"], {"regret": [], "complete": [], "reach": [], "trials": []})
        kept = [kept_config(s["trials_log"], max(1, int(round(f * budget)))) for f in fractions]
        d["regret"].append([regret(k, useful(table)) for k, _ in kept])
        d["complete"].append([c for _, c in kept])
        if s["seed"] in rs_final:
            d["reach"].append(epochs_to_reach(anytime(s["events"], budget), rs_final[s["seed"]]) / budget)
        d["trials"].append(s["trials"])
    return {m: {k: np.asarray(v, float) for k, v in d.items()} for m, d in out.items()}


def regime(studies: list[dict], table: Table, budget: int, eps: float) -> dict[str, Any]:
    """The user's metrics per method and fraction, with intervals, and the saving factor against random search."""
    data = per_seed(studies, table, budget)
    col = {f: FINE.index(f) for f in FRACTIONS}
    rs = data["rs"]
    rs_within = (rs["regret"][:, -1] <= eps + 1e-12).astype(float)
    out: dict[str, Any] = {"budget": budget, "eps": round(eps, 5), "methods": {}}
    for m, d in data.items():
        within = (d["regret"] <= eps + 1e-12).astype(float)
        finite = finite_regret(d["regret"], table)
        reach = d["reach"]
        out["methods"][m] = {
            "label": METHODS[m][0],
            "seeds": int(len(d["regret"])),
            "trials_median": float(np.median(d["trials"])),
            "at": {
                f"{f:g}": {
                    "regret": interval(finite[:, i]),
                    "within_eps": interval(within[:, i]),
                    "no_complete_trial": round(float(1 - d["complete"][:, i].mean()), 3),
                }
                for f, i in col.items()
            },
            "reach_share": {
                **interval(np.minimum(reach, 2.0), np.median),
                "reached": round(float(np.isfinite(reach).mean()), 3),
            },
            "saving_regret": saving_interval(finite, finite_rs(rs, table)[:, -1], FINE),
            "saving_within": saving_interval(within, rs_within, FINE, lower_is_better=False)
            if rs_within.mean() > 0
            else {"fraction": None, "ci95": [None, None], "factor": None, "note": "random search's P is 0"},
            "regret_vs_rs_full_at_0.2": diff_interval(finite[:, col[0.2]], finite_rs(rs, table)[:, -1]),
        }
    return out


def finite_rs(rs: dict[str, np.ndarray], table: Table) -> np.ndarray:
    return finite_regret(rs["regret"], table)


def useful(table: Table) -> np.ndarray:
    """Quality capped at the chance loss: a model worse than predicting at chance (runs without an activation reach
    finite losses of 1e8) is as useless to the user as chance, and one such seed must not swamp a mean."""
    return np.minimum(table.quality, table.chance_loss)


def finite_regret(regrets: np.ndarray, table: Table) -> np.ndarray:
    """Regrets with "kept nothing" (inf) counted as chance's."""
    q = useful(table)
    return np.where(np.isfinite(regrets), regrets, q.max() - q.min())


def diff_interval(a: np.ndarray, b: np.ndarray, n: int = 2000, seed: int = 0) -> dict[str, Any]:
    """mean(a) - mean(b) with a bootstrap interval (a and b independent studies, resampled separately)."""
    rng = np.random.default_rng(seed)
    boots = [a[rng.integers(0, len(a), len(a))].mean() - b[rng.integers(0, len(b), len(b))].mean() for _ in range(n)]
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"value": round(float(a.mean() - b.mean()), 5), "ci95": [round(float(lo), 5), round(float(hi), 5)]}


def table_facts(rows: list[dict], table: Table) -> dict[str, Any]:
    """What the table says before any replay: learners, noise, eps and its interval, early ranking."""
    keys = table.keys
    curves = np.full((len(keys), table.epochs), np.inf)
    for i, k in enumerate(keys):
        v = table.curves[k]["val_loss"]
        curves[i, : len(v)] = v
    final = np.where(np.isfinite(curves), curves, 1e9).min(1)  # the main seed's run's best loss
    dof = sum(len(g) - 1 for g in _groups(rows, table))
    eps = table.eps
    lo = eps * math.sqrt(dof / chi2_quantile(1.959964, dof)) if dof else math.nan
    hi = eps * math.sqrt(dof / chi2_quantile(-1.959964, dof)) if dof else math.nan
    order = np.argsort(table.quality)
    return {
        "configs": len(keys),
        "epochs": table.epochs,
        "chance_loss": table.chance_loss,
        "learn_threshold": round(table.learn_threshold, 5),
        "learners": int(table.learns.sum()),
        "noise_configs_learners": table.noise_configs,
        "noise_dof": dof,
        "eps": round(eps, 5),
        "eps_ci95": [round(lo, 5), round(hi, 5)],
        "sigma_final_all_configs": round(float(table.sigma_all[-1]), 5),
        "sigma_learners": [round(float(x), 5) for x in table.sigma],
        "rho": round(table.rho, 3),
        "best_quality": [round(float(table.quality[i]), 5) for i in order[:5]],
        "median_quality_learners": round(float(np.median(table.quality[table.learns])), 5),
        "ranking_learners": early_ranking(curves, final, table.learns),
        "ranking_all": early_ranking(np.where(np.isfinite(curves), curves, 1e9), final, np.ones(len(keys), bool)),
    }


def chi2_quantile(z: float, k: int) -> float:
    """The chi-square quantile with k degrees of freedom at the normal quantile z (Wilson-Hilferty; within 1 % for
    k >= 3): the interval of a standard deviation estimated with k degrees of freedom."""
    return k * (1 - 2 / (9 * k) + z * math.sqrt(2 / (9 * k))) ** 3


def _groups(rows: list[dict], table: Table) -> list[list]:
    from replay import config_key, params_of

    by: dict[tuple, list] = {}
    for r in rows:
        k = config_key(params_of(r))
        if k in table.index and table.learns[table.index[k]] and len(r["val_loss"]) >= table.epochs:
            by.setdefault(k, []).append(r)
    return [g for g in by.values() if len(g) >= 2]


def calibration(table_all: Table, table: Table, args, check: dict) -> dict[str, Any]:
    """Where the real studies of check.json land among replays of their method (final best loss), under the old
    noise (pooled over all configurations, scale 1) and over a grid of scales of the learners' noise."""
    budget = 16 * table.epochs
    real: dict[str, list[float]] = {}
    for s in check["studies"].values():
        if s["budget"] == budget:
            ev = sorted([int(k), float(v)] for t in s["trials"] for k, v in zip(t["epoch_ticks"], t["values"]))
            real.setdefault(s["method"], []).append(float(anytime(ev, budget)[-1]))
    methods = sorted(real)

    def finals(t: Table, scale: float) -> dict[str, list[float]]:
        studies = run_all(t, methods, args.calibration_seeds, budget, args.processes, scale)
        out: dict[str, list[float]] = {}
        for s in studies:
            out.setdefault(s["method"], []).append(float(anytime(s["events"], budget)[-1]))
        return out

    before = finals(table_all, 1.0)
    cal = calibrate(lambda sc: finals(table, sc), real, args.scales)
    after = finals(table, cal["scale"])
    pct = {
        "before": {m: [round(percentile(before[m], v), 3) for v in real[m]] for m in methods},
        "after": {m: [round(percentile(after[m], v), 3) for v in real[m]] for m in methods},
    }
    return {
        "real_final_best": {m: [round(v, 5) for v in real[m]] for m in methods},
        "replay_median_before": {m: round(float(np.median(before[m])), 5) for m in methods},
        "replay_median_after": {m: round(float(np.median(after[m])), 5) for m in methods},
        "percentiles": pct,
        "mean_percentile_before": round(float(np.mean([p for v in pct["before"].values() for p in v])), 3),
        "mean_percentile_after": round(float(np.mean([p for v in pct["after"].values() for p in v])), 3),
        "scale": cal["scale"],
        "grid": [{k: v for k, v in g.items() if k != "percentiles"} for g in cal["grid"]],
        "seeds": args.calibration_seeds,
    }


def markdown(r: dict[str, Any]) -> str:
    t = r["table"]
    lines = [
        f"Table: {t['configs']} configurations, R = {t['epochs']}; chance loss {t['chance_loss']:.4f}; learns = "
        f"quality (mean best loss over the recorded seeds) below {t['learn_threshold']:.4f} (chance minus the seed "
        f"noise of a run's best loss over all configurations with extra seeds): {t['learners']} configurations. "
        f"eps = seed-noise sd of a run's best loss over the {t['noise_configs_learners']} learning configurations with "
        f"3 seeds ({t['noise_dof']} degrees of freedom): {t['eps']:.4f} [{t['eps_ci95'][0]:.4f}, "
        f"{t['eps_ci95'][1]:.4f}] (the final epoch's sd over them: {t['sigma_learners'][-1]:.4f}; over all "
        f"configurations with extra seeds: {t['sigma_final_all_configs']:.4f}). Best configurations' quality: "
        + ", ".join(f"{x:.4f}" for x in t["best_quality"])
        + ".",
        "",
        f"Rank correlation (Spearman) of the loss after 1/3/9 epochs with the run's best loss (main seed), over the "
        f"{t['ranking_learners']['configs']} configurations that learn: "
        + " / ".join(f"{t['ranking_learners'].get(f'epoch_{e}', float('nan')):.2f}" for e in (1, 3, 9))
        + f" (over all {t['ranking_all']['configs']}: "
        + " / ".join(f"{t['ranking_all'].get(f'epoch_{e}', float('nan')):.2f}" for e in (1, 3, 9))
        + ").",
    ]
    c = r.get("calibration")
    if c:
        lines += [
            "",
            f"Noise calibration ({c['seeds']} replayed seeds per method and scale): real studies' final best at "
            f"percentiles {c['percentiles']['before']} of the replay with the old noise (mean "
            f"{c['mean_percentile_before']:.2f}); scale of the learners' noise chosen: {c['scale']:.2f} "
            f"(grid: " + ", ".join(f"{g['scale']:g} -> {g['mean_percentile']:.2f}" for g in c["grid"]) + "); after: "
            f"percentiles {c['percentiles']['after']} (mean {c['mean_percentile_after']:.2f}).",
        ]
    for reg in r["regimes"].values():
        lines += ["", f"**{reg['title']}** ({reg['note']})", ""]
        if "default_regret" in reg:
            lines += [f"The default recipe untuned (trial 0) has regret {reg['default_regret']:.4f}.", ""]
        lines += [
            "| method | trials | fraction of budget | kept-model regret: mean [95 % CI] | P(within eps) [95 % CI] | "
            "no complete trial yet |",
            "|---|---|---|---|---|---|",
        ]
        for d in reg["methods"].values():
            for f, a in d["at"].items():
                g, w = a["regret"], a["within_eps"]
                lines.append(
                    f"| {d['label']} | {d['trials_median']:.0f} | {f} | {g['value']:.4f} [{g['ci95'][0]:.4f}, "
                    f"{g['ci95'][1]:.4f}] | {w['value']:.2f} [{w['ci95'][0]:.2f}, {w['ci95'][1]:.2f}] | "
                    f"{a['no_complete_trial']:.0%} |"
                )
        lines += [
            "",
            "| method | budget share to reach random search's final best: median [95 % CI], seeds reaching it | "
            "fraction of the budget that matches random search's full-budget regret [95 % CI] (saving) | "
            "the same for P(within eps) | regret at 0.2 minus random search's at 1 [95 % CI] |",
            "|---|---|---|---|---|",
        ]
        for d in reg["methods"].values():
            rs, sr, sw, dv = d["reach_share"], d["saving_regret"], d["saving_within"], d["regret_vs_rs_full_at_0.2"]
            lines.append(
                f"| {d['label']} | {_share(rs['value'])} [{_share(rs['ci95'][0])}, {_share(rs['ci95'][1])}], "
                f"{rs['reached']:.0%} | {_frac(sr)} | {_frac(sw)} | {dv['value']:+.4f} [{dv['ci95'][0]:+.4f}, "
                f"{dv['ci95'][1]:+.4f}] |"
            )
    return "\n".join(lines)


def _share(x: float | None) -> str:
    return "not reached" if x is None or x > 1 else f"{x:.2f}"


def _frac(s: dict[str, Any]) -> str:
    f, ci = s["fraction"], s["ci95"]
    lo = "-" if ci[0] is None else f"{ci[0]:.2f}"
    hi = "never" if ci[1] is None else f"{ci[1]:.2f}"
    if s.get("note"):
        return f"undefined ({s['note']})"
    if f is None:
        return f"never within the budget [{lo}, {hi}]"
    return f"{f:.2f} ({1 / f:.1f}x) [{lo}, {hi}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument("--seeds", type=int, default=100, help="replayed studies per method, main regime (default 100)")
    p.add_argument("--methods", default="rs,hb_tpe,hb,sha,sha_tpe_r3")
    p.add_argument("--calibration-seeds", type=int, default=40)
    p.add_argument("--scales", default="0,0.25,0.5,0.75,1", help="grid of noise scales for the calibration")
    p.add_argument("--noise-scale", type=float, default=None, help="skip the calibration and use this scale")
    p.add_argument("--demo-seeds", type=int, default=100)
    p.add_argument("--demo-methods", default="rs,hb_tpe,hb,sha_tpe_r3", help="methods replayed in the demo's regime")
    p.add_argument("--reference-seeds", type=int, default=20)
    p.add_argument("--reference-methods", default="rs,hb_tpe,sha_tpe_r3")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--check", type=Path, default=HERE / "check.json")
    p.add_argument("--results", type=Path, default=HERE / "results-evidence.json")
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures" / "hpo_replay")
    p.add_argument("--name", default="evidence", help="the table's file name in --figures, without .md")
    args = p.parse_args()
    args.scales = [float(x) for x in args.scales.split(",")]
    t0 = time.time()
    rows = read_rows(args.curves)
    meta = read_meta(args.curves)
    opts = {"chance_loss": meta.get("chance_loss"), "space": meta.get("space"), "main_seed": meta.get("main_seed", 42)}
    epochs = meta.get("epochs")
    table = load_table(rows, epochs=epochs, **opts)
    result: dict[str, Any] = {"command": " ".join(sys.argv), "table": table_facts(rows, table), "regimes": {}}
    print(markdown(result), flush=True)
    scale = args.noise_scale
    if scale is None and args.check.is_file() and table.space is None:
        table_all = load_table(rows, epochs=epochs, noise_from="all", **opts)
        result["calibration"] = calibration(table_all, table, args, json.loads(args.check.read_text()))
        scale = result["calibration"]["scale"]
        print(f"calibrated noise scale {scale} ({time.time() - t0:.0f} s)", flush=True)
    scale = 1.0 if scale is None else scale
    result["noise_scale"] = scale
    eps = table.eps
    methods = args.methods.split(",")
    budget = 16 * table.epochs
    studies = run_all(table, methods, args.seeds, budget, args.processes, scale)
    result["regimes"]["main"] = {
        "title": f"Main regime: R = {table.epochs}, budget {budget} epochs (16 full trainings), {args.seeds} seeds",
        "note": f"noise scale {scale:g} of the learners' seed noise; no baseline trial",
        **regime(studies, table, budget, eps),
    }
    print(f"main regime done ({time.time() - t0:.0f} s)", flush=True)
    if table.epochs >= 9 and table.space is None:
        t9 = load_table(rows, epochs=9, **opts)
        studies = run_all(t9, ["rs", "hb_tpe"], args.demo_seeds, 72, args.processes, scale, baseline=BASELINE)
        result["regimes"]["demo"] = {
            "title": f"The demo's regime: R = 9, budget 72 epochs (8 full trainings), baseline trial 0, "
            f"{args.demo_seeds} seeds",
            "note": "curves cut to their first 9 epochs (the table's constant learning rate makes that a 9-epoch "
            "run); trial 0 = the reference's parameters, never pruned; not replayable: trial 1 (the default recipe "
            "untuned) and the demo's own space and recipe, which the table does not hold; eps and the noise from "
            "the 9-epoch table",
            **regime(studies, t9, 72, t9.eps),
        }
        print(f"demo regime done ({time.time() - t0:.0f} s)", flush=True)
    elif (
        args.demo_seeds and table.epochs == 9 and table.space and config_key(default_config(table.space)) in table.index
    ):
        default = default_config(table.space)  # trial 0: the default recipe untuned, recorded at 3 seeds
        methods9 = [m for m in args.demo_methods.split(",") if m]
        studies = run_all(table, methods9, args.demo_seeds, 72, args.processes, scale, baseline=default)
        quality = useful(table)
        result["regimes"]["demo"] = {
            "title": f"The demo's regime: R = 9, budget 72 epochs (8 full trainings), the default recipe untuned as "
            f"trial 0, {args.demo_seeds} seeds",
            "note": "trial 0 = every setting at its default (recorded at 3 seeds), never pruned, as trial 1 of a "
            "real study; the reference recipe's trial is not in the table",
            **regime(studies, table, 72, eps),
            "default_regret": round(float(quality[table.index[config_key(default)]] - quality.min()), 5),
        }
        print(f"demo regime done ({time.time() - t0:.0f} s)", flush=True)
    if args.reference_seeds:
        ref = args.reference_methods.split(",")
        studies = run_all(table, ref, args.reference_seeds, REFERENCE_EPOCHS, args.processes, scale)
        result["regimes"]["reference"] = {
            "title": f"The reference's budget: {REFERENCE_EPOCHS} epochs at R = {table.epochs} "
            f"({REFERENCE_EPOCHS / table.epochs:.0f} full trainings), {args.reference_seeds} seeds",
            "note": f"the reference trained R = 50; the table holds R = {table.epochs}, so only its budget is replayed",
            **regime(studies, table, REFERENCE_EPOCHS, eps),
        }
    result["seconds"] = round(time.time() - t0)
    md = markdown(result)
    from aerotune.files import write_json

    write_json(args.results, json.loads(json.dumps(result, default=float).replace("Infinity", "null")))
    args.figures.mkdir(parents=True, exist_ok=True)
    (args.figures / f"{args.name}.md").write_text(md + "\n")
    print(md)
    print(f"{result['seconds']} s")


if __name__ == "__main__":
    main()
