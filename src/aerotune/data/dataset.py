"""Torch dataset over a patch cache: normalisation, augmentation and train/validation splits."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from aerotune.data.patches import PatchCache
from aerotune.data.splits import Split, make_split  # noqa: F401 - imported from here too


def channel_stats(cache: PatchCache, indices: list[int], chunk: int = 64) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) over the given patches, streamed in chunks."""
    total = np.zeros(cache.images.shape[-1])
    total_sq = np.zeros(cache.images.shape[-1])
    count = 0
    idx = np.sort(np.asarray(indices))
    for start in range(0, len(idx), chunk):
        x = cache.images[idx[start : start + chunk]].astype(np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        total_sq += (x**2).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    return mean.tolist(), std.tolist()


def normalize(images: torch.Tensor, method: str, stats: tuple[list[float], list[float]] | None = None) -> torch.Tensor:
    """uint8 ``(B, H, W, bands)`` -> float ``(B, bands, H, W)``.

    ``minmax`` scales each patch and channel to [0, 1] by its own min and max (the reference);
    ``meanstd`` standardises with dataset statistics.
    """
    x = images.permute(0, 3, 1, 2).float()
    if method == "minmax":
        lo = x.amin(dim=(2, 3), keepdim=True)
        hi = x.amax(dim=(2, 3), keepdim=True)
        return (x - lo) / (hi - lo).clamp_min(1.0)
    if stats is None:
        raise ValueError("meanstd normalisation needs channel statistics")
    mean = torch.tensor(stats[0], device=x.device).view(1, -1, 1, 1) * 255.0
    std = torch.tensor(stats[1], device=x.device).view(1, -1, 1, 1) * 255.0
    return (x - mean) / std


class PatchDataset(Dataset):
    """Patches of a cache, by index. Items are ``(image float (bands, P, P), mask int64 (P, P))``.

    ``__getitems__`` reads a whole batch with one sorted fancy index into the memmap, which is far
    faster than one read per patch.
    """

    def __init__(
        self,
        cache: PatchCache,
        indices: list[int],
        *,
        normalization: str = "minmax",
        stats: tuple[list[float], list[float]] | None = None,
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.cache = cache
        self.indices = np.asarray(indices, dtype=np.int64)
        self.normalization = normalization
        self.stats = stats
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch([i])
        return x[0], y[0]

    def __getitems__(self, items: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.batch(items)
        return list(zip(x, y))

    def batch(self, items: list[int], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Read, normalise and (optionally) augment the patches at positions ``items``.

        With an accelerator ``device``, the patches travel as they are stored (uint8, a quarter of the bytes of
        float images and an eighth of int64 masks, from pinned memory without blocking) and are normalised and
        augmented there: on a GPU the host's share of a step is then the read alone. The result is the same.
        """
        idx = self.indices[np.asarray(items, dtype=np.int64)]
        order = np.argsort(idx, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        images = torch.from_numpy(np.ascontiguousarray(self.cache.images[idx[order]][inverse]))
        masks = torch.from_numpy(np.ascontiguousarray(self.cache.masks[idx[order]][inverse]))
        if device is not None and device.type != "cpu":
            pinned = device.type == "cuda"  # page-locked host memory: an asynchronous copy
            images = (images.pin_memory() if pinned else images).to(device, non_blocking=pinned)
            masks = (masks.pin_memory() if pinned else masks).to(device, non_blocking=pinned)
        masks = masks.long()
        x = normalize(images, self.normalization, self.stats)
        if self.augment:
            x, masks = self._augment(x, masks)
        return x, masks

    def _augment(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The eight symmetries of the square: aerial imagery has no canonical "up".
        xs, ys = [], []
        for xi, yi in zip(x, y):
            k = int(self.rng.integers(4))
            flip = bool(self.rng.integers(2))
            xi, yi = torch.rot90(xi, k, (1, 2)), torch.rot90(yi, k, (0, 1))
            if flip:
                xi, yi = xi.flip(2), yi.flip(1)
            xs.append(xi)
            ys.append(yi)
        return torch.stack(xs), torch.stack(ys)
