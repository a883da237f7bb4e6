"""Cutting images into patches, and the uint8 memmap patch cache with its manifest.

The cache is two raw uint8 arrays read through ``np.memmap`` (images ``N x P x P x 3``, class ids
``N x P x P``) plus ``manifest.json``: where every patch came from, the palette, the settings and a hash
of the inputs. It is written into a temporary folder and renamed into place, and rebuilt only when the
hash changes. Only one source image is ever decoded at a time, so peak memory is bounded by the
largest image, not by the dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from aerotune import interrupts
from aerotune.config import DataConfig, keys_with_role
from aerotune.data.manifest import (  # noqa: F401 - PatchCache, open_cache, is_cache: imported from here too
    CACHE_VERSION,
    MANIFEST,
    CacheManifest,
    PatchCache,
    is_cache,
    open_cache,
)
from aerotune.data.masks import (
    PAIR_HINT,
    image_size,
    mask_palette_colors,
    read_mask,
    size_problem,
    unknown_colors_message,
)
from aerotune.data.palette import Palette, key_text
from aerotune.data.rasters import Bands, check_training_image, read_scaled, scaled_size, training_bands
from aerotune.data.sources import Discovery, Sample, discover_for
from aerotune.errors import DatasetError, PaletteError, first_line
from aerotune.outputs import check_output, writing
from aerotune.reading import file_problem, show

log = logging.getLogger(__name__)

#: The settings that change the cache's content (role "cache" in config.py); the others (split...) do not.
CACHE_KEYS = tuple(key.split(".", 1)[1] for key in keys_with_role("cache"))


def patch_starts(length: int, patch: int, mode: str) -> list[int]:
    """Start offsets of patches along one axis.

    ``reference`` crops to the largest multiple of ``patch`` from the start (the reference pipeline);
    ``full`` adds one last patch flush with the end, overlapping its neighbour, so no pixel is dropped.
    An axis shorter than one patch gives one start at 0 in ``full`` mode (the patch is padded).
    """
    if length < patch:
        return [0] if mode == "full" else []
    starts = list(range(0, length - patch + 1, patch))
    if mode == "full" and starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def _hash_file(h: Any, path: Path, root: Path) -> None:
    h.update(os.fsencode(path.relative_to(root)))
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        problem = file_problem(path, exc) or f"cannot be read ({first_line(exc)}); check the file"
        raise DatasetError(f"{show(path)}: {problem}") from None


def _settings_hash(settings: Mapping[str, object], palette: Palette) -> Any:
    """A SHA-256 started with the cache version, the settings and the palette."""
    h = hashlib.sha256()
    h.update(
        json.dumps({"v": CACHE_VERSION, "settings": settings, "palette": palette.to_dict()}, sort_keys=True).encode()
    )
    return h


def _resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids resampled to ``size`` (nearest neighbour); images are resampled as they are read."""
    if ids.shape[::-1] == size:
        return ids
    return np.asarray(Image.fromarray(ids, "L").resize(size, Image.Resampling.NEAREST), dtype=np.uint8)


