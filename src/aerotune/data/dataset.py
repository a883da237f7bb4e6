"""Torch dataset over a patch cache: normalisation, augmentation and train/validation splits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
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


def jitter_colours(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Photometric jitter of float images ``(B, bands, H, W)`` on the 0..255 scale, one draw per image.

    Brightness (a gain), contrast (about the image's mean) and, with 3 bands or more, saturation (about each
    pixel's grey), each by a factor in ``[1 - strength, 1 + strength]``; clipped to 0..255. Masks are untouched.
    """
    b = x.shape[0]
    f = torch.from_numpy(rng.uniform(1 - strength, 1 + strength, size=(3, b)).astype(np.float32)).to(x.device)
    x = x * f[0].view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * f[1].view(b, 1, 1, 1) + mean
    if x.shape[1] >= 3:
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * f[2].view(b, 1, 1, 1) + grey
    return x.clamp_(0, 255)


def cast_colours(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """A colour cast of float images ``(B, bands, H, W)`` on the 0..255 scale: each band of each image raised to its
    own power ``exp(u)``, ``u`` uniform in ``[-strength, strength]``, so 0 and 255 stay; masks are untouched."""
    b, bands = x.shape[:2]
    power = torch.from_numpy(np.exp(rng.uniform(-strength, strength, size=(b, bands))).astype(np.float32))
    return x.clamp(0, 255).div_(255.0).pow_(power.to(x.device).view(b, bands, 1, 1)).mul_(255.0)  # one new tensor


class PatchDataset(Dataset):
    """Patches of a cache, by index. Items are ``(image float (bands, S, S), mask int64 (S, S))``.

    ``S`` is the patch side, or ``window`` for training on random windows: then each patch is ``per_patch``
    items, each a window at a random place, drawn anew every time it is read (from ``rng``, which ``fit`` seeds
    per epoch). With ``zoom``, each window is cut ``s`` times as large (``s`` log-uniform in ``[1 / (1 + zoom),
    1 + zoom]``, never past the patch) and resized to ``S``. ``__getitems__`` reads a whole batch with one sorted
    fancy index into the memmap, which is far faster than one read per patch.
    """

    def __init__(
        self,
        cache: PatchCache,
        indices: list[int],
        *,
        normalization: str = "minmax",
        stats: tuple[list[float], list[float]] | None = None,
        augment: bool = False,
        jitter: float = 0.0,
        channel_gamma: float = 0.0,
        zoom: float = 0.0,
        window: int = 0,
        seed: int = 0,
    ) -> None:
        self.cache = cache
        self.indices = np.asarray(indices, dtype=np.int64)
        self.normalization = normalization
        self.stats = stats
        self.augment = augment
        self.jitter = jitter
        self.channel_gamma = channel_gamma
        self.zoom = zoom
        side = cache.images.shape[1]
        self.window = window if 0 < window < side else 0
        self.per_patch = max(1, round((side / self.window) ** 2)) if self.window else 1
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.indices) * self.per_patch

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
        idx = self.indices[np.asarray(items, dtype=np.int64) % len(self.indices)]
        order = np.argsort(idx, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        images = self.cache.images[idx[order]][inverse]
        masks = self.cache.masks[idx[order]][inverse]
        side, sides = images.shape[1], None
        if self.zoom:  # the side cut from each patch, then its place
            out = self.window or side
            s = np.exp(self.rng.uniform(-np.log1p(self.zoom), np.log1p(self.zoom), size=len(images)))
            sides = np.clip(np.rint(out * s).astype(np.int64), 1, side)
            corners = np.stack([self.rng.integers(0, side - sides + 1) for _ in range(2)], axis=1)
        else:
            corners = self.rng.integers(0, side - self.window + 1, size=(len(images), 2)) if self.window else None
        images = torch.from_numpy(np.ascontiguousarray(images))
        masks = torch.from_numpy(np.ascontiguousarray(masks))
        if device is not None and device.type != "cpu":
            pinned = device.type == "cuda"  # page-locked host memory: an asynchronous copy
            images = (images.pin_memory() if pinned else images).to(device, non_blocking=pinned)
            masks = (masks.pin_memory() if pinned else masks).to(device, non_blocking=pinned)
        masks = masks.long()
        if self.jitter or self.channel_gamma:
            x = images.permute(0, 3, 1, 2).float()
            if self.jitter:
                x = jitter_colours(x, self.jitter, self.rng)
            if self.channel_gamma:
                x = cast_colours(x, self.channel_gamma, self.rng)
            images = x.permute(0, 2, 3, 1)
        x = normalize(images, self.normalization, self.stats)
        if corners is not None:
            # The window is cut after normalising its whole patch: a per-patch min-max then scales a window as
            # prediction scales it (whole patch-sized windows of a scene), not by the window's own extremes.
            x, masks = self._windows(x, masks, corners, sides)
        if self.augment:
            x, masks = self._augment(x, masks)
        return x, masks

    def _windows(
        self, x: torch.Tensor, masks: torch.Tensor, corners: np.ndarray, sides: np.ndarray | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A square of each patch at its corner (the same place in image and mask), ``window`` on a side, or
        ``sides`` resized to the window's side (images bilinear, masks nearest)."""
        w = self.window or x.shape[-1]
        if sides is None:
            xs = torch.stack([im[:, r : r + w, c : c + w] for im, (r, c) in zip(x, corners)])
            ys = torch.stack([m[r : r + w, c : c + w] for m, (r, c) in zip(masks, corners)])
            return xs, ys
        xs, ys = [], []
        for im, m, (r, c), s in zip(x, masks, corners, sides):
            xi, yi = im[None, :, r : r + s, c : c + s], m[None, None, r : r + s, c : c + s]
            if s != w:
                xi = F.interpolate(xi, size=(w, w), mode="bilinear", align_corners=False, antialias=bool(s > w))
                yi = F.interpolate(yi.float(), size=(w, w), mode="nearest-exact").long()
            xs.append(xi[0])
            ys.append(yi[0, 0])
        return torch.stack(xs), torch.stack(ys)

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
