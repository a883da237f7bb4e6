"""One command at a time per output folder: an ``fcntl`` lock on ``.aerotune.lock`` inside it, which the kernel
drops when the process ends, however it ends (a killed command never leaves a stale lock)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from aerotune.errors import OutputError
from aerotune.files import os_errors, printable, resolved

LOCK = ".aerotune.lock"  # the lock file; it stays, empty
_HELD: dict[str, int] = {}  # the lock files this process holds open (so locked), by resolved folder


def _flock(fd: int, folder: Path, option: str) -> bool:
    """Lock ``fd`` (closed and refused when another process holds it); False on a file system without locks."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        os.close(fd)
        raise OutputError(
            f"{printable(folder)}: another aerotune command is writing this folder now; wait for it to finish, "
            f"or choose another {option}"
        ) from None
    except OSError:
        return False


def hold_lock(folder: Path, option: str = "--out") -> None:
    """Lock ``folder`` until the :func:`released` block ends; refused when another command writes it."""
    key = os.fsdecode(resolved(folder))
    if key not in _HELD:
        with os_errors(folder, "lock the output folder"):
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if _flock(fd, folder, option):
            _HELD[key] = fd
        else:  # a file system without locks: the command runs unlocked
            os.close(fd)


def check_not_busy(path: Path, option: str) -> None:
    """Refuse ``path`` when another process holds its lock; an absent lock file is not made."""
    if os.fsdecode(resolved(path)) in _HELD:
        return
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return  # no lock file: no command is writing it
    _flock(fd, path, option)
    os.close(fd)  # drops a lock taken here


def moved_lock(tmp: Path, out: Path) -> None:
    """The lock held on ``tmp`` is now ``out``'s (renamed); one held on the old ``out`` is dropped."""
    held = _HELD.pop(os.fsdecode(resolved(tmp)), None)
    if held is not None:
        old = _HELD.pop(os.fsdecode(resolved(out)), None)
        if old is not None:
            os.close(old)
        _HELD[os.fsdecode(resolved(out))] = held


@contextlib.contextmanager
def released() -> Iterator[None]:
    """Locks taken inside the block are dropped when it ends (a library caller may run the CLI on them next)."""
    before = set(_HELD)
    try:
        yield
    finally:
        for key in set(_HELD) - before:
            os.close(_HELD.pop(key))