def plan_cache(
    root: Path, config: DataConfig, palette: Palette, *, digest: bool = True
) -> tuple[list, list[dict[str, str]], str]:
    """Check every pair's header and size and plan its patches, decoding nothing.

    Returns the plan (sample, scaled size, row starts, column starts), the pairs left out by
    ``--skip-bad-pairs`` and the hash of the inputs (every file's bytes, the cache settings and the palette;
    not read with ``digest`` False, when only the plan is wanted).
    """
    palette.check_tolerance(config.color_tolerance)
    found = discover_for(root, config)
    skipped: list[dict[str, str]] = []
    check_discovery(root, found, config)
    for problem in found.problems:
        _skip(skipped, root, problem.sample, str(problem), problem.path)
    settings = {k: getattr(config, k) for k in CACHE_KEYS}
    for key, unset in (("image_suffix", None), ("mask_suffix", None), ("color_tolerance", 0)):
        if settings[key] == unset:  # hashed only when set: caches cut before they existed stay current
            del settings[key]
    h = _settings_hash(settings, palette)
    p, mode = config.patch_size, config.mode
    plan = []  # (sample, scaled size, row starts, col starts)
    first: Any = None  # the first usable image: every other must give as many bands
    for s in found.samples:
        try:
            scene = check_training_image(s.image, config.band_list)
            if first is not None and scene.num_bands != first.num_bands:
                raise DatasetError(
                    f"{show(s.image)}: {scene.num_bands} band(s) but {show(first.path)} has {first.num_bands}; "
                    "give every image the same bands, or pick them with --bands"
                )
            size = (scene.width, scene.height)
            problem = size_problem(size, image_size(s.mask, what="mask"), config.mask_size)
            if problem:
                raise DatasetError(f"{show(s.mask)}: {problem}")
            w, h_ = scaled_size(size, config.scale)
            rows, cols = patch_starts(h_, p, mode), patch_starts(w, p, mode)
            if not rows or not cols:
                raise DatasetError(
                    f"{show(s.image)}: image is {w}x{h_} after scale {config.scale}, smaller than one "
                    f"{p} patch; use a smaller --patch-size or --mode full, {PAIR_HINT}"
                )
            for f in (s.image, s.mask):
                if digest:
                    _hash_file(h, f, root)
        except DatasetError as exc:
            if not config.skip_bad_pairs:
                raise
            _skip(skipped, root, s, str(exc))
            continue
        plan.append((s, (w, h_), rows, cols))
        first = first or scene
    if not plan:
        what = f"; {len(skipped)} pair(s) skipped, the first: {skipped[0]['reason']}" if skipped else ""
        raise DatasetError(
            f"{show(root)}: no usable image/mask pairs found{what}; run aerotune data inspect {show(root)}"
        )
    return plan, skipped, h.hexdigest()


