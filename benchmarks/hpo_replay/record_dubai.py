"""Record learning curves on the Dubai set for ``replay.py`` (``record.py --dataset dubai``).

The synthetic table (``curves.jsonl``) answers questions about a 32-px toy task; this records the real one: the
Dubai aerial set (``../shared/datasets/dubai-aerial``) at scale 0.25 cut into 64-px patches (unknown colours
ignored), aerotune's default recipe, R = 9 epochs (``--epochs``), over a random sample of 64 configurations of
aerotune's default search space (``aerotune.reference.DEFAULT_SPACE``, drawn with Optuna's random sampler through
``SearchSpace.suggest``, floats rounded to 4 significant digits so the recorded setting is the trained one), each
trained by ``aerotune.train.fit.fit`` at seed 42; 8 configurations that learn (quality below the chance loss, see
``metrics.py``) are trained again at seeds 1 and 2 to measure the seed noise.

Every run is appended as one JSON line as soon as it ends (``{"params": {setting: value}, "seed", "status",
"epochs", "seconds", "val_loss", "val_mean_iou"}``): the command resumes where it stopped, and ``replay.py`` reads
the table generically (configurations as dicts of settings; ``curves-dubai.meta.json`` holds the task, R, the
chance loss and the space). Order: the first 16 configurations, then the noise runs of those that learn, then the
rest, then noise runs for learners found later (until 8 have 3 seeds), and last the default recipe untuned (every
setting of the space at its default, ``default_config``) at the same three seeds: trial 1 of a real study, the
baseline of the demo regime's replay and the yardstick of what tuning buys.

The learning rate follows the default recipe's warm-up + cosine over R epochs, so a curve recorded at R is valid for
replays at that R only (not for shorter R, unlike the synthetic table's constant rate).

    nice -n 15 python benchmarks/hpo_replay/record.py --dataset dubai          # resumable; ~64 x 9 epochs + noise
    python benchmarks/hpo_replay/record.py --dataset dubai --limit 1 --epochs 1 --out /tmp/d.jsonl  # smoke test
    bash benchmarks/hpo_replay/gpu_record_dubai.sh                             # on a lent GPU: shards, a deadline

Several processes may append to one ``--out`` (``--shard I/N``: a job is the shard's when crc32 of its key modulo N
is I; each line is one short append).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from record import chance_loss, meta_path, read_meta, read_rows, write_meta  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "dubai-aerial"
OUT = HERE / "curves-dubai.jsonl"
EPOCHS = 9
CONFIGS = 64
FIRST = 16  # configurations recorded before the noise runs start
NOISE_CONFIGS = 8
NOISE_SEEDS = [1, 2]
MAIN_SEED = 42
SAMPLE_SEED = 0
OVERRIDES = {"data.scale": 0.25, "data.patch_size": 64, "data.unknown_colors": "ignore", "train.progress": False}


def _round(v: Any) -> Any:
    return float(f"{v:.4g}") if isinstance(v, float) else v


def sample_configs(n: int = CONFIGS, seed: int = SAMPLE_SEED, space: dict | None = None) -> list[dict[str, Any]]:
    """``n`` configurations of the default space (settings -> values), drawn as a random-sampler study would."""
    import optuna

    from aerotune.reference import DEFAULT_SPACE
    from aerotune.tune.space_parse import parse_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parsed = parse_space(space or DEFAULT_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append({k: _round(v) for k, v in sorted(parsed.suggest(trial).items())})
        study.tell(trial, 0.0)
    return out


def default_config(space: dict | None = None) -> dict[str, Any]:
    """Every setting of the space at aerotune's default (``RunConfig()``): the default recipe untuned."""
    from aerotune.config import RunConfig
    from aerotune.reference import DEFAULT_SPACE

    config = RunConfig()
    keys = sorted(space or DEFAULT_SPACE)
    return {k: _round(getattr(getattr(config, k.split(".")[0]), k.split(".")[1])) for k in keys}


def job_key(job: dict[str, Any]) -> str:
    return json.dumps({"params": job["params"], "seed": int(job["seed"])}, sort_keys=True)


def best_loss(row: dict[str, Any], epochs: int) -> float:
    v = row["val_loss"]
    return min(v) if len(v) >= epochs and all(math.isfinite(x) for x in v) else math.inf


def todo(rows: list[dict], configs: list[dict], *, epochs: int, threshold: float) -> list[dict[str, Any]]:
    """The jobs not yet recorded, in recording order: the first FIRST configurations at the main seed, the noise
    seeds of the recorded configurations that learn (quality below ``threshold``) until NOISE_CONFIGS have them,
    then the remaining configurations."""
    done = {job_key(r) for r in rows}
    main = [{"params": c, "seed": MAIN_SEED} for c in configs]
    mains = {json.dumps(r["params"], sort_keys=True): r for r in rows if int(r["seed"]) == MAIN_SEED}
    learners = [
        c for c in configs if best_loss(mains.get(json.dumps(c, sort_keys=True), {"val_loss": []}), epochs) < threshold
    ]
    noise = [{"params": c, "seed": s} for c in learners[:NOISE_CONFIGS] for s in NOISE_SEEDS]
    default = [{"params": default_config(), "seed": s} for s in [MAIN_SEED, *NOISE_SEEDS]]
    return [j for j in main[:FIRST] + noise + main[FIRST:] + default if job_key(j) not in done]


