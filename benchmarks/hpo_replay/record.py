"""Record full learning curves of the reference search space on a grid, for ``replay.py``.

Every configuration of the grid -- learning rate on 8 log-spaced values over [1e-4, 0.1], batch size
8/16/24/32, activation relu/tanh/swish/none: 128 configurations -- is trained for R = 27 epochs with
aerotune's own ``aerotune.train.fit.fit`` on a patch cache, and every epoch's validation loss and mean
IoU is appended as one JSON line to ``curves.jsonl``. A subset of 8 configurations is also trained again
with 2 other seeds, to measure run-to-run noise.

The task is CPU-sized (see docs/tuning.md, "Learning-curve replay"): the synthetic dataset
(``aerotune.data.synthetic``), 5 scenes of 192x192 cut into 32x32 patches (180 patches: 144 train, 36
validation, the reference's random 80/20 split), a U-Net with 8 base filters and 3 levels, fp32,
1 thread. Resumable: finished configurations are read back from the file and skipped, so the command can
be stopped and started again; configurations are trained in a fixed shuffled order so a partial table
covers the whole grid.

    nice -n 15 python benchmarks/hpo_replay/record.py            # background-friendly, resumes
    python benchmarks/hpo_replay/record.py --limit 1 --out /tmp/x.jsonl   # time one configuration
    python benchmarks/hpo_replay/record.py --shard 3/8 --out /tmp/s3.jsonl --work /tmp/w3   # one of 8 processes

With ``--shard I/N`` (N processes on N cores, each with its own ``--out`` and ``--work``) a process records every
N-th configuration, starting at the I-th (0-based), of those that neither the committed table nor its ``--out``
holds; the shards' files are then appended to ``curves.jsonl`` (``benchmarks/gpu_lease.sh`` does this on the
16 cores of a lent GPU machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CURVES = HERE / "curves.jsonl"

EPOCHS = 27
LEARNING_RATES = [float(f"{x:.4g}") for x in np.geomspace(1e-4, 0.1, 8)]
BATCH_SIZES = [8, 16, 24, 32]
ACTIVATIONS = ["relu", "tanh", "swish", "none"]
MAIN_SEED = 42  # train.seed's default
NOISE_SEEDS = [1, 2]
NOISE_CONFIGS = 8
ORDER_SEED = 0

#: The task: every setting that is not searched. Kept in the table's rows so a replay knows what it replays.
TASK = {
    "dataset": {"generator": "aerotune.data.synthetic.write_synthetic_dataset", "scenes": 5, "size": 192, "seed": 0},
    "overrides": {
        "data.patch_size": 32,
        "model.base_filters": 8,
        "model.depth": 3,
        "train.precision": "fp32",
        "train.threads": 1,
        "train.progress": False,
        "train.epochs": EPOCHS,
    },
}


def grid() -> list[dict]:
    """The 128 configurations in recording order (a fixed shuffle, so a partial table covers the grid)."""
    configs = [
        {"learning_rate": lr, "batch_size": b, "activation": a}
        for lr in LEARNING_RATES
        for b in BATCH_SIZES
        for a in ACTIVATIONS
    ]
    order = np.random.default_rng(ORDER_SEED).permutation(len(configs))
    return [configs[i] for i in order]


def jobs() -> list[dict]:
    """Every (configuration, seed) to record: 48 configurations at the main seed, the noise subset (the first
    8 configurations at 2 other seeds), then the rest of the grid, so a stopped recording still measures noise."""
    configs = grid()
    main = [{**c, "seed": MAIN_SEED} for c in configs]
    noise = [{**c, "seed": s} for c in configs[:NOISE_CONFIGS] for s in NOISE_SEEDS]
    return main[:48] + noise + main[48:]


def job_key(row: dict) -> tuple:
    return (float(row["learning_rate"]), int(row["batch_size"]), str(row["activation"]), int(row["seed"]))


def read_rows(path: Path) -> list[dict]:
    """The recorded rows; a torn last line (the recorder was killed mid-write) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def prepare_cache(work: Path):
    from aerotune.config import RunConfig
    from aerotune.data.run_data import cache_for
    from aerotune.data.synthetic import write_synthetic_dataset

    ds = TASK["dataset"]
    data = work / "data"
    if not data.is_dir():
        write_synthetic_dataset(data, scenes=ds["scenes"], size=ds["size"], seed=ds["seed"])
    config = RunConfig().with_overrides(TASK["overrides"])
    return config, cache_for(data, config.data, work / "cache")