def prepare_patches(
    root: str | Path,
    out: str | Path,
    config: DataConfig,
    palette: Palette,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PatchCache:
    """Cut every pair under ``root`` into patches and write the cache at ``out``.

    Reuses ``out`` when it already holds a cache of the same inputs and settings. Raises
    ``DatasetError`` / ``PaletteError`` on bad input, leaving ``out`` untouched.
    """
    from aerotune.memory import check_prepare_memory

    root, out = Path(root), Path(out)
    config.validate()
    check_prepare_memory(config)
    check_output(out, "cache", inputs=[root])  # before the data is read
    plan, skipped, digest = plan_cache(root, config, palette)
    if is_cache(out) and not force:
        try:
            old = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            old = {}
        if isinstance(old, dict) and old.get("inputs_hash") == digest:
            log.info("cache %s is up to date", out)
            return open_cache(out)

    with writing(out, "cache", inputs=[root], replace=True) as place:
        manifest = _fill(place.path, plan, config, palette, root, skipped, progress)
        # the masks' colours are recorded apart from the palette: the hash and comparisons see the classes file's
        shown = mask_palette_colors(palette, [entry[0].mask for entry in plan]) or None
        replace(manifest, inputs_hash=digest, mask_colors=shown).write(place.path / MANIFEST)
    for entry in skipped:
        log.warning("skipped %s: %s", " + ".join(v for k, v in entry.items() if k != "reason" and v), entry["reason"])
    return open_cache(out)


def _skip(
    skipped: list[dict[str, str]], root: Path, sample: Sample | None, reason: str, path: Path | None = None
) -> None:
    """Record a pair (or a lone file) left out by ``--skip-bad-pairs`` (logged once the cache is written)."""

    def rel(f: Path | None) -> str | None:
        if f is None:
            return None
        try:
            return show(f.relative_to(root))
        except ValueError:
            return show(f)

    if sample is not None:
        entry = {"image": rel(sample.image), "mask": rel(sample.mask), "reason": reason}
    else:  # a file without a partner, an odd entry or a missing folder
        entry = {"file": rel(path), "reason": reason}
    skipped.append(entry)


def _fill(
    tmp: Path,
    plan: list,
    config: DataConfig,
    palette: Palette,
    root: Path,
    skipped: list[dict[str, str]],
    progress: Callable[[int, int], None] | None,
) -> CacheManifest:
    """Cut every planned pair into patches written to ``tmp``; the manifest (without the inputs' hash)."""
    bands = training_bands([s.image for s, *_ in plan], config.band_list)
    tally = _Tally(config.patch_size, palette, bands.count)
    # Plain sequential writes, not a writable memmap: dirty mapped pages would count towards the
    # process's resident memory until the end, and memory must stay bounded by one image.
    with contextlib.ExitStack() as files:  # closed however the cutting ends
        images = files.enter_context(open(tmp / "images.u8", "wb"))
        masks = files.enter_context(open(tmp / "masks.u8", "wb"))
        for step, entry in enumerate(plan):
            interrupts.check()
            pair = _read_pair(entry, config, palette, bands, root, skipped)
            if pair is not None:
                tally.cut(entry, *pair, images, masks, root, config.color_tolerance)
            if progress:
                progress(step + 1, len(plan))
        if not tally.sources:
            raise DatasetError(
                f"{show(root)}: every image/mask pair was skipped, the first because: {skipped[-1]['reason']}"
            )
        if tally.unknown and config.unknown_colors == "error":
            raise PaletteError(
                unknown_colors_message(
                    tally.unknown,
                    tally.unknown_files,
                    tally.total_px,
                    palette=palette,
                    tolerance=config.color_tolerance,
                )
            )
        for fh in (images, masks):
            fh.flush()
            os.fsync(fh.fileno())
    return tally.manifest(root, config, palette, bands, skipped)


def _read_pair(
    entry: tuple, config: DataConfig, palette: Palette, bands: Bands, root: Path, skipped: list[dict[str, str]]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]] | None:
    """A planned pair's scaled image, its mask's colours and its size; None when it is skipped."""
    s, (w, h), _rows, _cols = entry
    try:
        scene = check_training_image(s.image, bands.select, bands)
        img = read_scaled(scene, config.scale)  # as prediction reads it: same bands, scaling and resampling
        if img.shape != (h, w, bands.count):
            raise DatasetError(f"{show(s.image)}: the image changed while the patches were cut; run again")
        mask = read_mask(s.mask, palette)
        size = (scene.width, scene.height)
        problem = size_problem(size, (mask.shape[1], mask.shape[0]), config.mask_size)
        if problem:  # the file changed since its header was read
            raise DatasetError(f"{show(s.mask)}: {problem}")
    except DatasetError as exc:
        if not config.skip_bad_pairs:
            raise
        _skip(skipped, root, s, str(exc))
        return None
    return img, mask, size


