"""Figures of merit for ``replay.py``: epochs to reach random search's final best, anytime curves, and how
early the final ranking of the recorded configurations shows (why a scheduler can or cannot win)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

MARKS = (0.10, 0.25, 0.50, 1.00)
RUNGS = (1, 3, 9)


def anytime(events: list[list[float]], budget: int) -> np.ndarray:
    """Best value so far after each epoch 1..budget (inf before the first reported epoch)."""
    best = np.full(budget + 1, np.inf)
    for tick, value in events:
        if tick <= budget:
            best[int(tick)] = min(best[int(tick)], value)
    return np.minimum.accumulate(best)[1:]


def epochs_to_reach(curve: np.ndarray, target: float) -> float:
    hit = np.nonzero(curve <= target + 1e-12)[0]
    return float(hit[0] + 1) if hit.size else math.inf


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1]) if len(a) > 2 else math.nan


def ranking(rows: list[dict[str, Any]], table) -> dict[str, Any]:
    """How well each configuration's loss after 1, 3, 9 epochs predicts its final best (over R epochs)."""
    keys = sorted(table.curves)
    loss = np.full((len(keys), table.epochs), np.inf)
    for i, k in enumerate(keys):
        v = table.curves[k]["val_loss"]
        loss[i, : len(v)] = v
        if len(v) < table.epochs:  # diverged: worse than anything from that epoch on
            loss[i, len(v) :] = 1e9
    final = loss.min(1)
    top = final <= np.quantile(final, 0.1)
    out: dict[str, Any] = {"configs": len(keys)}
    for e in RUNGS:
        if e > table.epochs:
            continue
        at = loss[:, e - 1]
        survive = at <= np.quantile(at, 1 / 3)
        out[f"epoch_{e}"] = {
            "spearman": round(spearman(at, final), 3),
            "top10_kept_by_top_third": round(float((top & survive).sum() / max(top.sum(), 1)), 3),
            "best_kept_by_top_third": bool(survive[int(np.argmin(final))]),
        }
    # the ceiling: how well one seed's final best ranks configurations for another seed
    finals: dict[tuple, dict[int, float]] = {}
    for r in rows:
        if r["status"] == "completed":
            key = (float(r["learning_rate"]), int(r["batch_size"]), str(r["activation"]))
            finals.setdefault(key, {})[int(r["seed"])] = min(r["val_loss"])
    multi = [v for v in finals.values() if len(v) >= 3]
    if len(multi) >= 3:
        seeds = sorted(set.intersection(*(set(v) for v in multi)))
        pairs = [
            spearman(np.array([v[a] for v in multi]), np.array([v[b] for v in multi]))
            for i, a in enumerate(seeds)
            for b in seeds[i + 1 :]
        ]
        out["seed_to_seed_spearman"] = round(float(np.mean(pairs)), 3) if pairs else None
    order = np.sort(final)
    out["final_best_spread"] = {
        "best": round(float(order[0]), 4),
        "5th": round(float(order[min(4, len(order) - 1)]), 4),
        "median": round(float(np.median(order)), 4),
    }
    out["noise_sd_final_epoch"] = round(float(table.sigma[-1]), 4)
    return out


def _q(values: list[float]) -> list[float]:
    return [float(np.quantile(values, q, method="lower")) for q in (0.25, 0.5, 0.75)]


def summarize(studies: list[dict], rows: list[dict], table, budget: int, labels: dict[str, str]) -> dict[str, Any]:
    curves: dict[str, dict[int, np.ndarray]] = {}
    trials: dict[str, list[int]] = {}
    picked: dict[str, list[float]] = {}
    for s in studies:
        curves.setdefault(s["method"], {})[s["seed"]] = anytime(s["events"], budget)
        trials.setdefault(s["method"], []).append(s["trials"])
        picked.setdefault(s["method"], []).append(s["picked"] if s["picked"] is not None else math.inf)
    targets = {seed: c[-1] for seed, c in curves["rs"].items()}
    methods: dict[str, Any] = {}
    for m, by_seed in curves.items():
        reach = [epochs_to_reach(c, targets[s]) for s, c in sorted(by_seed.items())]
        stacked = np.stack([by_seed[s] for s in sorted(by_seed)])
        methods[m] = {
            "label": labels[m],
            "seeds": len(reach),
            "trials_median": float(np.median(trials[m])),
            "reach_quartiles": _q(reach),
            "reach_share_median": _q(reach)[1] / budget,
            "reached": round(float(np.mean(np.isfinite(reach))), 3),
            "picked_recorded_median": round(float(np.median(picked[m])), 4),
            "best_at": {
                f"{int(f * 100)}%": round(float(np.median(stacked[:, max(1, int(f * budget)) - 1])), 4) for f in MARKS
            },
            "median_curve": [round(float(v), 5) for v in np.median(stacked, 0)],
            "q25_curve": [round(float(v), 5) for v in np.quantile(stacked, 0.25, axis=0)],
            "q75_curve": [round(float(v), 5) for v in np.quantile(stacked, 0.75, axis=0)],
            "reach": reach,
        }
    out = {
        "budget": budget,
        "configs": len(table.curves),
        "noise_configs": table.noise_configs,
        "noise_sd": [round(float(x), 5) for x in table.sigma],
        "noise_rho": round(table.rho, 3),
        "methods": methods,
        "ranking": ranking(rows, table),
    }
    out["markdown"] = markdown(out)
    return out


