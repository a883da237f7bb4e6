"""Interrupting a real CLI process at a moment proven by a file on disk: started in its own process group with
Ctrl-C enabled whatever the test runner inherited, frozen, signalled and let go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from safety_runs import ROOT

RESUME = "aerotune: interrupted; rerun the same command to resume"
CLEAN = "aerotune: interrupted; no partial output was left"
#: A slow first epoch (many small batches), so a signal sent once training began lands inside it.
SLOW = ("--set", "train.batch_size=2", "--set", "train.threads=1", "--set", "train.progress=false")


def _foreground() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a job started with & in a script inherits SIGINT ignored
    # Below the test's priority: on a busy machine the test still sees the moment to interrupt at once, instead
    # of seconds later, when the work it meant to interrupt may be done (CI saw a study finish first).
    os.nice(5)


def start(*args: object) -> subprocess.Popen:
    """``python -m aerotune ARGS`` in its own process group, with Ctrl-C enabled (as a shell runs a foreground job,
    whatever the test runner inherited)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "aerotune", "--quiet", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_foreground,
    )


def interrupt(proc: subprocess.Popen, ready: Callable[[], bool], sig: int, *, group: bool) -> tuple[int, str]:
    """Wait until ``ready()``, then freeze the process group at once (SIGSTOP), send ``sig`` (to the group,
    or to the main process only) and let it go on: the signal lands where ``ready`` saw it, however fast the
    machine. Returns the exit code and stderr."""
    deadline = time.monotonic() + 300
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"the command ended (exit {proc.returncode}) before the moment to interrupt it: "
                f"{proc.stderr.read()[-3000:]}"
            )
        assert time.monotonic() < deadline, "the command never reached the moment to interrupt it"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGSTOP)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    os.killpg(proc.pid, signal.SIGCONT)
    _out, err = proc.communicate(timeout=300)
    return proc.returncode, err


def assert_one_line(err: str, line: str) -> None:
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert err.splitlines() == [line], err[-3000:]
