"""Training and inference throughput of the U-Net: a plain PyTorch loop against aerotune's real training path.

For each patch size (64, 128, 256; the Dubai set at scale 0.25, 0.5 and 1, so every size has about 1,300
patches) it measures, alternating the variants within one run after a warm-up:

* ``plain``: what a user writes first: fp32, NCHW, ``torch.optim.Adam()`` with its defaults, the same
  dice + focal loss, batches already normalised in memory, no metrics;
* ``aerotune``: ``train.step.train_epoch``, the loop ``aerotune train`` runs, with the run's defaults
  (``train.precision/channels_last/fused_adam = auto``): batches read from the real patch cache,
  normalised, moved, loss, metrics accumulated, optimizer step;
* optional extra variants (``--variants``): ``aerotune`` with settings changed, e.g. ``channels_last=on``.

It prints patches/s, achieved GFLOP/s (FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode`` on
one step, not hard-coded), the share of a large matrix product's GFLOP/s measured in the same run (fp32 and
bf16), the share of each step spent waiting for data, and the same for inference (eval mode,
``inference_mode``, the run's precision). Every figure is the median over ``--repeats``. On a shared machine
the patches per CPU second of this process (``time.process_time``; with ``--threads 1`` the work itself,
whatever else runs) compare the variants more steadily than wall time.

Usage: python benchmarks/train_throughput.py [--data ../shared/datasets/dubai-aerial] [--sizes 64,128,256]
       [--quick] [--repeats 3] [--batches 3] [--variants channels_last=on,fused_adam=off] [--work DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from aerotune.config import RunConfig
from aerotune.data.dataset import make_split
from aerotune.data.run_data import cache_for
from aerotune.model.losses import make_loss
from aerotune.model.unet import build_model
from aerotune.runtime import autocast, autocast_dtype, cpu_has_native_bf16, select_device
from aerotune.train.fit import make_datasets
from aerotune.train.metrics import SegmentationMetrics
from aerotune.train.step import make_optimizer, prepare_model, resolve_speed, to_device, train_epoch

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai-aerial"
SCALE = {64: 0.25, 128: 0.5, 256: 1.0}
BATCH = 16


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n x n`` matrix product in ``dtype`` (the machine's practical peak)."""
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    a @ b
    best = 0.0
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(model: torch.nn.Module, loss_fn, size: int) -> tuple[float, float]:
    """FLOPs per patch of one training step (forward + backward) and of one forward pass."""
    x, y = torch.rand(2, 3, size, size), torch.randint(0, 6, (2, size, size))
    with FlopCounterMode(display=False) as fc:
        loss_fn(model(x), y).backward()
    train = fc.get_total_flops() / 2
    model.zero_grad(set_to_none=True)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x)
    return train, fc.get_total_flops() / 2


