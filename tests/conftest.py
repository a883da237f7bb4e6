"""Shared fixtures: tiny synthetic datasets and caches, and the real Dubai set when it is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerotune.config import DataConfig
from aerotune.data.palette import Palette

DUBAI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dubai-aerial"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """8 synthetic 128x128 scenes in 2 tile folders (read-only: copy before changing)."""
    from aerotune.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("synth") / "data"
    write_synthetic_dataset(root, scenes=8, size=128, seed=3, tiles=2)
    return root


@pytest.fixture(scope="session")
def tiny_cache(synth_root, tmp_path_factory):
    """The synthetic set cut into 32x32 patches (128 patches)."""
    from aerotune.data.patches import prepare_patches

    out = tmp_path_factory.mktemp("cache") / "cache"
    return prepare_patches(synth_root, out, DataConfig(patch_size=32), Palette.dubai())


@pytest.fixture(scope="session")
def dubai_root() -> Path:
    if not DUBAI.is_dir():
        pytest.skip(f"the real Dubai dataset is not at {DUBAI}")
    return DUBAI