def chance_loss(config, cache) -> float:
    """The validation loss of predicting at chance: the best constant prediction, the training patches' class
    frequencies at every pixel (a network that has learnt nothing from the image can do no better), scored as
    ``fit`` scores a run (the reference's dice + focal, mean over validation batches of 16). A configuration
    "learns" when its mean final loss is below this (``metrics.learns``)."""
    import torch

    from aerotune.data.dataset import make_split
    from aerotune.model.losses import objective_loss
    from aerotune.train.fit import evaluate, make_datasets

    split = make_split(cache, config.data)
    _, val_ds, _ = make_datasets(cache, config, split)
    palette = cache.palette
    masks = np.asarray(cache.masks[np.asarray(split.train, dtype=np.int64)])
    counts = np.bincount(masks[masks != palette.ignore_index].ravel(), minlength=palette.num_classes)
    prior = torch.tensor(np.log(np.maximum(counts / counts.sum(), 1e-6)), dtype=torch.float32)

    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return prior.view(1, -1, 1, 1).expand(x.shape[0], -1, x.shape[2], x.shape[3])

    metrics = evaluate(
        Constant(),
        val_ds,
        palette,
        batch_size=16,
        device=torch.device("cpu"),
        loss_fn=objective_loss(ignore_index=palette.ignore_index),
        channels_last=False,
    )
    return round(float(metrics.mean_loss()), 6)


def write_meta(path: Path, meta: dict) -> None:
    """The table's description beside it (``<table>.meta.json``): task, chance loss, R, main seed, space."""
    from aerotune.files import write_json

    write_json(meta_path(path), meta)


def meta_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".jsonl") + ".meta.json")


def read_meta(path: Path) -> dict:
    """The table's description, ``{}`` where none was written."""
    p = meta_path(path)
    return json.loads(p.read_text()) if p.is_file() else {}


def train_one(job: dict, config, cache, work: Path) -> dict:
    """Train one configuration for R epochs through ``fit``; return its table row."""
    from aerotune.train.fit import fit

    cfg = config.with_overrides(
        {
            "train.learning_rate": job["learning_rate"],
            "train.batch_size": job["batch_size"],
            "model.activation": job["activation"],
            "train.seed": job["seed"],
        }
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)  # --data is dubai's
    p.add_argument("--out", type=Path, default=CURVES, help="JSON-lines table, appended to (default: %(default)s)")
    p.add_argument("--work", type=Path, default=Path("/tmp/aerotune-hpo-record"), help="dataset, cache, run folder")
    p.add_argument("--limit", type=int, default=None, help="record at most this many new configurations")
    p.add_argument("--shard", default=None, help="I/N: record every N-th missing configuration, from the I-th")
    p.add_argument(
        "--dataset",
        choices=["synthetic", "dubai"],
        default="synthetic",
        help="synthetic: the committed grid (this file); dubai: curves on the Dubai set (record_dubai.py)",
    )
    p.add_argument("--meta-only", action="store_true", help="write the table's meta file (chance loss) and stop")
    args, rest = p.parse_known_args()
    if args.dataset == "dubai":
        import record_dubai

        record_dubai.main(sys.argv[1:])
        return
    if rest:
        p.error(f"unrecognised arguments: {' '.join(rest)}")
    shard, shards = (int(x) for x in args.shard.split("/")) if args.shard else (0, 1)
    if not 0 <= shard < shards:
        p.error(f"--shard {args.shard}: I/N with 0 <= I < N")
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    config, cache = prepare_cache(args.work)
    if args.meta_only or not meta_path(args.out).is_file():
        meta = {"task": TASK, "epochs": EPOCHS, "main_seed": MAIN_SEED, "chance_loss": chance_loss(config, cache)}
        write_meta(args.out, meta)
        print(f"{meta_path(args.out)}: chance loss {meta['chance_loss']}", flush=True)
        if args.meta_only:
            return
    done = {job_key(r) for r in read_rows(args.out) + (read_rows(CURVES) if args.out != CURVES else [])}
    todo = [j for j in jobs() if job_key(j) not in done][shard::shards]
    if args.limit is not None:
        todo = todo[: args.limit]
    print(f"{len(done)} recorded, {len(todo)} to record; {len(cache)} patches", flush=True)
    for i, job in enumerate(todo, 1):
        row = train_one(job, config, cache, args.work)
        with open(args.out, "a") as fh:  # one short append per configuration: a kill loses at most this one
            fh.write(json.dumps(row) + "\n")
        best = min((v for v in row["val_loss"] if math.isfinite(v)), default=float("nan"))
        print(
            f"[{i}/{len(todo)}] lr={job['learning_rate']:g} batch={job['batch_size']} act={job['activation']} "
            f"seed={job['seed']}: {row['status']}, {row['epochs']} epochs, best val loss {best:.4f}, "
            f"{row['seconds']:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