class Plain:
    """The first loop a user writes: fp32, NCHW, default Adam, in-memory batches, no metrics."""

    def __init__(self, config: RunConfig, batches: list[tuple[torch.Tensor, torch.Tensor]], ignore_index: int):
        torch.manual_seed(0)
        self.device = select_device(config.train.device)
        self.model = build_model(config.model, num_classes=6).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.learning_rate)
        self.loss_fn = make_loss(config.train, ignore_index=ignore_index)
        self.batches = [(x.to(self.device), y.to(self.device)) for x, y in batches]

    def train(self, n: int) -> tuple[float, float]:
        self.model.train()
        t = time.perf_counter()
        for x, y in self.batches[:n]:
            loss = self.loss_fn(self.model(x), y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        sync(self.device)
        return n * BATCH / (time.perf_counter() - t), 0.0

    @torch.no_grad()
    def infer(self, n: int) -> float:
        self.model.eval()
        t = time.perf_counter()
        for x, _ in self.batches[:n]:
            self.model(x)
        sync(self.device)
        return n * BATCH / (time.perf_counter() - t)


class Aerotune:
    """``train_epoch`` with the run's own settings: real cache, dataset, loss, metrics, optimizer."""

    def __init__(self, config: RunConfig, cache, split):
        tc = config.train
        self.device = select_device(tc.device)
        self.dtype = autocast_dtype(tc.precision, self.device)
        self.speed = resolve_speed(tc, self.device)
        torch.manual_seed(0)
        self.model = build_model(config.model, num_classes=cache.palette.num_classes).to(self.device)
        self.step_model = prepare_model(self.model, self.speed)
        self.optimizer = make_optimizer(self.model, tc, self.speed)
        self.loss_fn = make_loss(tc, ignore_index=cache.palette.ignore_index)
        self.train_ds, _, _ = make_datasets(cache, config, split)
        self.palette = cache.palette
        self.order = torch.randperm(len(self.train_ds), generator=torch.Generator().manual_seed(0)).tolist()

    def train(self, n: int) -> tuple[float, float]:
        metrics = SegmentationMetrics(self.palette.names, ignore_index=self.palette.ignore_index, device=self.device)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        t = time.perf_counter()
        s = train_epoch(
            self.step_model,
            self.optimizer,
            self.loss_fn,
            self.train_ds,
            self.order,
            batch_size=BATCH,
            device=self.device,
            dtype=self.dtype,
            channels_last=self.speed.channels_last,
            metrics=metrics,
            scaler=scaler,
            max_batches=n,
        )
        metrics.compute()  # the epoch's one host sync belongs to the epoch
        seconds = time.perf_counter() - t
        return s.patches / seconds, s.data_seconds / seconds

    @torch.inference_mode()
    def infer(self, n: int) -> float:
        self.step_model.eval()
        t = time.perf_counter()
        for start in range(0, n * BATCH, BATCH):
            x, _ = self.train_ds.batch(self.order[start : start + BATCH], self.device)
            with autocast(self.device, self.dtype):
                self.step_model(to_device(x, self.device, self.speed.channels_last))
        sync(self.device)
        return n * BATCH / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--quick", action="store_true", help="sizes 64,128; 2 repeats of 2 batches")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3, help="batches per timed repeat")
    parser.add_argument(
        "--variants",
        default="channels_last=on",
        help="extra aerotune variants, comma-separated train.* settings ('' for none)",
    )
    parser.add_argument("--work", default="/tmp/aerotune-throughput")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.sizes, args.repeats, args.batches = "64,128", 2, 2
    if not Path(args.data).is_dir():
        sys.exit(f"{args.data}: Dubai dataset not found; pass --data")
    device = select_device(args.device)
    native = device.type == "cuda" or cpu_has_native_bf16()  # else bf16 is emulated: a 2048 product takes minutes
    n = 8192 if device.type == "cuda" else 2048
    peak = {
        "fp32": matmul_gflops(torch.float32, device, n),
        "bf16": matmul_gflops(torch.bfloat16, device, n if native else 256, 2),
    }
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {where}, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; matmul peak: fp32 {peak['fp32']:.0f} GFLOP/s, "
        f"bf16 {peak['bf16']:.1f} GFLOP/s ({'native' if native else 'emulated: no AVX512-BF16/AMX'})",
        flush=True,
    )
    for size in [int(s) for s in args.sizes.split(",")]:
        base = RunConfig().with_overrides(
            {
                "data.patch_size": size,
                "data.scale": SCALE.get(size, 1.0),
                "data.unknown_colors": "ignore",
                "train.batch_size": BATCH,
                "train.progress": False,
                "train.device": args.device,
            }
        )
        Path(args.work).mkdir(parents=True, exist_ok=True)
        cache = cache_for(args.data, base.data, Path(args.work) / f"cache-{size}")
        split = make_split(cache, base.data)
        runs = {"aerotune": Aerotune(base, cache, split)}
        for extra in filter(None, args.variants.split(",")):
            key, value = extra.split("=")
            runs[f"aerotune {extra}"] = Aerotune(base.with_overrides({f"train.{key}": value}), cache, split)
        ds = runs["aerotune"].train_ds
        order = runs["aerotune"].order
        batches = [ds.batch(order[i * BATCH : (i + 1) * BATCH]) for i in range(args.batches)]
        runs = {"plain": Plain(base, batches, cache.palette.ignore_index), **runs}
        train_flops, infer_flops = step_flops(
            build_model(base.model, num_classes=6), make_loss(base.train, ignore_index=255), size
        )
        a = runs["aerotune"]
        precision = str(a.dtype).replace("torch.", "") if a.dtype else "fp32"
        print(
            f"\n{size}x{size}: {len(cache)} patches; {train_flops / 1e9:.2f} GFLOP per patch per training step, "
            f"{infer_flops / 1e9:.2f} forward; aerotune: precision {precision}, channels_last "
            f"{a.speed.channels_last}, fused Adam {a.speed.fused_adam}",
            flush=True,
        )
        for run in runs.values():  # warm-up: oneDNN primitives, allocator
            run.train(1)
            run.infer(1)
        train, wait, infer, train_cpu, infer_cpu = ({k: [] for k in runs} for _ in range(5))
        patches = args.batches * BATCH
        for _ in range(args.repeats):
            for name, run in runs.items():
                c = time.process_time()
                rate, waited = run.train(args.batches)
                train_cpu[name].append(patches / (time.process_time() - c))
                train[name].append(rate)
                wait[name].append(waited)
                c = time.process_time()
                infer[name].append(run.infer(args.batches))
                infer_cpu[name].append(patches / (time.process_time() - c))
        med = statistics.median
        print(
            f"  {'variant':<32} {'train p/s':>9} {'GFLOP/s':>8} {'of peak':>8} {'data wait':>9} {'infer p/s':>9} "
            f"{'train p/CPU-s':>13} {'infer p/CPU-s':>13}"
        )
        for name in runs:
            t, i = med(train[name]), med(infer[name])
            gf = t * train_flops / 1e9
            p = peak["bf16" if name != "plain" and precision != "fp32" else "fp32"]
            print(
                f"  {name:<32} {t:>9.1f} {gf:>8.1f} {gf / p:>8.0%} {med(wait[name]):>9.0%} {i:>9.1f} "
                f"{med(train_cpu[name]):>13.1f} {med(infer_cpu[name]):>13.1f}   "
                f"(train runs: {', '.join(f'{v:.1f}' for v in train[name])})"
            )
        for name in list(runs)[1:]:
            print(
                f"  {name} / plain: training {med(train[name]) / med(train['plain']):.2f}x "
                f"(per CPU second {med(train_cpu[name]) / med(train_cpu['plain']):.2f}x), inference "
                f"{med(infer[name]) / med(infer['plain']):.2f}x (per CPU second "
                f"{med(infer_cpu[name]) / med(infer_cpu['plain']):.2f}x)"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