class _Tally:
    """The patches cut so far, where they came from, and the pixel counts the manifest records."""

    def __init__(self, patch: int, palette: Palette, channels: int) -> None:
        self.p, self.palette = patch, palette
        self.patch_img = np.zeros((patch, patch, channels), dtype=np.uint8)
        self.patch_ids = np.zeros((patch, patch), dtype=np.uint8)
        self.sources: list[dict[str, object]] = []
        self.patches: list[list[int]] = []
        self.unknown: dict[tuple[int, int, int], int] = {}
        self.unknown_files: dict[tuple[int, int, int], list[str]] = {}
        self.labelled_total = self.labelled_kept = self.total_px = 0
        self.class_pixels = np.zeros(palette.num_classes, dtype=np.int64)

    def cut(
        self,
        entry: tuple,
        img: np.ndarray,
        mask: np.ndarray,
        size: tuple[int, int],
        images: BinaryIO,
        masks: BinaryIO,
        root: Path,
        tolerance: int,
    ) -> None:
        """Encode one pair's mask, write its patches and count its pixels."""
        s, (w, h), rows, cols = entry
        palette, i = self.palette, len(self.sources)
        ids, unk = palette.encode(mask, tolerance=tolerance)
        del mask
        self.total_px += ids.size
        for c, n in unk.items():
            self.unknown[c] = self.unknown.get(c, 0) + n
            self.unknown_files.setdefault(c, []).append(show(s.mask))
        ids = _resize_ids(ids, (w, h))
        covered = self._write(img, ids, rows, cols, i, images, masks)
        labelled = ids != palette.ignore_index
        self.labelled_total += int(labelled.sum())
        kept = ids[covered & labelled]
        self.labelled_kept += int(kept.size)
        self.class_pixels += np.bincount(kept, minlength=palette.num_classes)[: palette.num_classes]
        # Printable text (bytes that are not UTF-8 as \xNN), so reports and JSON readers never choke on a name.
        self.sources.append(
            {
                "image": show(s.image.relative_to(root)),
                "mask": show(s.mask.relative_to(root)),
                "tile": show(s.tile),
                "stem": show(s.stem),
                "size": list(size),
                "scaled_size": [w, h],
                "patches": len(rows) * len(cols),
            }
        )

    def _write(
        self,
        img: np.ndarray,
        ids: np.ndarray,
        rows: list[int],
        cols: list[int],
        i: int,
        images: BinaryIO,
        masks: BinaryIO,
    ) -> np.ndarray:
        """Write the patches of source ``i``; which of its pixels they cover."""
        p, patch_img, patch_ids = self.p, self.patch_img, self.patch_ids
        covered = np.zeros(ids.shape, dtype=bool)
        for r in rows:
            for c in cols:
                tile_img = img[r : r + p, c : c + p]
                tile_ids = ids[r : r + p, c : c + p]
                ph, pw = tile_ids.shape
                patch_img[:] = 0
                patch_ids[:] = self.palette.ignore_index  # padding, where an axis is shorter than a patch
                patch_img[:ph, :pw] = tile_img
                patch_ids[:ph, :pw] = tile_ids
                images.write(patch_img.tobytes())
                masks.write(patch_ids.tobytes())
                covered[r : r + ph, c : c + pw] = True
                self.patches.append([i, r, c])
        return covered

    def manifest(
        self, root: Path, config: DataConfig, palette: Palette, bands: Bands, skipped: list[dict[str, str]]
    ) -> CacheManifest:
        """The cache's manifest, without the inputs' hash and the masks' colours."""
        return CacheManifest(
            root=str(root.resolve()),
            count=len(self.patches),
            settings={k: getattr(config, k) for k in CACHE_KEYS},
            palette=palette.to_dict(),
            bands=bands.to_dict(),
            ignore_index=palette.ignore_index,
            sources=self.sources,
            patches=self.patches,
            pixels={
                "labelled": self.labelled_total,
                "labelled_in_patches": self.labelled_kept,
                "dropped_share": 1 - self.labelled_kept / max(self.labelled_total, 1),
                "unknown": {key_text(c): n for c, n in self.unknown.items()},
                "class_pixels": dict(zip(palette.names, self.class_pixels.tolist())),
            },
            skipped=skipped,
        )


def check_discovery(root: Path, found: Discovery, config: DataConfig) -> None:
    """Refuse a dataset whose discovery found problems (unless they are to be skipped) or no pairs at all."""
    if found.problems and not config.skip_bad_pairs:
        first = found.problems[0]
        n_more = len(found.problems) - 1
        more = f" (and {n_more} more problems; run aerotune data inspect)" if n_more else ""
        raise DatasetError(f"{first}{more}")
    if not found.samples:
        first = f"; the first problem: {found.problems[0]}" if found.problems else ""
        raise DatasetError(f"{show(root)}: no image/mask pairs found{first}; run aerotune data inspect {show(root)}")
