"""The data a run trains on: a patch cache given directly (its own cut is the default, and settings that
contradict it are errors), or a dataset folder cut into the run's own cache, checked before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from aerotune.config import DataConfig, RunConfig
from aerotune.data.patches import (
    CACHE_KEYS,
    MANIFEST,
    PatchCache,
    check_discovery,
    is_cache,
    open_cache,
    plan_cache,
    prepare_patches,
)
from aerotune.data.sources import discover_for
from aerotune.errors import DatasetError


def cache_for(
    data: str | Path, config: DataConfig, cache_dir: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> PatchCache:
    """Open ``data`` if it is a cache; else prepare the dataset folder ``data`` into ``cache_dir``.

    A cache given directly must have been cut with the same patch settings as ``config``.
    """
    from aerotune.data.palette import load_palette

    data = Path(data)
    if is_cache(data):
        cache = open_cache(data)
        wanted = {k: getattr(config, k) for k in CACHE_KEYS}
        defaults = DataConfig()  # caches from before a setting existed were cut with its default
        have = {k: cache.manifest["settings"].get(k, getattr(defaults, k)) for k in CACHE_KEYS}
        diff = [k for k in CACHE_KEYS if have[k] != wanted[k]]
        if diff:
            k = diff[0]
            raise DatasetError(
                f"{data}: cache was cut with {k} = {have.get(k)!r} but the config asks for "
                f"{wanted[k]!r}; pass the dataset folder instead, or --set data.{k}={have.get(k)}"
            )
        return cache
    return prepare_patches(data, cache_dir, config, load_palette(config.classes_file), progress=progress)


def check_cache_current(data: str | Path, config: DataConfig, cache_dir: str | Path, *, fix: str) -> None:
    """Refuse to resume a run whose own cache ``cache_dir`` was cut from other files than ``data`` holds now.

    Resuming rebuilds the cache from the dataset folder; if the images changed, the run's saved split would
    index patches that are not the ones it trained on. Checked before anything is written.
    """
    from aerotune.data.palette import load_palette

    data, cache_dir = Path(data), Path(cache_dir)
    if is_cache(data) or not is_cache(cache_dir):
        return
    try:
        old = json.loads((cache_dir / MANIFEST).read_text()).get("inputs_hash")
    except (OSError, ValueError, AttributeError):
        old = None
    if old != plan_cache(data, config, load_palette(config.classes_file))[2]:
        raise DatasetError(
            f"{data}: the dataset's files changed since the run in {cache_dir.parent} cut its patches; {fix}"
        )


def settings_from_cache(data: str | Path, config: RunConfig, *, given: set[str]) -> RunConfig:
    """When ``data`` is a patch cache, make its cut the config's data settings.

    A cache knows how it was cut: its patch size, scale, mode and unknown-colour rule become the defaults, and
    a setting the user gave explicitly (``given``: ``data.*`` field names) that contradicts the cache, or a
    classes file whose palette differs from the cache's, is an error rather than silently ignored.
    """
    from aerotune.data.palette import load_palette

    if not is_cache(data):
        return config
    cache = open_cache(data)
    have = cache.manifest.get("settings", {})
    changes: dict[str, object] = {}
    for key in CACHE_KEYS:
        if key not in have:
            continue
        wanted = getattr(config.data, key)
        if key in given and wanted != have[key]:
            raise DatasetError(
                f"{data}: this patch cache was cut with {key} = {have[key]!r} but the settings ask "
                f"for {wanted!r}; drop that setting (the cache's own is used), or pass the dataset "
                "folder to cut new patches"
            )
        changes[f"data.{key}"] = have[key]
    if config.data.classes_file is not None:
        theirs = load_palette(config.data.classes_file)
        if theirs.to_dict() != cache.classes_palette.to_dict():
            raise DatasetError(
                f"{data}: this patch cache was cut with the classes "
                f"{', '.join(cache.palette.names)}, which differ from {config.data.classes_file} "
                f"({', '.join(theirs.names)}); drop --classes (the cache's palette is used), or "
                "pass the dataset folder to cut new patches"
            )
    return config.with_overrides(changes, where=str(data)) if changes else config


def check_data(data: str | Path, config: DataConfig) -> None:
    """Check that ``data`` is a readable patch cache, or a dataset folder whose pairs and palette are usable,
    and that its test portion, validation tiles and split leave patches to train and to validate on, without
    writing anything (commands call it before they create their output)."""
    from aerotune.data.holdout import choose_test_images, choose_val_tiles, image_id
    from aerotune.data.palette import load_palette
    from aerotune.data.splits import make_split, planned_patches

    if is_cache(data):
        cache = open_cache(data)
        images = [(s["tile"], image_id(s["tile"], s["stem"])) for s in cache.sources]
        test = set(choose_test_images(images, config, where=str(data)))
        choose_val_tiles(sorted({t for t, i in images if i not in test}), config, where=str(data))
        make_split(cache, config)  # something to train on and something to validate on
        return
    palette = load_palette(config.classes_file)
    palette.check_tolerance(config.color_tolerance)
    found = discover_for(data, config)
    check_discovery(Path(data), found, config)
    images = [(s.tile, s.name) for s in found.samples]
    test = set(choose_test_images(images, config, where=str(data)))
    choose_val_tiles(sorted({t for t, i in images if i not in test}), config, where=str(data))
    plan, _skipped, _ = plan_cache(Path(data), config, palette, digest=False)  # headers only: the patches to come
    make_split(planned_patches(Path(data), plan), config)
