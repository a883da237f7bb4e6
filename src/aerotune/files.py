"""Everything that writes to disk goes through here: atomic files and folders, and the one rule for outputs.

The rule, shared by every command that writes (``train``, ``tune``, ``data prepare``, ``report``, ``predict``,
``evaluate``, ``export``, ``data synth``, ``demo``): an output folder is new, empty, or one that aerotune wrote
for the same purpose (it carries a ``.aerotune.json`` marker, or the signature files of older versions); it
never is, contains or lies inside one of the command's inputs; and it is checked before anything is written,
so a refused command leaves every existing file as it was.

While a command writes an output folder it holds an ``fcntl`` lock on ``.aerotune.lock`` inside it, so a
second command on the same folder is refused before it writes anything. The kernel drops the lock when the
process ends, however it ends: a killed command never leaves a stale lock behind. Outputs replaced whole
(cache, report, evaluation) are built in a locked folder beside ``out`` and renamed into place, with the lock;
when two commands create the same *new* one at once, each builds its own, and the second to finish is refused
while the first still holds the folder (after that, it replaces it, as a later command would); a folder that
someone else put at ``out`` meanwhile is never replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aerotune import interrupts
from aerotune.errors import OutputError

T = TypeVar("T")

#: The marker file an aerotune output folder carries: ``{"kind": ..., "version": ...}``.
MARKER = ".aerotune.json"

#: The lock file an output folder carries while a command writes it (an ``fcntl`` lock; the file stays).
LOCK = ".aerotune.lock"

#: The lock files this process holds, by folder: kept open (so locked) until the process ends.
_HELD: dict[str, int] = {}

#: What each kind of output is called in messages, and the files that marked it before markers existed.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cache": ("cache", ("manifest.json",)),
    "train-run": ("training run", ("checkpoints/last.pt", "config.json")),
    "tune-run": ("tuning run", ("study.json",)),
    "report": ("report", ("report.json",)),
    "predictions": ("prediction folder", ()),
    "evaluation": ("evaluation", ()),
    "demo": ("demo folder", (".aerotune-demo",)),
    "synth": ("synthetic dataset", ()),  # written only into a new or empty folder, never marked
}


def _display(path: Path) -> str:
    """A path as text that can always be printed (undecodable bytes escaped)."""
    return os.fsdecode(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _json_safe(o: Any) -> Any:
    """Turn NaN and infinities into ``null`` (JSON has no such numbers) and paths into text, recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, Path):
        return _display(o)
    return o


def _paths_as_text(o: Any) -> Any:
    if isinstance(o, Path):
        return _display(o)
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


def replace_dir(tmp: Path, out: Path, option: str = "--out") -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing an old one there with as short a window as possible.

    ``out`` was checked when the command began, but another process may have made it since: it is replaced only
    if it is still empty or an unlocked aerotune output of the same kind as ``tmp``.

    Raises:
        OutputError: ``out`` is now someone else's folder, or another command is writing it (``tmp`` is left for
            the caller to remove; ``out`` is untouched).
    """
    if out.exists() or out.is_symlink():
        _check_replaceable(tmp, out, option)
        old = out.parent / f".{out.name}.old-{os.getpid()}-{time.time_ns()}"
        with interrupts.deferred():  # a Ctrl-C between the two renames would leave neither folder at ``out``
            os.replace(out, old)
            os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    _moved_lock(tmp, out)


def _check_replaceable(tmp: Path, out: Path, option: str) -> None:
    made = output_kind(tmp)
    name = KINDS[made][0] if made in KINDS else "output"
    try:
        empty = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    except OSError:
        empty = False
    if not empty and (out.is_symlink() or not out.is_dir() or output_kind(out) != made):
        raise OutputError(
            f"{_display(out)}: appeared while this command ran and is not an aerotune {name}; it was left as it "
            f"is and nothing was written; run again with another {option}"
        )
    hold_lock(out, option)  # another command that made the same new folder and still writes it: refused


def _moved_lock(tmp: Path, out: Path) -> None:
    """The lock held on ``tmp`` is now the lock of ``out`` (the folder was renamed); one on the old ``out`` is
    dropped (that folder is gone)."""
    held = _HELD.pop(os.fsdecode(_resolved(tmp)), None)
    if held is None:
        return
    old = _HELD.pop(os.fsdecode(_resolved(out)), None)
    if old is not None:
        os.close(old)
    _HELD[os.fsdecode(_resolved(out))] = held


def temp_dir_beside(out: Path) -> Path:
    """A new, empty hidden folder next to ``out`` (same file system, so it can be renamed into place).

    Both are locked for this command (see :func:`hold_lock`): the folder that will be replaced, and the new
    one, whose lock comes along when it is renamed to ``out``."""
    if (out / LOCK).is_file():  # not made here: a failed command leaves an older or a user's folder as it was
        hold_lock(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir(parents=True)
    hold_lock(tmp)
    return tmp


def _busy(path: Path, option: str) -> OutputError:
    return OutputError(
        f"{_display(path)}: another aerotune command is writing this folder now; wait for it to finish, "
        f"or choose another {option}"
    )


def hold_lock(folder: Path, option: str = "--out") -> None:
    """Lock ``folder`` for the rest of this process (an ``fcntl`` lock on ``folder/.aerotune.lock``).

    Raises:
        OutputError: another process holds the lock (another command is writing this folder now).
    """
    key = os.fsdecode(_resolved(folder))
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


def releases_locks(func: Callable[..., T]) -> Callable[..., T]:
    """Decorate an operation that writes outputs: the locks it takes are released when it returns or fails
    (a library caller, a notebook, may run the CLI on the same folder afterwards). Nested operations release
    only their own."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        before = set(_HELD)
        try:
            return func(*args, **kwargs)
        finally:
            for key in set(_HELD) - before:
                os.close(_HELD.pop(key))

    return wrapper


