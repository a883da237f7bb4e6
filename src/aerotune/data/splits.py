"""Train/validation splits of a patch cache (torch-free, so train and tune check a split before writing).

:func:`make_split` works on anything shaped like a patch cache: a cache, or the patches a dataset folder *will*
give (:func:`planned_patches`, from the plan of ``data prepare``), so a split that leaves nothing to train or
validate on is refused before the run's folder, cache or checkpoints exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aerotune.config import DataConfig
from aerotune.data.holdout import choose_test_images, choose_val_tiles, image_id
from aerotune.errors import DatasetError


class Patches(Protocol):
    """What a split needs of a patch cache."""

    root: Path
    manifest: Mapping[str, Any]

    def __len__(self) -> int: ...

    @property
    def sources(self) -> list[dict[str, object]]: ...

    @property
    def patch_source(self) -> np.ndarray: ...

    @property
    def patch_tile(self) -> list[str]: ...


@dataclass
class PlannedPatches:
    """The patches a dataset folder will be cut into (from ``plan_cache``), without cutting them."""

    root: Path
    sources: list[dict[str, object]]
    patch_source: np.ndarray
    manifest: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patch_source)

    @property
    def patch_tile(self) -> list[str]:
        return [self.sources[i]["tile"] for i in self.patch_source.tolist()]


def planned_patches(root: Path, plan: list) -> PlannedPatches:
    """``plan_cache``'s plan (sample, size, row starts, column starts) as the patches it will cut."""
    sources = [{"tile": s.tile, "stem": s.stem} for s, *_ in plan]
    counts = [len(rows) * len(cols) for _s, _size, rows, cols in plan]
    return PlannedPatches(Path(root), sources, np.repeat(np.arange(len(plan)), counts).astype(np.int64))


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


def make_split(cache: Patches, config: DataConfig) -> Split:
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
        if n_val >= n:
            left = " left after the test images" if test_set else ""
            raise DatasetError(
                f"{cache.root}: data.val_fraction = {config.val_fraction:g} puts all {n} patch(es){left} in "
                f"validation, leaving none to train on; lower it (--set data.val_fraction=0.2) so at least one "
                "patch trains"
            )
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
