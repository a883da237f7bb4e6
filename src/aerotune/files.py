"""Writing files safely: under a temporary name, then renamed into place; strict JSON; and file-system errors
turned into one line that names the path and the fix. Where a command may write is :mod:`aerotune.outputs`."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aerotune.errors import OutputError
from aerotune.reading import show


def resolved(p: str | Path) -> Path:
    """``p`` with symlinks resolved; as given (made absolute) when that fails, e.g. in a symlink loop."""
    try:
        return Path(p).resolve()
    except (OSError, RuntimeError):
        return Path(p).absolute()


def _json_safe(o: Any) -> Any:
    """NaN and infinities as ``null`` (JSON has no such numbers), paths as text, recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, Path):
        return show(o)
    return o


def _atomic(dst: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temporary file beside ``dst``, then rename it into place; a failure leaves no temporary file."""
    tmp = dst.with_name(f"{dst.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any, *, default: Callable[[Any], Any] | None = None) -> None:
    """Write ``data`` as strict, indented JSON (NaN as ``null``), atomically."""
    write_text(path, json.dumps(_json_safe(data), indent=1, default=default, allow_nan=False))


def copy_file(src: Path, dst: Path) -> None:
    _atomic(dst, lambda tmp: shutil.copy2(src, tmp))


@contextlib.contextmanager
def os_errors(path: Path, action: str) -> Iterator[None]:
    """Turn a file-system error while writing ``path`` into a one-line ``OutputError`` naming the fix."""
    try:
        yield
    except OSError as exc:
        raise OutputError(describe_os_error(exc, path, action)) from None


_WRITABLE, _FULL = "choose a place you can write to", "free some space or choose another disk"
_FIXES = {
    **dict.fromkeys((errno.ENOSPC, errno.EDQUOT), _FULL),
    **dict.fromkeys((errno.EACCES, errno.EPERM), _WRITABLE),
    errno.EFBIG: "the file grew past a size limit (ulimit -f); raise the limit or choose another disk",
    errno.EROFS: f"the disk is read-only; {_WRITABLE}",
    errno.ENOENT: "check that the folder exists",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.EEXIST: "the path exists; choose another",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def describe_os_error(exc: OSError, path: Path | None = None, action: str = "write") -> str:
    """One line for a file-system error: the path, what failed, why, and what to do. A file that is not ``path``,
    inside it or beside it (an input) is named instead: "cannot use this file"."""
    failing = Path(os.fsdecode(exc.filename)) if exc.filename else None
    reason, fix = exc.strerror or type(exc).__name__, _FIXES.get(exc.errno or 0, "check the path and the disk")
    if failing is not None and (path is None or not _belongs_to(failing, Path(path))):
        path, action = failing, action if path is None else "use this file"
    elif failing is not None and show(failing) != show(path):
        reason += f" at {show(failing)}"
    return f"{show(path) if path is not None else 'output'}: cannot {action} ({reason}); {fix}"


def _belongs_to(failing: Path, out: Path) -> bool:
    """Whether ``failing`` is ``out``, inside it, its parent, or one of its temporary siblings (``.out.tmp-…``)."""
    f, o = resolved(failing), resolved(out)
    siblings = f.parent == o.parent and (f.name.startswith(f".{o.name}.") or f.name.startswith(f"{o.name}.tmp"))
    return f == o or o in f.parents or f == o.parent or siblings
