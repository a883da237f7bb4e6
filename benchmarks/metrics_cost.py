"""Cost of the epoch metrics per batch: the torchmetrics way (before) against the device confusion matrix (now).

Usage: python benchmarks/metrics_cost.py [--size 256] [--batch 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.classification import BinaryStatScores, MulticlassConfusionMatrix

from aerotune.train.metrics import SegmentationMetrics

NAMES = ["Building", "Land", "Road", "Vegetation", "Water", "Unlabeled"]


def torchmetrics_update(logits: torch.Tensor, target: torch.Tensor) -> None:
    """What train/metrics.py did per batch before: on the host, with a one-hot of every pixel."""
    confusion, pooled = MulticlassConfusionMatrix(6, ignore_index=255), BinaryStatScores(threshold=0.5)
    logits = logits.float().cpu()
    confusion.update(logits.argmax(dim=1), target)
    valid = target != 255
    probs = logits.softmax(dim=1).permute(0, 2, 3, 1)[valid]
    pooled.update(probs.reshape(-1), torch.nn.functional.one_hot(target[valid], 6).reshape(-1))
    confusion.compute(), pooled.compute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logits = torch.randn(args.batch, 6, args.size, args.size)
    target = torch.randint(0, 6, (args.batch, args.size, args.size))
    old, new = [], []
    for _ in range(5):
        t = time.process_time()
        torchmetrics_update(logits, target)
        old.append(time.process_time() - t)
        m = SegmentationMetrics(NAMES, ignore_index=255)
        t = time.process_time()
        m.update(logits, target, torch.tensor(1.0))
        m.compute()
        new.append(time.process_time() - t)
    o, n = statistics.median(old), statistics.median(new)
    print(
        f"metrics per {args.size}x{args.size} batch of {args.batch}, CPU seconds: torchmetrics {o:.3f}, "
        f"device confusion matrix {n:.3f}: {o / n:.1f}x"
    )


if __name__ == "__main__":
    main()
