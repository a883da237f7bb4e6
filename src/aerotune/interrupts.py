"""Ctrl-C and SIGTERM: one clean path for both, in the CLI, in tuning workers and in library calls that write.

The handlers only record the signal; :func:`check`, called where the loops already pause (training batches, rows
of a scene, images of a cache, the tuning worker's and parent's waits), raises it there, once: Ctrl-C as
``KeyboardInterrupt``, SIGTERM as its subclass :class:`Terminated`. So nothing is ever broken off between two
renames or inside an Optuna call, and a later signal never breaks off the clean-up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {"signal": 0, "blocks": 0}  # the signal to raise (-1: raised, the clean-up runs); open deferred() blocks


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled as Ctrl-C is (the CLI exits with 143 instead of 130)."""


def _record(signum: int, _frame: object) -> None:
    if not _state["signal"]:
        _state["signal"] = signum


def check() -> None:
    """Raise the signal that arrived, unless one was raised before."""
    signum = _state["signal"]
    if signum > 0:
        _state["signal"] = -1
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def sleep(seconds: float) -> None:
    """``time.sleep`` that a signal ends within a fifth of a second."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        check()
        time.sleep(min(left, 0.2))
    check()


def install(*, sigint: bool | None = None) -> dict:
    """From now on only record SIGTERM, and SIGINT unless it is ignored (a background job) or ``sigint`` says
    otherwise (a tuning worker starts with it ignored); returns the handlers replaced."""
    if sigint is None:
        sigint = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    _state["signal"] = 0
    return {s: signal.signal(s, _record) for s in SIGNALS if sigint or s == signal.SIGTERM}


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # the only one that receives signals


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Signals in the block are only recorded, even in a library caller with Python's own handlers (swapped for
    the block); :func:`check` raises one at a safe point, or else the outermost block at its end."""
    ours = all(signal.getsignal(s) in (_record, signal.SIG_IGN) for s in SIGNALS)
    old = install() if _main_thread() and not ours else {}
    _state["blocks"] += 1
    try:
        yield
    finally:
        _state["blocks"] -= 1
        for s, handler in old.items():
            signal.signal(s, handler)
    if not _state["blocks"]:
        check()


@contextlib.contextmanager
def ignored_by_children() -> Iterator[None]:
    """Child processes started inside begin with SIGINT ignored, until they set up their own handlers."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