def _fmt(x: float, budget: int) -> str:
    return f"> {budget}" if math.isinf(x) else f"{x:.0f}"


def markdown(s: dict[str, Any]) -> str:
    b = s["budget"]
    lines = [
        f"Budget {b} epochs per study (random search: {b // len(s['noise_sd'])} full trainings); "
        f"{s['configs']} recorded configurations; {next(iter(s['methods'].values()))['seeds']} seeds per method.",
        "",
        "| method | trials per study | epochs to reach random search's final best: median [quartiles] | "
        "median share of its budget | seeds that reach it | best val loss at 10 % | 25 % | 50 % | 100 % | "
        "recorded loss of the kept model |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in s["methods"].values():
        q = m["reach_quartiles"]
        share = "-" if math.isinf(q[1]) else f"{m['reach_share_median']:.2f}"
        at = " | ".join(f"{v:.4f}" for v in m["best_at"].values())
        lines.append(
            f"| {m['label']} | {m['trials_median']:.0f} | "
            f"{_fmt(q[1], b)} [{_fmt(q[0], b)}, {_fmt(q[2], b)}] | "
            f"{share} | {m['reached'] * 100:.0f} % | {at} | {m['picked_recorded_median']:.4f} |"
        )
    r = s["ranking"]
    lines += [
        "",
        "How early the final ranking shows (all recorded configurations, main seed):",
        "",
        "| after epoch | Spearman with final best | final top 10 % kept by a top-1/3 rung | final best kept |",
        "|---|---|---|---|",
    ]
    for e in RUNGS:
        if f"epoch_{e}" in r:
            x = r[f"epoch_{e}"]
            lines.append(
                f"| {e} | {x['spearman']:.2f} | {x['top10_kept_by_top_third'] * 100:.0f} % | "
                f"{'yes' if x['best_kept_by_top_third'] else 'no'} |"
            )
    if r.get("seed_to_seed_spearman") is not None:
        lines.append(
            f"\nSeed-to-seed Spearman of the final best ({s['noise_configs']} configurations, 3 seeds): "
            f"{r['seed_to_seed_spearman']:.2f}. Noise sd at epoch R: {r['noise_sd_final_epoch']:.4f}; "
            "final best of the best, 5th best and median configuration: "
            f"{r['final_best_spread']['best']:.4f}, "
            f"{r['final_best_spread']['5th']:.4f}, {r['final_best_spread']['median']:.4f}."
        )
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], studies: list[dict], results: Path, figures: Path) -> None:
    from aerotune.files import write_json

    figures.mkdir(parents=True, exist_ok=True)
    slim = {
        **summary,
        "methods": {m: {k: v for k, v in d.items() if not k.endswith("_curve")} for m, d in summary["methods"].items()},
    }
    slim["methods"] = json.loads(json.dumps(slim["methods"], default=str).replace("Infinity", "null"))
    for d in slim["methods"].values():
        d["reach"] = [None if x is None or (isinstance(x, float) and math.isinf(x)) else x for x in d["reach"]]
    slim.pop("markdown")
    write_json(results, slim)
    (figures / "hpo_replay.md").write_text(summary["markdown"] + "\n")
    _plot(summary, figures / "hpo_replay.png")


def _plot(s: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = s["budget"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    x = np.arange(1, b + 1)
    for d in s["methods"].values():
        med = np.array(d["median_curve"])
        (line,) = axes[0].plot(x, np.where(np.isfinite(med), med, np.nan), label=d["label"], lw=1.4)
        axes[0].fill_between(x, np.array(d["q25_curve"]), np.array(d["q75_curve"]), color=line.get_color(), alpha=0.08)
        reach = np.sort(np.array([math.inf if r is None else r for r in d["reach"]], float))
        frac = np.arange(1, len(reach) + 1) / len(reach)
        ok = np.isfinite(reach)
        axes[1].step(
            np.concatenate([[0], reach[ok] / b]),
            np.concatenate([[0], frac[ok]]),
            where="post",
            color=line.get_color(),
            label=d["label"],
        )
    rs = np.array(s["methods"]["rs"]["median_curve"])
    finite = rs[np.isfinite(rs)]
    if finite.size:
        axes[0].set_ylim(finite.min() - 0.02, finite.min() + 0.10)
    axes[0].set(
        xlabel="epochs spent (all trials)",
        ylabel="best validation loss so far (median, IQR band)",
        title="Anytime performance",
    )
    axes[1].axvline(0.2, color="grey", ls=":", lw=1)
    axes[1].set(
        xlabel="epochs / random search's budget",
        ylabel="share of seeds that reached random search's best",
        title="Epochs to reach random search's final best",
        xlim=(0, 1),
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Learning-curve replay: {s['configs']} recorded configurations, budget {b} epochs, "
        f"{next(iter(s['methods'].values()))['seeds']} seeds per method"
    )
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
