"""Ctrl-C and SIGTERM: one clean path for both, in the CLI and in tuning workers.

SIGTERM raises :class:`Terminated`, a ``KeyboardInterrupt``, so every clean-up written for Ctrl-C runs for it
too. A few steps that must not be separated (two renames, an epoch's files, a journal call) hold both signals
(:func:`deferred`, :func:`hold`); the first that arrived meanwhile is raised once they end.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HOLD = [0]  # open holds in the main thread
_PENDING: list[int] = []  # signals that arrived while held


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled as Ctrl-C is (the CLI exits with 143 instead of 130)."""


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise(signum: int, _frame: object) -> None:
    if _HOLD[0]:
        _PENDING.append(signum)
        return
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _once(signum: int, frame: object) -> None:
    if not _HOLD[0]:  # the first signal stops a worker; a second (the parent's SIGTERM after a Ctrl-C to the
        ignore_from_now()  # whole group) must not break off its clean-up
    _raise(signum, frame)


def _ignore(_signum: int, _frame: object) -> None:
    """Not ``SIG_IGN``: a signal caught but not yet handled would end in "Signal 15 ignored due to race condition"."""


def install() -> None:
    """In the CLI: SIGTERM raises :class:`Terminated`; SIGINT still raises KeyboardInterrupt, unless it was ignored
    (a background job)."""
    if _main():
        signal.signal(signal.SIGTERM, _raise)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _raise)


def install_once(*, sigint: bool = True) -> None:
    """In a worker: the first SIGINT or SIGTERM raises, later ones are ignored; ``sigint=False`` keeps SIGINT
    ignored (a background job)."""
    signal.signal(signal.SIGTERM, _once)
    if sigint:
        signal.signal(signal.SIGINT, _once)


def ignore_from_now() -> None:
    """The clean-up after an interrupt is running: further SIGINT and SIGTERM are ignored."""
    if _main():
        for s in SIGNALS:
            signal.signal(s, _ignore)


@contextlib.contextmanager
def ignored_by_children() -> Iterator[None]:
    """Child processes started inside begin with SIGINT ignored, until they set up their own handlers."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main() else None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def hold() -> bool:
    """Start holding both signals; returns whether it did (pass it to :func:`unhold`). A counter the handlers read,
    so no signal lands half-way through; only with this module's handlers, in the main thread."""
    ours = (_raise, _once, _ignore, signal.SIG_IGN)
    if not _main() or not all(signal.getsignal(s) in ours for s in SIGNALS):
        return False
    _HOLD[0] += 1
    return True


def unhold(held: bool) -> None:
    """End a :func:`hold`; when it was the outermost, the first signal that arrived meanwhile is raised now."""
    if held:
        _HOLD[0] -= 1
        if not _HOLD[0] and _PENDING:
            signum = _PENDING[0]
            _PENDING.clear()
            signal.raise_signal(signum)  # its handler raises now (or ignores it, once the clean-up began)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (blocks nest). Without this module's handlers (a library caller),
    they are swapped for the block instead; other threads never receive signals."""
    held = hold()
    if held or not _main():
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
