"""Ctrl-C and SIGTERM: one clean path for both, in the CLI, in tuning workers and in library calls that write.

The handlers only record the signal. :func:`check`, called where aerotune's loops already pause (each training
batch, row of a scene and image of a cache, the tuning worker's and parent's waits, :func:`sleep`), raises it
there: Ctrl-C as ``KeyboardInterrupt``, SIGTERM as its subclass :class:`Terminated`, so every clean-up written for
Ctrl-C runs for both, and nothing is ever broken off between two renames or inside an Optuna call. It raises once:
a later signal never breaks off the clean-up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_flag = {"signal": 0, "raised": False, "blocks": 0}  # the signal to raise; one was raised; open deferred() blocks


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled as Ctrl-C is (the CLI exits with 143 instead of 130)."""


def _record(signum: int, _frame: object) -> None:
    if not _flag["raised"] and not _flag["signal"]:
        _flag["signal"] = signum


def check() -> None:
    """Raise the signal that arrived, if one did and none was raised before."""
    signum, _flag["signal"] = _flag["signal"], 0
    if signum:
        _flag["raised"] = True
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def sleep(seconds: float) -> None:
    """``time.sleep`` that a signal ends within a fifth of a second (by :func:`check`)."""
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
    _flag.update(signal=0, raised=False)
    return {s: signal.signal(s, _record) for s in SIGNALS if sigint or s == signal.SIGTERM}


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Signals in the block are only recorded, even in a library caller that has Python's own handlers (swapped
    for the block); :func:`check` raises one at a safe point, or else the outermost block at its end."""
    main = threading.current_thread() is threading.main_thread()  # other threads never receive signals
    ours = all(signal.getsignal(s) in (_record, signal.SIG_IGN) for s in SIGNALS)
    old = install() if main and not ours else {}
    _flag["blocks"] += 1
    try:
        yield
    finally:
        _flag["blocks"] -= 1
        for s, handler in old.items():
            signal.signal(s, handler)
    if not _flag["blocks"]:
        check()


@contextlib.contextmanager
def ignored_by_children() -> Iterator[None]:
    """Child processes started inside begin with SIGINT ignored, until they set up their own handlers."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
