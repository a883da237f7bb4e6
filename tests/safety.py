"""Running the real CLI on a bad input and proving it was refused cleanly: exit 2, one line, nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from snapshot import assert_unchanged, snapshot

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    argv = [sys.executable, "-m", "aerotune", *(a if isinstance(a, bytes) else os.fspath(a) for a in args)]
    return subprocess.run(argv, capture_output=True, cwd=cwd, env=full_env, timeout=600)


def assert_refused(
    folder: Path,
    *args: object,
    needles: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> str:
    """Run ``aerotune ARGS``; assert exit 2, exactly one stderr line, no traceback, ``folder`` unchanged.

    Returns the error line (decoded with backslash escapes, as a terminal would show undecodable bytes).
    """
    before = snapshot(folder)
    proc = run_cli(*args, env=env)
    err = proc.stderr.decode("utf-8", "backslashreplace")
    assert proc.returncode == 2, (proc.returncode, err, proc.stdout[-2000:])
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aerotune: error: "), err
    for n in needles:
        assert n in lines[0], lines[0]
    assert_unchanged(before, folder)
    return lines[0]


def prepare_refused(folder: Path, root: object, *extra: object, needles: tuple[str, ...] = ()) -> str:
    """``data prepare ROOT --out FOLDER/cache --patch-size 16 EXTRA`` is refused cleanly (see
    :func:`assert_refused`); the most common bad-input check of the safety tests."""
    return assert_refused(
        folder, "data", "prepare", root, "--out", folder / "cache", "--patch-size", "16", *extra, needles=needles
    )
