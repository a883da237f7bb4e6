"""Ctrl-C and SIGTERM: one clean path for both, in the CLI process and in tuning workers.

Python turns SIGINT into ``KeyboardInterrupt`` but lets SIGTERM (what a job scheduler sends) kill the process
without running ``finally`` blocks, so a half-made output folder would stay. :func:`install` makes SIGTERM raise
:class:`Terminated`, a ``KeyboardInterrupt``, so every cleanup written for Ctrl-C also runs for it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled as Ctrl-C is (the CLI exits with 143 instead of 130)."""


#: Open :func:`deferred` blocks in the main thread, and the signals that arrived during them.
_HOLD = [0]
_PENDING: list[int] = []


def _raise(signum: int, _frame: object) -> None:
    if _HOLD[0]:  # inside deferred(): delivered when the block ends
        _PENDING.append(signum)
        return
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install() -> None:
    """In the main thread of the CLI: SIGTERM raises :class:`Terminated`; SIGINT keeps raising KeyboardInterrupt
    (through this module's handler, so :func:`deferred` can hold both)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _raise)


def _ignore(_signum: int, _frame: object) -> None:
    """Ignore a signal. A Python function, not ``SIG_IGN``: a signal already caught but not yet handled when
    the handler changes would otherwise end in ``OSError: Signal 15 ignored due to race condition``."""


def ignore_from_now() -> None:
    """The clean-up after an interrupt is running: further SIGINT and SIGTERM are ignored."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _ignore)


def _once(signum: int, frame: object) -> None:
    if _HOLD[0]:
        _PENDING.append(signum)
        return
    ignore_from_now()  # the first signal stops this process; a second (the parent's SIGTERM after a Ctrl-C to
    _raise(signum, frame)  # the whole group) must not break off its clean-up


def install_once(*, sigint: bool = True) -> None:
    """In a worker process: the first SIGINT or SIGTERM raises, later ones are ignored while it cleans up.
    ``sigint=False`` leaves SIGINT ignored (the command runs as a background job, where Ctrl-C is not for it)."""
    signal.signal(signal.SIGTERM, _once)
    if sigint:
        signal.signal(signal.SIGINT, _once)


@contextlib.contextmanager
def ignored_by_children() -> Iterator[None]:
    """Start child processes inside this block: they begin with SIGINT ignored (inherited through exec), so a
    Ctrl-C in their first moments, before they set up their own handlers, cannot print a traceback."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _ours() -> bool:
    """In the main thread, with this module's handlers (or none) for both signals."""
    return threading.current_thread() is threading.main_thread() and all(
        signal.getsignal(s) in (_raise, _once, _ignore, signal.SIG_IGN) for s in SIGNALS
    )


def hold() -> bool:
    """Start holding SIGINT and SIGTERM; returns whether it did (pass that to :func:`unhold`). Holding is a counter
    the handlers read, so a signal can never land half-way through starting or ending it; it needs this module's
    handlers in the main thread (the CLI, tuning workers) and does nothing elsewhere."""
    if not _ours():
        return False
    _HOLD[0] += 1
    return True


def unhold(held: bool) -> None:
    """End a :func:`hold`; when it was the outermost, the first signal that arrived meanwhile is raised now."""
    if not held:
        return
    _HOLD[0] -= 1
    if not _HOLD[0] and _PENDING:
        signum = _PENDING[0]
        _PENDING.clear()
        signal.raise_signal(signum)  # its handler raises now (or ignores it, once the clean-up began)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during a few steps that must not be separated (two renames, the files of one epoch);
    deliver the first that arrived once the outermost block ends. Blocks nest; other threads never receive
    signals, so there it does nothing. Without this module's handlers (aerotune used as a library) the handlers are
    swapped for the block instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _ours():
        held = hold()
        try:
            yield
        finally:
            unhold(held)
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda signum, _f: caught.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if caught:
            signal.raise_signal(caught[0])
