"""One command at a time per output folder.

While a command writes an output folder it holds an ``fcntl`` lock on ``.aerotune.lock`` inside it, so a second
command on the same folder is refused before it writes anything. The kernel drops the lock when the process ends,
however it ends: a killed command never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TypeVar

from aerotune.errors import OutputError
from aerotune.files import os_errors, printable, resolved

T = TypeVar("T")

#: The lock file an output folder carries while a command writes it (an ``fcntl`` lock; the file stays).
LOCK = ".aerotune.lock"

#: The lock files this process holds, by folder: kept open (so locked) until the process ends.
_HELD: dict[str, int] = {}


def _busy(path: Path, option: str) -> OutputError:
    return OutputError(
        f"{printable(path)}: another aerotune command is writing this folder now; wait for it to finish, "
        f"or choose another {option}"
    )


def hold_lock(folder: Path, option: str = "--out") -> None:
    """Lock ``folder`` for the rest of this process (an ``fcntl`` lock on ``folder/.aerotune.lock``).

    Raises:
        OutputError: another process holds the lock (another command is writing this folder now).
    """
    key = os.fsdecode(resolved(folder))
    if key in _HELD:
        return
    with os_errors(folder, "lock the output folder"):
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(folder, option) from None
    except OSError:  # a file system without locks: the command runs unlocked, as before locks existed
        os.close(fd)
        return
    _HELD[key] = fd  # the file stays empty: a command refused later must leave it as it was


def check_not_busy(path: Path, option: str) -> None:
    """Refuse ``path`` when another process holds its lock; writes nothing (an absent lock file is not made)."""
    if os.fsdecode(resolved(path)) in _HELD:
        return
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CLOEXEC)  # not created; opened as the lock is taken
    except OSError:
        return  # no lock file: no command of this version is writing it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(path, option) from None
    except OSError:
        pass  # a file system without locks: nothing to check
    finally:
        os.close(fd)  # closing drops a lock taken here


def moved_lock(tmp: Path, out: Path) -> None:
    """The lock held on ``tmp`` is now the lock of ``out`` (the folder was renamed); one on the old ``out`` is
    dropped (that folder is gone)."""
    held = _HELD.pop(os.fsdecode(resolved(tmp)), None)
    if held is None:
        return
    old = _HELD.pop(os.fsdecode(resolved(out)), None)
    if old is not None:
        os.close(old)
    _HELD[os.fsdecode(resolved(out))] = held
