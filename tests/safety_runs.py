"""Shared pieces of the safety tests: a real CLI run in a subprocess, the one-line-error check, and one tiny
trained run and one tiny tuning run made once per test session and shared (read-only) by every case."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from snapshot import assert_unchanged, snapshot

ROOT = Path(__file__).resolve().parents[1]
#: A small, fast network for every run of the safety tests (patch 32 passes a depth-3 U-Net).
TINY = ("--set", "model.base_filters=4", "--set", "model.depth=3", "--set", "train.batch_size=16")
_SHARED: dict[str, Path] = {}


def aerotune(*args, cwd: Path | None = None, fsize: int | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m aerotune ARGS`` for real; ``fsize`` caps the size of any file it writes (``ulimit -f``),
    so a write past it fails with EFBIG as on a full disk (this works for root, unlike file permissions)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "aerotune", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        preexec_fn=limit if fsize is not None else None,
    )


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, exactly one line on stderr, no traceback; return that line."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("aerotune: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def unchanged(*roots: Path) -> Iterator[None]:
    """Assert that every file and folder under ``roots`` is the same after the block as before it."""
    before = [snapshot(r) for r in roots]
    yield
    for r, b in zip(roots, before):
        assert_unchanged(b, r)


def refused(roots: list[Path], *args, needles: tuple[str, ...] = (), **kw) -> str:
    """Run the command; assert it was refused in one line and changed nothing under ``roots``."""
    with unchanged(*roots):
        line = assert_refused(aerotune(*args, **kw), *needles)
    return line


def trained_run(tmp_path_factory, synth_root: Path) -> Path:
    """A run trained by the CLI from the synthetic dataset folder (so it has RUN/cache): patch 32, 1 epoch."""
    if "train" not in _SHARED:
        run = tmp_path_factory.mktemp("shared-train") / "run"
        proc = aerotune("train", "--data", synth_root, "--out", run, "--patch-size", "32", "--epochs", "1", *TINY)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _SHARED["train"] = run
    return _SHARED["train"]


def tuned_run(tmp_path_factory, synth_root: Path) -> Path:
    """A tuning run of 2 trials x 1 epoch on the trained run's cache; its baseline trial diverges (loss overflow)."""
    if "tune" not in _SHARED:
        cache = trained_run(tmp_path_factory, synth_root) / "cache"
        out = tmp_path_factory.mktemp("shared-tune") / "tune"
        proc = aerotune(
            "tune",
            "--data",
            cache,
            "--out",
            out,
            "--trials",
            "2",
            "--epochs",
            "1",
            *TINY,
            "--baseline",
            "dice_weight=1e39",
            "--startup-trials",
            "1",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        _SHARED["tune"] = out
    return _SHARED["tune"]


def copy_tree(src: Path, dst: Path) -> Path:
    """A private, writable copy of a shared run (cases that change files work on copies)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[bool]:
    """Make ``folder`` a read-only bind mount (root ignores chmod, not a read-only file system);
    yields False when this machine does not allow mounts."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:  # permissions bind everyone but root
        folder.chmod(0o555)
        try:
            yield True
        finally:
            folder.chmod(0o755)
        return
    ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if ok:
        ok = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(folder)], capture_output=True)
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", str(folder)], capture_output=True)