def prepare(data: Path, work: Path, epochs: int, cache: Path | None = None):
    from aerotune.config import RunConfig
    from aerotune.data.run_data import cache_for

    config = RunConfig().with_overrides({**OVERRIDES, "train.epochs": epochs})
    return config, cache_for(cache or data, config.data, work / "cache")


def train_one(job: dict[str, Any], config, cache, work: Path, device: str, threads: int) -> dict[str, Any]:
    from aerotune.train.fit import fit

    cfg = config.with_overrides(
        {**job["params"], "train.seed": job["seed"], "train.device": device, "train.threads": threads}
    )
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    result = fit(cfg, cache, run, resume=False)
    seconds = time.perf_counter() - t0
    shutil.rmtree(run, ignore_errors=True)
    return {
        **job,
        "status": result.status,
        "epochs": len(result.history),
        "seconds": round(seconds, 2),
        "val_loss": [round(h["val_loss"], 6) for h in result.history],
        "val_mean_iou": [round(h["val_mean_iou"], 6) for h in result.history],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="dubai", choices=["dubai"])
    p.add_argument("--data", type=Path, default=DATA, help="the Dubai set (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=None, help="a patch cache cut with the same settings, used as is")
    p.add_argument("--out", type=Path, default=OUT, help="JSON-lines table, appended to (default: %(default)s)")
    p.add_argument("--work", type=Path, default=Path("/tmp/aerotune-hpo-record-dubai"))
    p.add_argument("--epochs", type=int, default=EPOCHS, help="R (default %(default)s)")
    p.add_argument("--configs", type=int, default=CONFIGS, help="configurations sampled (default %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="record at most this many runs")
    p.add_argument("--shard", default=None, help="I/N: the jobs whose crc32 modulo N is I")
    p.add_argument("--deadline", type=float, default=None, help="start no run after this many seconds")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process (0: torch's default)")
    p.add_argument("--meta-only", action="store_true", help="write the meta file (chance loss) and stop")
    args = p.parse_args(argv)
    shard, shards = (int(x) for x in args.shard.split("/")) if args.shard else (0, 1)
    if not 0 <= shard < shards:
        p.error(f"--shard {args.shard}: I/N with 0 <= I < N")
    if args.cache is None and not args.data.is_dir():
        p.error(f"--data {args.data}: no such folder (the Dubai set; or give a prepared --cache)")
    t0 = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    config, cache = prepare(args.data, args.work, args.epochs, args.cache)
    meta = read_meta(args.out)
    if meta and int(meta.get("epochs", args.epochs)) != args.epochs:
        p.error(f"{args.out} was recorded at R = {meta['epochs']}, not {args.epochs}: use another --out")
    if not meta:
        from aerotune.reference import DEFAULT_SPACE

        meta = {
            "task": {"dataset": "dubai-aerial", "overrides": OVERRIDES, "recipe": "aerotune default"},
            "epochs": args.epochs,
            "main_seed": MAIN_SEED,
            "chance_loss": chance_loss(config, cache),
            "space": DEFAULT_SPACE,
            "sample": {"configs": args.configs, "seed": SAMPLE_SEED},
        }
        write_meta(args.out, meta)
        print(f"{meta_path(args.out)}: chance loss {meta['chance_loss']}", flush=True)
    if args.meta_only:
        return
    configs = sample_configs(args.configs)
    threshold = float(meta["chance_loss"])  # the replay's threshold also subtracts the seed noise, unknown here
    durations: list[float] = []
    recorded = 0
    while args.limit is None or recorded < args.limit:
        mine = [
            j
            for j in todo(read_rows(args.out), configs, epochs=args.epochs, threshold=threshold)
            if zlib.crc32(job_key(j).encode()) % shards == shard
        ]
        if not mine:
            break
        expected = float(np.median(durations)) if durations else 0.0
        if args.deadline is not None and time.time() - t0 + expected > args.deadline:
            print(f"deadline: {len(mine)} runs of this shard left for the next session", flush=True)
            break
        job = mine[0]
        row = train_one(job, config, cache, args.work, args.device, args.threads)
        with open(args.out, "a") as fh:  # one short append per run: a kill loses at most this one
            fh.write(json.dumps(row) + "\n")
        durations.append(row["seconds"])
        recorded += 1
        best = min((v for v in row["val_loss"] if math.isfinite(v)), default=float("nan"))
        print(
            f"[{recorded}] seed {job['seed']} {json.dumps(job['params'])}: {row['status']}, {row['epochs']} epochs, "
            f"best val loss {best:.4f}, {row['seconds']:.1f} s ({len(mine) - 1} left in this shard)",
            flush=True,
        )


if __name__ == "__main__":
    main()
