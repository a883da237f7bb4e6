"""Where the time of a real training epoch goes: torch.profiler over ``train_epoch`` on the Dubai set.

Runs the loop ``aerotune train`` runs (real patch cache, dataset, loss, metrics, optimizer; the run's default
settings, or ``--set train.key=value``) for ``--batches`` batches after one warm-up batch, and prints the time
by category (convolutions, transposed convolutions, dropout, concatenation and layout changes, pooling,
activations, the loss, the metrics, the optimizer, data loading), self CPU time of every op, so the
categories add up to the profiled time. ``--table`` also prints torch.profiler's own top-25 table.

Usage: python benchmarks/profile_epoch.py [--data ../shared/datasets/dubai-aerial] [--size 256]
       [--batches 6] [--set train.channels_last=on] [--work DIR] [--table]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from aerotune.config import RunConfig
from aerotune.data.dataset import make_split
from aerotune.data.run_data import cache_for
from aerotune.model.losses import make_loss
from aerotune.model.unet import build_model
from aerotune.runtime import autocast_dtype, select_device
from aerotune.train.fit import make_datasets
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.step import make_optimizer, prepare_model, resolve_speed, train_epoch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai-aerial"
SCALE = {64: 0.25, 128: 0.5, 256: 1.0}

# An op counts towards the first of these that names it or one of its callers (cpu_parent chain) ...
SCOPES = [
    ("data loading", "aerotune.data"),
    ("loss", "aerotune.loss"),
    ("metrics", "aerotune.metrics"),
    ("optimizer", "Optimizer.step"),
    ("optimizer", "Optimizer.zero_grad"),
    ("dropout", "aerotune.dropout"),
    ("dropout", "_MaskedScale"),
    ("dropout", "dropout"),
    ("dropout", "bernoulli"),
]
# ... else towards the first category whose key occurs in its own name.
OPS = [
    ("convolutions", ("conv",)),
    (
        "concatenation and layout changes",
        ("cat", "copy_", "contiguous", "clone", "reorder", "permute", "to_dense", "to_mkldnn"),
    ),
    ("pooling", ("max_pool", "pool2d")),
    ("activations", ("relu", "threshold", "silu", "tanh", "clamp_min")),
    ("autocast casts", ("_to_copy",)),
    ("loss", ("softmax", "gather", "scatter", "where", "pow", "exp", "mul", "div", "neg")),  # its backward
    ("gradient bookkeeping (fill, add, sum)", ("add", "sum", "fill_", "zero_")),
]


def category(e) -> str:
    node = e
    while node is not None:
        for cat, key in SCOPES:
            if key in node.name:
                return cat
        node = node.cpu_parent
    low = e.name.lower()
    for cat, keys in OPS:
        if any(k in low for k in keys):
            if cat == "convolutions" and any(len(s) == 4 and list(s[-2:]) == [2, 2] for s in e.input_shapes):
                return "transposed convolutions"  # the U-Net's only 2x2 kernels are its up-convolutions
            return cat
    return "other (" + e.name + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--set", action="append", default=[], help="train.key=value (repeatable)")
    parser.add_argument("--work", default="/tmp/aerotune-throughput")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data}: Dubai dataset not found; pass --data")
    overrides = {
        "data.patch_size": args.size,
        "data.scale": SCALE.get(args.size, 1.0),
        "data.unknown_colors": "ignore",
        "train.progress": False,
        **dict(s.split("=", 1) for s in args.set),
    }
    config = RunConfig().with_overrides(overrides)
    tc = config.train
    cache = cache_for(args.data, config.data, Path(args.work) / f"cache-{args.size}")
    device = select_device(tc.device)
    dtype = autocast_dtype(tc.precision, device)
    speed = resolve_speed(tc, device)
    torch.manual_seed(0)
    model = build_model(config.model, num_classes=cache.palette.num_classes)
    step_model = prepare_model(model, speed)
    optimizer = make_optimizer(model, tc, speed)
    base_loss = make_loss(tc, ignore_index=cache.palette.ignore_index)
    train_ds, _, _ = make_datasets(cache, config, make_split(cache, config.data))
    order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(0)).tolist()

    def loss_fn(logits, y):
        with record_function("aerotune.loss"):
            return base_loss(logits, y)

    class Metrics(SegmentationMetrics):
        def update(self, *a, **k):
            with record_function("aerotune.metrics"):
                super().update(*a, **k)

    class Data:
        def batch(self, items):
            with record_function("aerotune.data"):
                return train_ds.batch(items)

    def run(n: int, start: int) -> float:
        metrics = Metrics(cache.palette.names, ignore_index=cache.palette.ignore_index, device=device)
        s = train_epoch(
            step_model,
            optimizer,
            loss_fn,
            Data(),
            order[start:],
            batch_size=tc.batch_size,
            device=device,
            dtype=dtype,
            channels_last=speed.channels_last,
            metrics=metrics,
            max_batches=n,
        )
        return s.seconds

    for m in model.modules():  # scope the dropout layers' forward passes (their backward is _MaskedScaleBackward)
        if isinstance(m, torch.nn.Dropout):
            scope = record_function("aerotune.dropout")
            m.register_forward_pre_hook(lambda *_, scope=scope: [scope.__enter__(), None][1])
            m.register_forward_hook(lambda *_, scope=scope: [scope.__exit__(None, None, None), None][1])
    run(1, 0)  # warm-up
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        seconds = run(args.batches, tc.batch_size)
    per_cat: dict[str, float] = defaultdict(float)
    for e in prof.events():
        per_cat[category(e)] += e.self_cpu_time_total / 1e6
    other = sum(v for k, v in per_cat.items() if k.startswith("other"))
    top_other = sorted(((v, k) for k, v in per_cat.items() if k.startswith("other")), reverse=True)[:4]
    per_cat = {k: v for k, v in per_cat.items() if not k.startswith("other")}
    per_cat["other: " + ", ".join(k[7:-1] for _, k in top_other)] = other
    total = sum(per_cat.values())
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    print(
        f"{args.size}x{args.size}, batch {tc.batch_size}, {args.batches} batches, precision {precision}, "
        f"channels_last {speed.channels_last}, fused Adam {speed.fused_adam}: {seconds:.1f} s wall "
        f"({args.batches * tc.batch_size / seconds:.1f} patches/s under the profiler), {total:.1f} s of op time"
    )
    for cat, secs in sorted(per_cat.items(), key=lambda kv: -kv[1]):
        print(f"  {cat:<34} {secs:7.2f} s  {secs / total:6.1%}")
    if args.table:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
