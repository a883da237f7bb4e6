"""Torch's OpenMP threads on a shared CPU: training steps with 1 or 2 threads, spinning or sleeping while they wait.

Each variant runs in its own process (``OMP_WAIT_POLICY`` is read when torch loads), the variants alternating
``--rounds`` times: ``--steps`` training steps of the demo's U-Net (batch 16 of 64 px, fp32, Adam), after one
warm-up step. Prints training patches per wall second and per CPU second of the process, and the load average.

Usage: python benchmarks/omp_wait_policy.py [--rounds 2] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

VARIANTS = [(1, None), (2, None), (2, "PASSIVE")]


def child(threads: int, steps: int) -> None:
    import torch

    from aerotune.config import RunConfig
    from aerotune.model.unet import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(RunConfig().model, num_classes=6, in_channels=3)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 6, (16, 64, 64))

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{16 * steps / wall:.1f} {16 * steps / cpu:.1f} {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    print("threads  OMP_WAIT_POLICY  round  patches/s  patches/CPU-s  load", flush=True)
    for rnd in range(args.rounds):
        for threads, policy in VARIANTS:
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            cmd = [sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            speed, per_cpu, load = done.stdout.split()
            print(f"{threads:7}  {policy or '(default)':15}  {rnd:5}  {speed:>9}  {per_cpu:>13}  {load:>4}", flush=True)


if __name__ == "__main__":
    main()
