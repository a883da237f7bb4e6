"""Interrupting a command for real: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and
SIGTERM to the main process (as a job scheduler sends it), at a moment proven by a file on disk.

Each case: exit code 130 (SIGINT) or 143 (SIGTERM), one line on stderr and no traceback from any process,
no half-written or temporary file, and the folder resumable (train, tune) or as it was before.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from interrupting import CLEAN, RESUME, SLOW, assert_one_line, interrupt, start
from safety_runs import TINY, aerotune, trained_run
from snapshot import assert_unchanged, snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out


def no_temporaries(*folders: Path) -> None:
    """No temporary file or folder (``*.tmp*``, ``.NAME.tmp-*``, ``.NAME.old-*``) inside or beside ``folders``."""
    for folder in folders:
        for place in (folder, folder.parent):
            if place.is_dir():
                left = [p for p in place.rglob("*") if ".tmp" in p.name or ".old-" in p.name]
                assert not left, left[:5]


# ---------------------------------------------------------------- train


def train_args(data: Path, out: Path, epochs: int = 3) -> list[object]:
    return ["train", "--data", data, "--out", out, "--patch-size", "32", "--epochs", epochs, *TINY, *SLOW]


def test_train_sigint_after_a_checkpoint_resumes(synth_root, tmp_path):
    out = tmp_path / "run"
    args = train_args(synth_root, out)
    last = out / "checkpoints" / "last.pt"
    rc, err = interrupt(start(*args), last.is_file, signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, RESUME)
    no_temporaries(out)
    done = json.loads((out / "history.json").read_text())
    assert done and len(done) < 3  # stopped inside the run, the finished epochs recorded

    rerun = aerotune(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[: len(done)] == done  # the epochs before the interrupt were kept, not trained again


def test_train_sigterm_before_any_checkpoint_removes_the_new_folder(synth_root, tmp_path):
    out = tmp_path / "run"
    rc, err = interrupt(start(*train_args(synth_root, out)), (out / "config.json").is_file, signal.SIGTERM, group=False)
    assert rc == 143
    assert_one_line(err, RESUME)
    assert not out.exists()  # it held no finished epoch: nothing worth keeping
    assert list(tmp_path.iterdir()) == []


def test_train_sigterm_keeps_a_users_empty_folder(synth_root, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    rc, err = interrupt(start(*train_args(synth_root, out)), (out / "config.json").is_file, signal.SIGTERM, group=False)
    assert rc == 143, err
    assert out.is_dir() and list(out.iterdir()) == []


# ---------------------------------------------------------------- tune


def tune_args(cache: Path, out: Path, workers: int) -> list[object]:
    return [
        "tune",
        "--data",
        cache,
        "--out",
        out,
        "--patch-size",
        "32",
        "--epochs",
        "5",  # the signal comes after a trial's first epoch: four more keep it running on a fast or busy machine
        *TINY,
        *SLOW,
        "--trials",
        "2",
        "--workers",
        workers,
        "--sampler",
        "random",
        "--pruner",
        "none",
        "--heartbeat",
        "1",
    ]


def _a_trial_checkpoint(out: Path) -> Callable[[], bool]:
    return lambda: any(out.glob("trials/*/checkpoints/last.pt"))


@pytest.mark.parametrize(
    ("workers", "sig", "group", "code"),
    [(1, signal.SIGTERM, False, 143), (2, signal.SIGINT, True, 130), (2, signal.SIGTERM, False, 143)],
    ids=["1-worker-sigterm", "2-workers-ctrl-c", "2-workers-sigterm"],
)
def test_tune_interrupted_then_resumed(tiny_cache, tmp_path, workers, sig, group, code):
    out = tmp_path / "tune"
    args = tune_args(tiny_cache.root, out, workers)
    rc, err = interrupt(start(*args), _a_trial_checkpoint(out), sig, group=group)
    assert rc == code
    assert_one_line(err, RESUME)
    no_temporaries(out)
    json.loads((out / "trials.json").read_text())  # exported on the way out, valid

    rerun = aerotune("--quiet", *args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = json.loads((out / "trials.json").read_text())
    keys = (
        "number",
        "state",
        "status",
        "reason",
        "retry_of",
        "epochs",
        "worker",
        "datetime_start",
        "datetime_complete",
    )
    table = "\n".join([*(json.dumps({k: r.get(k) for k in keys}) for r in rows), err, rerun.stderr[-3000:]])
    interrupted = [r for r in rows if r["status"] == "interrupted"]
    assert interrupted, table  # the trial that was running was failed for a retry, not lost
    assert all(any(r["retry_of"] == i["number"] for r in rows) for i in interrupted), table
    assert sum(1 for r in rows if r["state"] == "COMPLETE") == 2, table


@pytest.mark.parametrize(("sig", "group", "code"), [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130)])
def test_tune_interrupted_before_its_first_epoch_leaves_no_study(tiny_cache, tmp_path, sig, group, code):
    out = tmp_path / "tune"
    args = tune_args(tiny_cache.root, out, 1)
    started = out / "trials" / "0000" / "config.json"  # the baseline trial began training: no epoch is done
    rc, err = interrupt(start(*args), started.is_file, sig, group=group)
    assert rc == code
    assert_one_line(err, RESUME)
    assert not out.exists()  # it held no finished epoch: nothing worth keeping
    corrected = [*args[: args.index("--epochs")], "--epochs", "1", *args[args.index("--epochs") + 2 :]]
    rerun = aerotune("--quiet", *corrected)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((out / "study.json").read_text())["max_resource"] == 1


# ---------------------------------------------------------------- data prepare, predict, evaluate


@pytest.fixture(scope="module")
def big_root(tmp_path_factory) -> Path:
    """Scenes large enough that cutting, predicting and evaluating them take a while."""
    from aerotune.data.synthetic import write_synthetic_dataset

    root = tmp_path_factory.mktemp("big") / "data"
    write_synthetic_dataset(root, scenes=4, size=1024, seed=5, tiles=1)
    return root


def _temp_beside(out: Path) -> Callable[[], bool]:
    return lambda: any(out.parent.glob(f".{out.name}.tmp-*"))


def test_prepare_interrupted_leaves_the_old_cache_as_it_was(big_root, tmp_path):
    out = tmp_path / "cache"
    first = aerotune("data", "prepare", big_root, "--out", out, "--patch-size", "256")
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(tmp_path)
    proc = start("data", "prepare", big_root, "--out", out, "--patch-size", "32")
    rc, err = interrupt(proc, _temp_beside(out), signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert_unchanged(before, tmp_path)


def test_prepare_sigterm_into_a_new_folder_leaves_nothing(big_root, tmp_path):
    out = tmp_path / "cache"
    rc, err = interrupt(
        start("data", "prepare", big_root, "--out", out, "--patch-size", "32"),
        _temp_beside(out),
        signal.SIGTERM,
        group=False,
    )
    assert rc == 143
    assert_one_line(err, CLEAN)
    assert list(tmp_path.iterdir()) == []


def test_predict_interrupted_removes_its_new_folder(big_root, synth_root, tmp_path_factory, tmp_path):
    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "masks"
    images = big_root / "Tile 1" / "images"
    before = snapshot(big_root)
    rc, err = interrupt(start("predict", images, "--model", model, "--out", out), out.is_dir, signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert list(tmp_path.iterdir()) == []
    assert_unchanged(before, big_root)


def test_predict_interrupted_in_a_users_empty_folder_leaves_it_empty(big_root, synth_root, tmp_path_factory, tmp_path):
    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "masks"
    out.mkdir()
    proc = start("predict", big_root / "Tile 1" / "images", "--model", model, "--out", out)
    rc, err = interrupt(proc, (out / ".aerotune.json").is_file, signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert list(out.iterdir()) == []  # the folder stays, empty as it was (no marker, no lock file)


def test_predict_sigterm_keeps_earlier_masks(big_root, synth_root, tmp_path_factory, tmp_path):
    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "masks"
    images = sorted((big_root / "Tile 1" / "images").iterdir())
    first = aerotune("predict", images[0], "--model", model, "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(tmp_path)
    proc = start("predict", *images[1:], "--model", model, "--out", out)
    old = {images[0].stem + ".png", ".aerotune.json", ".aerotune.lock"}
    rc, err = interrupt(proc, lambda: any(p.name not in old for p in out.iterdir()), signal.SIGTERM, group=False)
    assert rc == 143
    assert_one_line(err, CLEAN)
    assert_unchanged(before, tmp_path)


def test_evaluate_interrupted_writes_nothing(big_root, synth_root, tmp_path_factory, tmp_path):
    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "eval"
    proc = start("evaluate", model, "--data", big_root, "--out", out, "--tta", "d4")
    # It writes nothing until the end; the moment to interrupt is its warning, logged just before scoring.
    warned = []
    rc, err = interrupt(
        proc, lambda: warned.append(proc.stderr.readline()) or "evaluating" in warned[-1], signal.SIGINT, group=True
    )
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert list(tmp_path.iterdir()) == []


def test_predict_interrupted_on_a_later_scene_keeps_the_same_named_masks_of_an_earlier_run(
    big_root, synth_root, tmp_path_factory, tmp_path
):
    """The rerun writes masks of the same names: interrupted on its second scene (the first one finished), every
    mask of the earlier run is still there, as it was; the new ones take their names only once all are done."""
    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "masks"
    images = sorted((big_root / "Tile 1" / "images").iterdir())[:2]
    first = aerotune("predict", *images, "--model", model, "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    before = snapshot(tmp_path)
    proc = start("predict", *images, "--model", model, "--out", out)
    second = f".{images[1].stem}.png.tmp"
    rc, err = interrupt(proc, lambda: any(p.name.startswith(second) for p in out.iterdir()), signal.SIGINT, group=True)
    assert rc == 130
    assert_one_line(err, CLEAN)
    assert_unchanged(before, tmp_path)
