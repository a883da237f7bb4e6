"""The test portion: whole images that tuning never sees, chosen before any patch is split.

A study picks its best trial (and a run its best epoch) on the validation patches, so their numbers are biased
upward by that choice. The test images are never part of the training or validation patches (``make_split``
leaves every patch of theirs out of both), and the report computes its verdict on them when a run has them.

Torch-free, so the commands can check a test portion before anything is imported or written.
"""

from __future__ import annotations

import math

import numpy as np

from aerotune.config import DataConfig, test_tile_names
from aerotune.errors import DatasetError

#: Seeds the draw of test images apart from the validation draw (both use ``data.split_seed``).
TEST_STREAM = 7


def image_id(tile: str, stem: str) -> str:
    """How splits name a source image: ``tile/stem``, or ``stem`` in the flat layout."""
    return f"{tile}/{stem}" if tile else stem


def has_test_portion(config: DataConfig) -> bool:
    return bool(config.test_fraction or config.test_tiles)


def choose_test_images(images: list[tuple[str, str]], config: DataConfig, *, where: str) -> list[str]:
    """The ids of the test images among ``images`` (``(tile, id)`` pairs), sorted; [] without a test portion.

    ``data.test_tiles`` takes every image of the named tile folders. ``data.test_fraction`` draws that share of
    the images with ``data.split_seed``, at least one, spread over the tiles in proportion to their size
    (largest remainders), so every tile gives its share. Raises ``DatasetError`` for an unknown tile, or a test
    portion that leaves too little to train and validate on.
    """
    if not has_test_portion(config):
        return []
    tiles = sorted({t for t, _ in images})
    if config.test_tiles:
        wanted = test_tile_names(config.test_tiles)
        unknown = [t for t in wanted if t not in tiles]
        if unknown:
            have = ", ".join(repr(t) for t in tiles if t) or "none (the images are not in tile folders)"
            raise DatasetError(
                f"{where}: --test-tiles names {unknown[0]!r}, which is not a tile folder of this dataset "
                f"(its tiles: {have}); name existing tiles, or use --test-fraction"
            )
        chosen = [i for t, i in images if t in wanted]
    else:
        chosen = _draw(images, tiles, config.test_fraction, config.split_seed)
    chosen_set = set(chosen)
    rest = [(t, i) for t, i in images if i not in chosen_set]
    what = f"--test-tiles {config.test_tiles}" if config.test_tiles else f"--test-fraction {config.test_fraction:g}"
    if not rest:
        raise DatasetError(
            f"{where}: {what} holds out all {len(images)} image(s), leaving none to train on; hold out fewer"
        )
    if config.split == "image" and len(rest) < 2:
        raise DatasetError(
            f"{where}: {what} leaves {len(rest)} image to train on, but the image split needs 2 "
            "(one to train, one to validate); hold out fewer, or use --split random"
        )
    if config.val_tiles and not {t for t, _ in rest} - set(test_tile_names(config.val_tiles)):
        raise DatasetError(
            f"{where}: {what} leaves only the validation tiles ({config.val_tiles}), none to train on; hold out fewer"
        )
    if config.split == "tile" and len({t for t, _ in rest}) < 2:
        raise DatasetError(
            f"{where}: {what} leaves {len({t for t, _ in rest})} tile to train on, but the tile split needs 2 "
            "(one to train, one to validate); hold out fewer, or use --split image"
        )
    return sorted(chosen)


def choose_val_tiles(tiles: list[str], config: DataConfig, *, where: str) -> list[str]:
    """The validation tiles ``data.val_tiles`` names, sorted; [] when they are to be drawn. Raises
    ``DatasetError`` for a name that is not one of ``tiles`` (naming those), or when they leave no tile to train on.
    """
    if not config.val_tiles:
        return []
    wanted = test_tile_names(config.val_tiles)
    unknown = [t for t in wanted if t not in tiles]
    if unknown:
        have = ", ".join(repr(t) for t in sorted(set(tiles)) if t) or "none (the images are not in tile folders)"
        raise DatasetError(
            f"{where}: --val-tiles names {unknown[0]!r}, which is not a tile folder of this dataset "
            f"(its tiles: {have}); name existing tiles, or drop --val-tiles to draw them"
        )
    if not set(tiles) - set(wanted):
        raise DatasetError(
            f"{where}: --val-tiles {config.val_tiles} names every tile left to train on; leave at least one to train"
        )
    return sorted(set(wanted))


def _draw(images: list[tuple[str, str]], tiles: list[str], fraction: float, seed: int) -> list[str]:
    """``fraction`` of the images (at least one), each tile in proportion to its size, drawn with ``seed``."""
    per_tile = {t: sorted(i for tt, i in images if tt == t) for t in tiles}
    target = max(1, math.floor(fraction * len(images) + 0.5))
    quota = {t: fraction * len(per_tile[t]) for t in tiles}
    counts = {t: math.floor(quota[t]) for t in tiles}
    by_remainder = sorted(tiles, key=lambda t: (-(quota[t] - counts[t]), t))
    for t in by_remainder[: max(0, target - sum(counts.values()))]:
        counts[t] += 1
    rng = np.random.default_rng([seed, TEST_STREAM])
    chosen: list[str] = []
    for t in tiles:  # one permutation per tile, in tile order: the draw depends only on the seed and the images
        order = rng.permutation(len(per_tile[t]))
        chosen += [per_tile[t][j] for j in order[: counts[t]]]
    return chosen
