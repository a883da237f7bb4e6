"""Torch dataset over a patch cache: normalisation, augmentation and train/validation splits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from aerotune.config import DataConfig
from aerotune.data.holdout import choose_test_images, choose_val_tiles, image_id
from aerotune.data.patches import PatchCache
from aerotune.errors import DatasetError


@dataclass(frozen=True)
class Split:
    """Patch indices for training and validation, how they were chosen, and the test images kept out of both."""

    train: list[int]
    val: list[int]
    method: str
    seed: int
    val_groups: list[str]
    #: Source images (``tile/stem``) held out as the test portion: none of their patches is in train or val.
    test_images: list[str] = field(default_factory=list)
    #: The patch cache's ``inputs_hash`` when the split has test images: a report checks the files are the same.
    dataset_hash: str | None = None

    def to_dict(self) -> dict:
        d = {
            "method": self.method,
            "seed": self.seed,
            "train": self.train,
            "val": self.val,
            "val_groups": self.val_groups,
        }
        if self.test_images:  # splits without a test portion stay as they were written before
            d["test_images"] = self.test_images
            d["dataset_hash"] = self.dataset_hash
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        return cls(
            list(d["train"]),
            list(d["val"]),
            d["method"],
            int(d["seed"]),
            list(d.get("val_groups", [])),
            list(d.get("test_images", [])),
            d.get("dataset_hash"),
        )


def make_split(cache: PatchCache, config: DataConfig) -> Split:
    """Split patches into training and validation sets, leaving out every patch of the test images.

    ``random`` reproduces scikit-learn's ``train_test_split(test_size=0.2, random_state=42)``, the
    reference protocol (the validation share is rounded up, taken from the front of a
    ``RandomState`` permutation). ``image`` and ``tile`` hold out whole source images or whole tile
    folders, so no validation pixel has a neighbour in training (no leakage through overlap).
    With a test portion (``data.test_fraction`` / ``data.test_tiles``, see ``holdout.py``) the same rules
    apply to the patches of the other images; without one the split is exactly as before.
    """
    ids = [image_id(s["tile"], s["stem"]) for s in cache.sources]
    test = choose_test_images([(s["tile"], i) for s, i in zip(cache.sources, ids)], config, where=str(cache.root))
    test_set = set(test)
    if test_set:
        keep = np.asarray([ids[j] not in test_set for j in range(len(ids))], dtype=bool)
        pool = np.flatnonzero(keep[cache.patch_source]) if len(cache) else np.zeros(0, np.int64)
    else:
        pool = np.arange(len(cache))
    n = len(pool)
    if n < 2:
        left = " left after the test images" if test_set else ""
        raise DatasetError(
            f"{cache.root}: only {n} patch(es){left}; need at least 2 to split into training and validation"
        )
    extra = {"test_images": test, "dataset_hash": cache.manifest.get("inputs_hash") if test else None}
    if config.split == "random":
        n_val = math.ceil(config.val_fraction * n)
        perm = pool[np.random.RandomState(config.split_seed).permutation(n)]
        return Split(
            sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist()), "random", config.split_seed, [], **extra
        )
    if config.split == "image":
        of_source = ids
        of_patch = [of_source[i] for i in cache.patch_source[pool].tolist()]
    else:
        tiles = cache.patch_tile
        of_patch = [tiles[i] for i in pool.tolist()]
    names = sorted(set(of_patch))
    if len(names) < 2:
        raise DatasetError(
            f"{cache.root}: split '{config.split}' needs at least 2 {config.split}s, found "
            f"{len(names)}; use --split random"
        )
    held = choose_val_tiles(names, config, where=str(cache.root)) if config.split == "tile" else []
    held = held or _draw_groups(names, of_patch, config, n)
    held_set = set(held)
    val = [int(pool[k]) for k, g in enumerate(of_patch) if g in held_set]
    train = [int(pool[k]) for k, g in enumerate(of_patch) if g not in held_set]
    return Split(train, val, config.split, config.split_seed, sorted(held), **extra)


def _draw_groups(names: list[str], of_patch: list[str], config: DataConfig, n: int) -> list[str]:
    """Whole images or tiles drawn with the split seed until they hold ``val_fraction`` of the ``n`` patches."""
    counts = {g: of_patch.count(g) for g in names}
    order = np.random.default_rng(config.split_seed).permutation(len(names))
    held: list[str] = []
    target = config.val_fraction * n
    for j in order:
        if sum(counts[g] for g in held) >= target or len(held) == len(names) - 1:
            break
        held.append(names[j])
    return held


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
