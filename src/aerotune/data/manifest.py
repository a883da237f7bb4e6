"""A patch cache as read: ``manifest.json`` (the typed record :class:`CacheManifest`) and the opened arrays."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands
from aerotune.errors import DatasetError, first_line
from aerotune.reading import show
from aerotune.records import Record

MANIFEST = "manifest.json"

#: The version of the cache's layout (hashed with the inputs: a new one rebuilds every cache).
CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheManifest(Record):
    """Where every patch of a cache came from, the palette, the settings and the hash of the inputs.

    Written as it always was: ``version`` first, then the fields in this order (``mask_colors`` only when set).
    """

    VERSION = CACHE_VERSION
    FILE = MANIFEST

    root: str
    count: int
    settings: dict[str, object]
    palette: dict[str, object]  # Palette.to_dict(): the classes as the classes file gave them
    bands: dict[str, object] | None  # Bands.to_dict(); None in caches cut before bands existed (RGB)
    ignore_index: int
    sources: list[dict[str, object]]  # image, mask, tile, stem, size, scaled_size, patches
    patches: list[list[int]]  # [source index, row, column] of every patch
    pixels: dict[str, object]
    skipped: list[dict[str, str | None]] = field(default_factory=list)
    inputs_hash: str = ""
    mask_colors: dict[str, object] | None = None  # the masks' own PNG palette colours, where they gave them

    def to_json(self) -> dict[str, object]:
        """The manifest as ``manifest.json`` holds it."""
        data = super().to_json()
        if self.mask_colors is None:
            del data["mask_colors"]
        return {"version": data.pop("version"), **data}


@dataclass
class PatchCache:
    """An opened patch cache. Arrays are read-only memmaps."""

    root: Path
    manifest: dict[str, Any]  # manifest.json as read (its typed form: ``record``)
    images: np.ndarray
    masks: np.ndarray

    @property
    def record(self) -> CacheManifest:
        """The manifest as its typed record."""
        return CacheManifest.from_json(self.manifest, where=str(self.root / MANIFEST))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def palette(self) -> Palette:
        """The classes, in the display colours the masks' own PNG palette gave (``mask_colors``) where it did."""
        return self.classes_palette.with_colors(self.manifest.get("mask_colors", {}))

    @property
    def classes_palette(self) -> Palette:
        """The classes as the classes file gave them (what the cache's hash and comparisons see)."""
        return Palette.from_dict(self.manifest["palette"])

    @property
    def patch_size(self) -> int:
        return int(self.manifest["settings"]["patch_size"])

    @property
    def bands(self) -> Bands:
        """The model input the patches hold: band count, GeoTIFF bands and uint16 scaling."""
        return Bands.from_dict(self.manifest.get("bands"))

    @property
    def sources(self) -> list[dict[str, object]]:
        return self.manifest["sources"]

    @property
    def patch_source(self) -> np.ndarray:
        """Index into ``sources`` for every patch."""
        return np.asarray([p[0] for p in self.manifest["patches"]], dtype=np.int64)

    @property
    def patch_tile(self) -> list[str]:
        return [self.sources[p[0]]["tile"] for p in self.manifest["patches"]]


def open_cache(path: str | Path) -> PatchCache:
    """Open a cache written by :func:`prepare_patches`."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        n, p = manifest["count"], manifest["settings"]["patch_size"]
        shape_i, shape_m = (n, p, p, Bands.from_dict(manifest.get("bands")).count), (n, p, p)
        if n == 0:
            images, masks = np.zeros(shape_i, np.uint8), np.zeros(shape_m, np.uint8)
        else:
            images = np.memmap(path / "images.u8", dtype=np.uint8, mode="r", shape=shape_i)
            masks = np.memmap(path / "masks.u8", dtype=np.uint8, mode="r", shape=shape_m)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{show(path)}: not a readable aerotune patch cache ({first_line(exc)}); "
            "rebuild it with: aerotune data prepare ROOT --out CACHE"
        ) from None
    return PatchCache(path, manifest, images, masks)


def is_cache(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()
