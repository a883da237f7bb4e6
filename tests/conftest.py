"""Shared fixtures: tiny synthetic datasets and caches, the real Dubai set when it is present, one tuning run and its
report, and Debian's chromium when it is installed.

Helpers shared by several test modules live in plain modules beside this file (``helpers``, ``safety``,
``safety_runs``, ``snapshot``, ``interrupting``, ``report_runs``, ``browser_check``, ``hpo_tables``): a test module
never imports another test module."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aerotune.config import DataConfig
from aerotune.data.palette import Palette

DUBAI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dubai-aerial"


def pytest_configure(config) -> None:
    """Under pytest-xdist (``make test``) every worker trains with one thread, and so do the commands it starts:
    the workers already fill the cores, and more threads than cores make each slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def tuning_run(tiny_cache, tmp_path_factory) -> Path:
    """A real tuning run of six trials on the tiny cache (read-only: copy before changing)."""
    from report_runs import shared_tuning_report

    return shared_tuning_report(tiny_cache, tmp_path_factory)[0]


@pytest.fixture(scope="session")
def tuning_report(tiny_cache, tmp_path_factory):
    """The report of ``tuning_run`` (a ``ReportResult``)."""
    from report_runs import shared_tuning_report

    return shared_tuning_report(tiny_cache, tmp_path_factory)[1]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed by ``scripts/system-deps.sh`` (``make test`` runs it), never by a test."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Debian's chromium is not installed; run `make system-deps` as root (or: sudo apt-get install chromium)"
    )