def _check_not_busy(path: Path, option: str) -> None:
    """Refuse ``path`` when another process holds its lock; writes nothing (an absent lock file is not made)."""
    if os.fsdecode(_resolved(path)) in _HELD:
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


# ---------------------------------------------------------------- the output rule


@dataclass(frozen=True)
class Output:
    """An output folder that passed :func:`check_output`; nothing has been written yet."""

    path: Path
    kind: str
    existed: bool  # it already holds an aerotune output of this kind (resumed, updated or replaced)
    was_empty: bool = False  # it existed as an empty folder (a failure empties it again, it is not removed)

    def claim(self) -> Path:
        """Create the folder (its parent exists: checked), lock it for this command (another command writing
        it now is refused here) and mark it as ours; call only after every check passed."""
        with os_errors(self.path, "create the output folder"):
            self.path.mkdir(parents=True, exist_ok=True)
            hold_lock(self.path)
            mark(self.path, self.kind)
        return self.path


def mark(folder: Path, kind: str) -> None:
    """Write the marker that makes ``folder`` an aerotune output of ``kind``."""
    if not (folder / MARKER).is_file():
        write_json(folder / MARKER, {"kind": kind, "version": 1})


def output_kind(folder: Path) -> str | None:
    """The kind of aerotune output ``folder`` holds (marker first, then older signatures), or None."""
    try:
        return str(json.loads((folder / MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for kind, (_name, signature) in KINDS.items():
        if signature and all((folder / s).exists() for s in signature):
            return kind
    return None


def check_output(
    path: str | Path,
    kind: str,
    *,
    inputs: Iterable[str | Path] = (),
    option: str = "--out",
    inside_inputs: bool = False,
) -> Output:
    """Check an output folder against the rule above, writing nothing.

    Args:
        path: the folder the command will write.
        kind: one of :data:`KINDS`.
        inputs: files and folders the command reads; the output may not be one of them, nor contain one.
        option: how the user gave ``path``, for messages.
        inside_inputs: allow the output to lie inside an input folder (``predict scenes/ --out scenes/masks``).

    Raises:
        OutputError: the folder is a file, belongs to the user or to another kind of output, overlaps an
            input, or cannot be created.
    """
    path = Path(path)
    name = KINDS[kind][0]
    shown = _display(path)
    _check_inputs(path, inputs, option, inside_inputs)
    _check_not_inside_replaced(path, option)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{shown}: {option} is a broken symbolic link; remove it or choose another folder")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown}: {option} is an existing file, not a folder; choose a new or empty folder")
    existed = was_empty = False
    if path.is_dir():
        try:
            entries = [p.name for p in path.iterdir()]
        except OSError as exc:
            raise OutputError(f"{shown}: cannot read {option} ({exc.strerror}); choose a folder you can use") from None
        if entries:
            found = output_kind(path)
            if found is None:
                raise OutputError(
                    f"{shown}: folder exists and is not an aerotune {name} (it is not empty and "
                    f"aerotune did not write it); choose a new or empty {option} folder"
                )
            if found != kind:
                raise OutputError(
                    f"{shown}: folder holds an aerotune {KINDS[found][0]}, not a {name}; choose another {option} folder"
                )
            existed = True
        was_empty = not entries
        _check_writable(path, path, option)
        _check_not_busy(path, option)
    else:
        parent = path.absolute().parent
        if not parent.is_dir():
            what = "is a file" if parent.exists() else "does not exist"
            raise OutputError(
                f"{shown}: cannot create {option} because {_display(parent)} {what}; create that "
                f"folder first, or choose another {option}"
            )
        _check_writable(path, parent, option)
    return Output(path, kind, existed, was_empty)


def check_output_file(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    ours: Callable[[Path], bool],
    what: str,
    option: str = "--out",
) -> Path:
    """Check a single output file before any work: not a folder, not an input, in an existing folder we may
    write to, and either new or an earlier output of ours (``ours(path)``) that may be replaced."""
    path = Path(path)
    shown = _display(path)
    _check_inputs(path, inputs, option, inside_inputs=True)
    if path.is_dir():
        raise OutputError(f"{shown}: {option} is a folder; give a file name, e.g. {_display(path / 'model.onnx')}")
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{shown}: {option} is a broken symbolic link; remove it or choose another file")
    if path.exists() and not ours(path):
        raise OutputError(
            f"{shown}: exists and is not an aerotune {what}; aerotune never overwrites your files, "
            f"choose another {option}"
        )
    parent = path.absolute().parent
    if not parent.is_dir():
        state = "is a file" if parent.exists() else "does not exist"
        raise OutputError(
            f"{shown}: cannot write {option} because {_display(parent)} {state}; create that folder "
            f"first, or choose another {option}"
        )
    _check_writable(path, parent, option)
    return path


#: Kinds of output that are replaced whole when written again: nothing else may live inside them.
REPLACED_WHOLE = ("cache", "report")


def _check_not_inside_replaced(path: Path, option: str) -> None:
    for parent in _resolved(path).parents:  # by marker only: a user's folder may hold a manifest.json
        try:
            found = json.loads((parent / MARKER).read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if found in REPLACED_WHOLE:
            raise OutputError(
                f"{_display(path)}: {option} lies inside the aerotune {KINDS[found][0]} {_display(parent)}, "
                f"which is replaced whole when it is written again; choose a folder outside it"
            )


def _check_writable(path: Path, folder: Path, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{_display(path)}: cannot create {option} because {_display(folder)} is a file; choose another place"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"{_display(path)}: cannot write in {_display(folder)} (permission denied); "
            f"choose an {option} folder you can write to"
        )


def _resolved(p: str | Path) -> Path:
    try:
        return Path(p).resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as given
        return Path(p).absolute()


def _check_inputs(path: Path, inputs: Iterable[str | Path], option: str, inside_inputs: bool) -> None:
    out = _resolved(path)
    for item in inputs:
        src = _resolved(item)
        if out == src:
            raise OutputError(
                f"{_display(path)}: {option} is the input {_display(Path(item))} itself; writing there "
                "would overwrite it; choose a separate output folder"
            )
        if out in src.parents:
            raise OutputError(
                f"{_display(path)}: {option} contains the input {_display(Path(item))}; writing there "
                "could overwrite it; choose a folder outside your data"
            )
        if src in out.parents and not inside_inputs:
            raise OutputError(
                f"{_display(path)}: {option} lies inside the input {_display(Path(item))}; aerotune "
                "does not write into your data; choose a folder outside it"
            )


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
        where, action = _display(failing), "use this file"  # an input or another path, not the output
    elif path is not None:
        where = _display(path)
        if failing is not None and _display(failing) != where:
            reason += f" at {_display(failing)}"
    else:
        where = _display(failing) if failing is not None else "output"
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
    f, o = _resolved(failing), _resolved(out)
    return (
        f == o
        or o in f.parents
        or f == o.parent
        or (f.parent == o.parent and f.name.startswith(f".{o.name}."))
        or (f.parent == o.parent and f.name.startswith(f"{o.name}.tmp"))
    )


@contextlib.contextmanager
def removed_on_failure(output: Output, *, keep: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Remove an output folder this command created if the command fails, unless ``keep()`` says its
    contents are worth keeping (a resumable checkpoint). Folders that existed before are never removed."""
    try:
        yield
    except BaseException:
        if not output.existed and output.path.is_dir() and not keep():
            if output.was_empty:
                for child in output.path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            else:
                shutil.rmtree(output.path, ignore_errors=True)
        raise
