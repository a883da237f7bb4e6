"""Two commands on one output folder at once: the second is refused in one line before it writes anything
(an ``fcntl`` lock on ``.aerotune.lock`` held for the first command's life), and a lock left by a killed
command never blocks (the kernel drops it with the process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interrupting import SLOW, start
from safety_runs import TINY, aerotune, assert_refused, trained_run
from snapshot import assert_unchanged, snapshot

pytestmark = pytest.mark.slow  # the unit tier (make test-fast) leaves it out

BUSY = "another aerotune command is writing this folder now"


def frozen_at(proc, ready: Callable[[], bool]) -> None:
    """Wait until ``ready()``, then stop the whole command (SIGSTOP): it holds its lock and changes nothing."""
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, f"the command ended early: {proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGSTOP)


def resume(proc) -> tuple[int, str]:
    os.killpg(proc.pid, signal.SIGCONT)
    _out, err = proc.communicate(timeout=300)
    return proc.returncode, err


def train_args(data: Path, out: Path, epochs: int = 2) -> list[object]:
    return ["train", "--data", data, "--out", out, "--patch-size", "32", "--epochs", epochs, *TINY, *SLOW]


def test_second_train_on_a_folder_in_use_is_refused(synth_root, tmp_path):
    out = tmp_path / "run"
    first = start(*train_args(synth_root, out))
    frozen_at(first, (out / "config.json").is_file)
    try:
        before = snapshot(tmp_path)
        line = assert_refused(aerotune(*train_args(synth_root, out)), BUSY, str(out))
        assert "--out" in line
        # Another kind of command on it is refused too (here by the kind, before the lock is even looked at).
        assert_refused(aerotune("predict", synth_root / "Tile 1" / "images", "--model", out, "--out", out))
        assert_unchanged(before, tmp_path)
    finally:
        rc, err = resume(first)
    assert rc == 0, err[-3000:]  # the first command never noticed
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2]


def test_second_tune_is_refused_but_its_own_workers_share_the_folder(tiny_cache, tmp_path):
    out = tmp_path / "tune"
    args = ["tune", "--data", tiny_cache.root, "--out", out, "--patch-size", "32", "--epochs", "2", *TINY,
            "--set", "train.threads=1", "--set", "train.progress=false", "--trials", "2", "--workers", "2",
            "--sampler", "random", "--pruner", "none"]  # fmt: skip
    first = start(*args)
    frozen_at(first, lambda: any(out.glob("trials/*/config.json")))  # its worker processes are running
    try:
        before = snapshot(tmp_path)
        assert_refused(aerotune(*args), BUSY)
        assert_unchanged(before, tmp_path)
    finally:
        rc, err = resume(first)
    assert rc == 0, err[-3000:]
    rows = json.loads((out / "trials.json").read_text())
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    assert len({r["worker"] for r in rows}) == 2  # both workers ran a trial in the locked folder


def test_predict_into_a_folder_locked_by_another_process_is_refused(synth_root, tmp_path_factory, tmp_path):
    import fcntl

    model = trained_run(tmp_path_factory, synth_root)
    out = tmp_path / "masks"
    images = synth_root / "Tile 1" / "images"
    first = aerotune("predict", images, "--model", model, "--out", out)
    assert first.returncode == 0, first.stderr[-3000:]
    fd = os.open(out / ".aerotune.lock", os.O_RDWR)  # this test process stands for another command
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = snapshot(tmp_path)
        assert_refused(aerotune("predict", images, "--model", model, "--out", out), BUSY)
        assert_unchanged(before, tmp_path)
    finally:
        os.close(fd)  # closing drops the lock
    again = aerotune("predict", images, "--model", model, "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]


def test_a_killed_commands_lock_does_not_block(synth_root, tmp_path):
    out = tmp_path / "run"
    args = train_args(synth_root, out, epochs=3)
    first = start(*args)
    frozen_at(first, (out / "checkpoints" / "last.pt").is_file)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert (out / ".aerotune.lock").is_file()  # the file stays; its lock died with the process
    rerun = aerotune(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]


def test_prepare_into_a_cache_being_replaced_is_refused(tmp_path):
    from aerotune.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", scenes=4, size=512, seed=1, tiles=1).root
    out = tmp_path / "cache"
    assert aerotune("data", "prepare", data, "--out", out, "--patch-size", "128").returncode == 0
    first = start("data", "prepare", data, "--out", out, "--patch-size", "32")
    frozen_at(first, lambda: any(tmp_path.glob(".cache.tmp-*")))
    try:
        before = snapshot(tmp_path)
        assert_refused(aerotune("data", "prepare", data, "--out", out, "--patch-size", "64"), BUSY)
        assert_unchanged(before, tmp_path)
    finally:
        rc, err = resume(first)
    assert rc == 0, err[-3000:]
    assert json.loads((out / "manifest.json").read_text())["settings"]["patch_size"] == 32


def _holding(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock, as a command writing that folder does."""
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(300)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder / ".aerotune.lock")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.parametrize("meanwhile", ["another command's cache, still locked", "a user's folder"])
def test_a_new_cache_that_appears_meanwhile_is_not_replaced(tmp_path, meanwhile):
    """``data prepare`` into a new folder, and while it cuts, the same folder appears: made by another command
    still writing it, or by the user. The first command ends refused in one line; that folder stays as it is."""
    from aerotune.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "data", scenes=4, size=512, seed=1, tiles=1).root
    out = tmp_path / "cache"
    first = start("data", "prepare", data, "--out", out, "--patch-size", "32")
    frozen_at(first, lambda: any(tmp_path.glob(".cache.tmp-*")))
    holder = None
    try:
        if meanwhile.startswith("another"):
            assert aerotune("data", "prepare", data, "--out", out, "--patch-size", "128").returncode == 0
            holder, needle = _holding(out), BUSY
        else:
            out.mkdir()
            (out / "notes.txt").write_text("mine")
            needle = "appeared while this command ran and is not an aerotune cache"
        before = snapshot(out)
        rc, err = resume(first)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
    assert_refused(subprocess.CompletedProcess([], rc, "", err), str(out), needle)
    assert_unchanged(before, out)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
