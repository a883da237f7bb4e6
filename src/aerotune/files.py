"""Writing files safely: each file under a temporary name, then renamed into place; strict JSON; and
file-system errors turned into one line that names the path and the fix.

Where a command may write (the output rule, folders replaced whole) is :mod:`aerotune.outputs`; how two commands
keep out of each other's folders is :mod:`aerotune.locks`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aerotune.errors import OutputError


def printable(path: Path) -> str:
    """A path as text that can always be printed (undecodable bytes escaped)."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def resolved(p: str | Path) -> Path:
    """``p`` with symlinks resolved; as given (made absolute) when that fails, e.g. in a symlink loop."""
    try:
        return Path(p).resolve()
    except (OSError, RuntimeError):
        return Path(p).absolute()


def _json_safe(o: Any) -> Any:
    """Turn NaN and infinities into ``null`` (JSON has no such numbers) and paths into text, recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, Path):
        return printable(o)
    return o


def _paths_as_text(o: Any) -> Any:
    if isinstance(o, Path):
        return printable(o)
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def json_text(data: Any, *, default: Callable[[Any], Any] = _paths_as_text) -> str:
    """Strict JSON (NaN and infinities written as ``null``), indented, as every aerotune JSON file is written."""
    return json.dumps(_json_safe(data), indent=1, default=default, allow_nan=False)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` next to ``path`` and rename it into place; a failed write leaves no temporary file."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, data: Any, *, default: Callable[[Any], Any] = _paths_as_text) -> None:
    """Write ``data`` as strict, indented JSON (NaN as ``null``) atomically."""
    write_text(path, json_text(data, default=default))


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically (through a temporary name beside ``dst``)."""
    tmp = dst.with_name(f"{dst.name}.tmp{os.getpid()}")
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def os_errors(path: Path, action: str) -> Iterator[None]:
    """Turn a file-system error while writing ``path`` into a one-line ``OutputError`` naming the fix."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_os_error(exc, path, action)) from None


def describe_os_error(exc: OSError, path: Path | None = None, action: str = "write") -> str:
    """One line for a file-system error: the path, what failed, why, and what to do."""
    import errno

    failing = Path(os.fsdecode(exc.filename)) if exc.filename else None
    reason = exc.strerror or type(exc).__name__
    if path is not None and failing is not None and not _belongs_to(failing, Path(path)):
        where, action = printable(failing), "use this file"  # an input or another path, not the output
    elif path is not None:
        where = printable(path)
        if failing is not None and printable(failing) != where:
            reason += f" at {printable(failing)}"
    else:
        where = printable(failing) if failing is not None else "output"
    fixes = {
        errno.ENOSPC: "free some space or choose another disk",
        errno.EDQUOT: "free some space or choose another disk",
        errno.EFBIG: "the file grew past a size limit (ulimit -f); raise the limit or choose another disk",
        errno.EACCES: "choose a place you can write to",
        errno.EPERM: "choose a place you can write to",
        errno.EROFS: "the disk is read-only; choose a place you can write to",
        errno.ENOENT: "check that the folder exists",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "the path is a folder; give a file name",
        errno.EEXIST: "the path exists; choose another",
        errno.ENAMETOOLONG: "choose a shorter path",
    }
    fix = fixes.get(exc.errno or 0, "check the path and the disk")
    return f"{where}: cannot {action} ({reason}); {fix}"


def _belongs_to(failing: Path, out: Path) -> bool:
    """Whether ``failing`` is ``out``, inside it, its parent, or one of its temporary siblings (``.out.tmp-…``)."""
    f, o = resolved(failing), resolved(out)
    return (
        f == o
        or o in f.parents
        or f == o.parent
        or (f.parent == o.parent and f.name.startswith(f".{o.name}."))
        or (f.parent == o.parent and f.name.startswith(f"{o.name}.tmp"))
    )
