"""Smaller safety gaps, each through the real CLI: a refused ``train --restart`` keeps the earlier run's
patches, a duplicate key in a YAML file is an error, ``tune --dry-run`` prints the plan of the pruner in use,
and a demo that fails or is interrupted over an earlier demo leaves that demo as it was."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from interrupting import CLEAN, assert_one_line, interrupt, start
from safety_runs import TINY, aerotune, assert_refused, refused
from snapshot import assert_unchanged, snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

# ---------------------------------------------------------------- train --restart


@pytest.fixture
def one_tile_run(tmp_path) -> tuple[Path, Path]:
    from aerotune.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", scenes=3, size=128, seed=3, tiles=1).root
    run = tmp_path / "run"
    done = aerotune("train", "--data", data, "--out", run, "--patch-size", "32", "--epochs", "1", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    return data, run


def test_refused_restart_keeps_the_runs_patches(one_tile_run, tmp_path):
    data, run = one_tile_run
    # A split by tile needs two tiles; this data has one. Found from the patches the data will give, before the
    # new patches are cut (it was found only after cutting them).
    line = refused(
        [tmp_path],
        *("train", "--data", data, "--out", run, "--patch-size", "64", "--epochs", "1", *TINY),
        *("--set", "data.split=tile", "--restart"),
        needles=("needs at least 2 tiles", str(data)),
    )
    assert ".cache.restart" not in line


def test_restart_with_new_patches_replaces_them(one_tile_run, tmp_path):
    data, run = one_tile_run
    done = aerotune("train", "--data", data, "--out", run, "--patch-size", "64", "--epochs", "1", *TINY, "--restart")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "cache" / "manifest.json").read_text())["settings"]["patch_size"] == 64
    assert json.loads((run / "config.json").read_text())["data"]["patch_size"] == 64
    assert json.loads((run / "data.json").read_text())["cache"] == str((run / "cache").resolve())
    assert not list(run.glob(".cache*"))


# ---------------------------------------------------------------- duplicate keys in YAML


def test_yaml_config_with_a_duplicate_key_is_refused(synth_root, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n")
    assert_refused(
        aerotune("train", "--data", synth_root, "--out", tmp_path / "run", "--config", config),
        str(config),
        "'epochs' appears twice (line 2 and line 4)",
    )
    assert not (tmp_path / "run").exists()


def test_yaml_search_space_with_a_duplicate_key_is_refused(tiny_cache, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("train.learning_rate:\n  low: 0.001\n  high: 0.1\n  low: 0.01\n")
    assert_refused(
        aerotune("tune", "--data", tiny_cache.root, "--out", tmp_path / "t", "--space", space, "--dry-run"),
        str(space),
        "'low' appears twice",
    )


def test_yaml_merge_keys_still_work(tmp_path):
    from aerotune.config import read_table

    path = tmp_path / "c.yaml"
    path.write_text("base: &b {epochs: 2, batch_size: 4}\ntrain:\n  <<: *b\n  epochs: 3\n")
    assert read_table(path)["train"] == {"epochs": 3, "batch_size": 4}


# ---------------------------------------------------------------- tune --dry-run


def _dry_run(cache: Path, tmp_path: Path, *extra: str) -> str:
    # under the reference's recipe trial 0 is the only trial that is never pruned (the default recipe adds trial 1)
    done = aerotune(
        "tune", "--data", cache, "--out", tmp_path / "t", "--epochs", "9", "--trials", "5", "--dry-run",
        "--preset", "reference", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "t").exists()
    return done.stdout


def test_dry_run_prints_the_plan_of_the_pruner_in_use(tiny_cache, tmp_path):
    hyperband = _dry_run(tiny_cache.root, tmp_path, "--sampler", "tpe")
    assert hyperband.startswith("HyperBand plan") and "3 bracket(s)" in hyperband
    # what the sampler does with 5 trials: TPE's 10 start-up trials are all of them
    assert "sampler: TPE" in hyperband and "this study is random search" in hyperband
    default = _dry_run(tiny_cache.root, tmp_path)  # a new study without --sampler: random sampling
    assert "sampler: random search (--sampler random)" in default and "budget: about" in default

    sha = _dry_run(tiny_cache.root, tmp_path, "--pruner", "sha")
    assert "HyperBand" not in sha and sha.startswith("successive-halving plan (--pruner sha)")
    # SuccessiveHalvingPruner(min_resource=1, reduction_factor=3): rungs at 1 and 3 epochs (9 is the end).
    assert "judged after epoch(s) 1, 3; 4 trial(s)" in sha

    none = _dry_run(tiny_cache.root, tmp_path, "--pruner", "none")
    assert "HyperBand" not in none and none.startswith("plan without pruning (--pruner none)")
    assert "5 trial(s): expected 45 epochs (at least 45, at most 45" in none


# ---------------------------------------------------------------- demo over an earlier demo


@pytest.fixture
def earlier_demo(tmp_path) -> Path:
    """A folder aerotune recognises as an earlier demo (its marker), with a file of the user's interest."""
    out = tmp_path / "demo-output"
    (out / "report").mkdir(parents=True)
    (out / ".aerotune.json").write_text(json.dumps({"kind": "demo", "version": 1}))
    (out / "report" / "report.html").write_text("<p>last week's demo</p>")
    return out


def test_failed_demo_leaves_the_earlier_demo(earlier_demo, tmp_path):
    before = snapshot(tmp_path)
    done = aerotune("--quiet", "demo", "--quick", "--out", earlier_demo, fsize=30_000)  # the disk "fills" half-way
    assert_refused(done)
    assert_unchanged(before, tmp_path)


def test_interrupted_demo_leaves_the_earlier_demo(earlier_demo, tmp_path):
    before = snapshot(tmp_path)
    proc = start("demo", "--quick", "--out", earlier_demo)
    rc, err = interrupt(proc, (earlier_demo / "cache").is_dir, signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert_unchanged(before, tmp_path)
