"""What budget makes early stopping pay: replay the same methods at several budgets (``replay.py`` per budget).

For each budget (random search's full trainings, times R epochs) every method is replayed on the recorded
curves, measured against the same seed's random search as in ``replay.py``; the table gives, per budget, the
median share of random search's epochs each method needs to reach random search's final best, and where that
share first drops to 1/5.

    python benchmarks/hpo_replay/budgets.py                           # 16, 48, 96, 144 trainings; 30 seeds
    python benchmarks/hpo_replay/budgets.py --budgets 16,48 --seeds 10 # quick look

Writes ``benchmarks/hpo_replay/results-budgets.json`` and ``docs/figures/hpo_replay/budgets.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from analysis import summarize  # noqa: E402
from record import CURVES, read_rows  # noqa: E402
from replay import METHODS, ROOT, load_table, run_all, scaled  # noqa: E402

TARGET = 0.2


def budget_row(summary: dict[str, Any]) -> dict[str, Any]:
    """Per method: median share of random search's epochs to reach its final best (None when the median seed
    does not reach it), the quartiles' shares and the share of seeds that reach it."""
    b = summary["budget"]
    out = {}
    for m, d in summary["methods"].items():
        q = [None if math.isinf(x) else round(x / b, 3) for x in d["reach_quartiles"]]
        out[m] = {
            "share_median": q[1],
            "share_quartiles": [q[0], q[2]],
            "reached": d["reached"],
            "trials_median": d["trials_median"],
        }
    return out


def markdown(rows: dict[int, dict[str, Any]], labels: dict[str, str], seeds: int, configs: int, epochs: int) -> str:
    methods = list(next(iter(rows.values())))
    lines = [
        f"Median share of random search's epochs needed to reach its final best [quartiles], {seeds} seeds per "
        f'method and budget, {configs} recorded configurations ("-": the median seed does not reach it).',
        "",
        "| full trainings (epochs) | " + " | ".join(labels[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    for trainings, row in rows.items():
        cells = [
            f"{f(row[m]['share_median'])} [{f(row[m]['share_quartiles'][0])}, {f(row[m]['share_quartiles'][1])}]"
            for m in methods
        ]
        lines.append(f"| {trainings} ({trainings * epochs}) | " + " | ".join(cells) + " |")
    first = {
        m: next(
            (t for t, r in rows.items() if r[m]["share_median"] is not None and r[m]["share_median"] <= TARGET), None
        )
        for m in methods
    }
    lines += [
        "",
        "First budget with a median share of at most 1/5: "
        + "; ".join(f"{labels[m]}: {'none measured' if t is None else f'{t} trainings'}" for m, t in first.items()),
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", default="16,48,96,144", help="random search's full trainings, comma-separated")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--methods", default="rs,hb,hb_tpe,sha_tpe_r3,sha_tpe_r9")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--noise-scale", type=float, default=1.0, help="as replay.py's (0: the recorded curves as they are)")
    p.add_argument("--curves", type=Path, default=CURVES)
    p.add_argument("--results", type=Path, default=HERE / "results-budgets.json")
    p.add_argument("--table", type=Path, default=ROOT / "docs" / "figures" / "hpo_replay" / "budgets.md")
    args = p.parse_args()
    from aerotune.files import write_json, write_text

    rows = read_rows(args.curves)
    table = load_table(rows)
    methods = args.methods.split(",")
    if "rs" not in methods:
        methods.insert(0, "rs")
    labels = {m: METHODS[m][0] for m in methods}
    out: dict[int, dict[str, Any]] = {}
    for trainings in (int(x) for x in args.budgets.split(",")):
        t0 = time.time()
        budget = trainings * table.epochs
        studies = run_all(rows, methods, args.seeds, budget, args.processes, args.noise_scale)
        out[trainings] = budget_row(summarize(studies, rows, scaled(table, args.noise_scale), budget, labels))
        print(f"budget {trainings} trainings ({budget} epochs): {time.time() - t0:.0f} s", flush=True)
        for m, r in out[trainings].items():
            print(f"  {m}: median share {r['share_median']}, reached {r['reached']}", flush=True)
        # written after every budget: a stopped run keeps the budgets it finished
        text = markdown(out, labels, args.seeds, len(table.curves), table.epochs)
        if args.noise_scale != 1:
            text += f"\n\nReplayed noise scaled by {args.noise_scale:g}."
        write_json(
            args.results,
            {
                "seeds": args.seeds,
                "configs": len(table.curves),
                "noise_scale": args.noise_scale,
                "labels": labels,
                "budgets": {str(k): v for k, v in out.items()},
            },
        )
        args.table.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.table, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
