"""``outputs.writing``: the one way every command writes an output (check, sweep, lock, mark, build, commit,
clean up), in process on tiny folders."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aerotune.errors import OutputError
from aerotune.outputs import LOCK, MARKER, writing


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_replaced_output_is_built_beside_and_renamed_in(tmp_path):
    out = tmp_path / "report"
    with writing(out, "report", replace=True) as place:
        assert place.path.parent == tmp_path and place.path.name.startswith(".report.tmp-")
        (place.path / "report.json").write_text("{}")
        assert not out.exists()  # nothing at its name until the end
    assert json.loads((out / MARKER).read_text())["kind"] == "report"
    assert names(tmp_path) == ["report"]
    with writing(out, "report", replace=True) as place:  # again: the old one replaced whole
        (place.path / "new.json").write_text("{}")
    assert "new.json" in names(out) and "report.json" not in names(out)
    assert names(tmp_path) == ["report"]


def test_a_failed_replacement_keeps_the_old_output_and_leaves_no_temporary_folder(tmp_path):
    out = tmp_path / "cache"
    with writing(out, "cache", replace=True) as place:
        (place.path / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError), writing(out, "cache", replace=True) as place:
        (place.path / "half").write_text("x")
        raise RuntimeError("disk full")
    assert names(tmp_path) == ["cache"]
    assert "manifest.json" in names(out) and "half" not in names(out)


def test_a_folder_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "cache"
    with pytest.raises(OutputError, match="appeared while this command ran"), writing(out, "cache", replace=True):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    assert names(out) == ["notes.txt"]
    assert names(tmp_path) == ["cache"]


def test_written_in_place_a_new_folder_is_removed_on_failure_unless_kept(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), writing(out, "train-run") as place:
        assert place.path == out and (out / MARKER).is_file() and (out / LOCK).is_file()
        raise KeyboardInterrupt
    assert not out.exists()
    with pytest.raises(KeyboardInterrupt), writing(out, "train-run", keep=lambda: True):
        (out / "last.pt").write_text("epoch 1")
        raise KeyboardInterrupt
    assert (out / "last.pt").is_file()
    with pytest.raises(KeyboardInterrupt), writing(out, "train-run"):  # existed: never removed
        raise KeyboardInterrupt
    assert (out / "last.pt").is_file()


def test_a_users_empty_folder_is_emptied_again_not_removed(tmp_path):
    out = tmp_path / "masks"
    out.mkdir()
    with pytest.raises(RuntimeError), writing(out, "predictions"):
        (out / "a.png").write_text("x")
        raise RuntimeError
    assert out.is_dir() and names(out) == []


def test_staged_files_take_their_names_only_at_the_end(tmp_path):
    out = tmp_path / "masks"
    out.mkdir()
    (out / "a.png").write_text("old")
    (out / MARKER).write_text(json.dumps({"kind": "predictions", "version": 1}))
    with pytest.raises(RuntimeError), writing(out, "predictions") as place:
        sub = place.folder(out / "18" / "1234")
        (sub / ".b.tmp").write_text("new")
        place.stage(sub / ".b.tmp", sub / "b.png")
        (out / ".a.tmp").write_text("new")
        place.stage(out / ".a.tmp", out / "a.png")
        raise RuntimeError("the second scene failed")
    assert (out / "a.png").read_text() == "old"
    assert sorted(names(out)) == sorted([".aerotune.json", ".aerotune.lock", "a.png"])
    with writing(out, "predictions") as place:
        (out / ".a.tmp").write_text("new")
        place.stage(out / ".a.tmp", out / "a.png")
        assert (out / "a.png").read_text() == "old"
    assert (out / "a.png").read_text() == "new"


def test_an_earlier_output_moved_aside_comes_back_on_failure(tmp_path):
    out = tmp_path / "demo"
    with writing(out, "demo", replace="aside") as place:
        assert place.path == out
        (out / "run").write_text("first")
    with pytest.raises(KeyboardInterrupt), writing(out, "demo", replace="aside"):
        (out / "run").write_text("half")
        raise KeyboardInterrupt
    assert (out / "run").read_text() == "first" and names(tmp_path) == ["demo"]
    with writing(out, "demo", replace="aside"):
        (out / "run").write_text("second")
    assert (out / "run").read_text() == "second" and names(tmp_path) == ["demo"]


def test_a_single_file_is_written_under_a_temporary_name(tmp_path):
    out = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError), writing(out, "onnx", ours=lambda _p: True) as place:
        place.path.write_text("half")
        raise RuntimeError
    assert names(tmp_path) == []
    with writing(out, "onnx", ours=lambda _p: True) as place:
        place.path.write_text("model")
    assert names(tmp_path) == ["model.onnx"]
    (tmp_path / "mine.onnx").write_text("mine")
    with pytest.raises(OutputError, match="not an aerotune ONNX export"):
        with writing(tmp_path / "mine.onnx", "onnx", ours=lambda _p: False):
            pass


def test_leftovers_of_dead_processes_are_swept_when_an_output_is_claimed(tmp_path):
    """A command killed by SIGKILL or the out-of-memory killer never ran its clean-up: its temporary folder (and
    file) beside the output stay. The next command on that output removes them, and only them."""
    out = tmp_path / "cache"
    dead = dead_pid()
    left = tmp_path / f".cache.tmp-{dead}-123"
    (left / "images.u8").parent.mkdir()
    (left / "images.u8").write_bytes(b"\0" * 100)
    (left / LOCK).touch()
    left_file = tmp_path / f".cache.tmp-{dead}-456"
    left_file.write_text("x")
    alive = tmp_path / f".cache.tmp-{os.getpid()}-789"  # a live process (this one) still building
    alive.mkdir()
    locked = tmp_path / f".cache.tmp-{dead_pid()}-1"  # pid gone, but its lock is held (a worker it started)
    locked.mkdir()
    fd = os.open(locked / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    other = tmp_path / f".other.tmp-{dead}-1"  # another output's: not this one's to sweep
    other.mkdir()
    try:
        with writing(out, "cache", replace=True) as place:
            (place.path / "manifest.json").write_text("{}")
    finally:
        os.close(fd)
    assert not left.exists() and not left_file.exists()
    assert alive.is_dir() and locked.is_dir() and other.is_dir()
    assert (out / "manifest.json").is_file()


def test_locks_taken_are_released_at_the_end(tmp_path):
    out = tmp_path / "run"
    with writing(out, "train-run", keep=lambda: True):
        fd = os.open(out / LOCK, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(out / LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)
