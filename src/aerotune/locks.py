"""``fcntl`` locks, which the kernel drops when the process ends, however it ends (a killed command never leaves a
stale lock): one command at a time per output folder (``.aerotune.lock`` inside it, refused when busy), and the
study's and its journal's lock, which the workers of one tuning run wait their turn for."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from aerotune.errors import OutputError
from aerotune.files import os_errors, resolved
from aerotune.reading import show

LOCK = ".aerotune.lock"  # the lock file; it stays, empty
_HELD: dict[str, FileLock] = {}  # the output folders this process holds, by resolved path


class FileLock:
    """An exclusive lock on the file ``path``, re-entrant in the thread that holds it (other threads wait). On a
    file system without locks it is taken unlocked."""

    def __init__(self, path: str | Path) -> None:
        self.path, self._thread, self._fd, self._depth = Path(path), threading.RLock(), -1, 0

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, False at once when another process holds it."""
        with contextlib.ExitStack() as undo:
            self._thread.acquire()
            undo.callback(self._thread.release)
            if not self._depth:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                undo.callback(os.close, self._fd)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    return False
                except OSError:  # no locks on this file system
                    pass
            self._depth += 1
            undo.pop_all()
        return True

    def release(self) -> None:
        self._depth -= 1
        if not self._depth:
            os.close(self._fd)  # drops the lock
        self._thread.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_lock(folder: Path, option: str = "--out", *, keep: bool = True) -> None:
    """Lock the output ``folder`` until the :func:`released` block ends (``keep=False``: only check that it is
    free, making no lock file); refused in one line when another command writes it. One this process holds passes."""
    key = os.fsdecode(resolved(folder))
    if key in _HELD or not (keep or (folder / LOCK).is_file()):
        return
    lock = FileLock(folder / LOCK)
    with os_errors(folder, "lock the output folder"):
        if not lock.acquire(blocking=False):
            raise OutputError(
                f"{show(folder)}: another aerotune command is writing this folder now; wait for it to finish, "
                f"or choose another {option}"
            )
    if keep:
        _HELD[key] = lock
    else:
        lock.release()


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Output locks taken inside the block are dropped when it ends (a library caller may run the CLI on them next)."""
    before = set(_HELD)
    try:
        yield
    finally:
        for key in set(_HELD) - before:
            _HELD.pop(key).release()
