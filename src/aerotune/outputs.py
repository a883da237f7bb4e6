"""The one rule for outputs, and :func:`writing`, the one way every command writes one.

An output folder is new, empty, or one that aerotune wrote for the same purpose (``.aerotune.json``, or the
signature files of older versions); it never is, contains or lies inside an input; and it is checked, and locked
(:mod:`aerotune.locks`), before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aerotune import interrupts
from aerotune.errors import OutputError
from aerotune.files import os_errors, resolved, write_json
from aerotune.locks import LOCK, hold_lock, released
from aerotune.reading import show

MARKER = ".aerotune.json"  # {"kind": ..., "version": ...}

#: What each kind of output is called in messages, and the files that marked it before markers existed.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cache": ("cache", ("manifest.json",)),
    "train-run": ("training run", ("checkpoints/last.pt", "config.json")),
    "tune-run": ("tuning run", ("study.json",)),
    "report": ("report", ("report.json",)),
    "predictions": ("prediction folder", ()),
    "evaluation": ("evaluation", ()),
    "demo": ("demo folder", (".aerotune-demo",)),
    "synth": ("synthetic dataset", ()),  # a dataset: never marked, no lock file inside
    "seeds": ("seed retraining folder", ()),  # RUN/seeds of a tuning run
    "onnx": ("ONNX export", ()),  # a file, not a folder
}
REPLACED_WHOLE = ("cache", "report")  # nothing else may live inside these


@dataclass(frozen=True)
class Output:
    """An output that passed :func:`check_output`; nothing has been written yet."""

    path: Path
    kind: str
    existed: bool  # it already holds an aerotune output of this kind
    was_empty: bool = False  # an existing empty folder: a failure empties it again


def mark(folder: Path, kind: str) -> None:
    if not (folder / MARKER).is_file():
        write_json(folder / MARKER, {"kind": kind, "version": 1})


def output_kind(folder: Path) -> str | None:
    """The kind of aerotune output ``folder`` holds (marker first, then older signatures), or None."""
    try:
        return str(json.loads((folder / MARKER).read_text())["kind"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return next((k for k, (_n, sign) in KINDS.items() if sign and all((folder / s).exists() for s in sign)), None)


def check_output(
    path: str | Path,
    kind: str,
    *,
    inputs: Iterable[str | Path] = (),
    option: str = "--out",
    inside_inputs: bool = False,
    ours: Callable[[Path], bool] | None = None,
) -> Output:
    """Check an output folder against the rule, writing nothing; ``inside_inputs`` allows it inside an input
    folder (``predict scenes/ --out scenes/masks``). ``ours``: a single file, new or an earlier output for which
    ``ours(path)`` holds. Raises OutputError."""
    path, name, file = Path(path), KINDS[kind][0], ours is not None
    _check_place(path, inputs, option, inside_inputs or file)
    if file and path.is_dir():
        raise _refused(path, f"{option} is a folder", f"give a file name, e.g. {show(path / 'model.onnx')}")
    if file and path.exists() and not ours(path):
        raise _refused(path, f"exists and is not an aerotune {name}", f"choose another {option}")
    if not file and path.exists() and not path.is_dir():
        raise _refused(path, f"{option} is an existing file, not a folder", "choose a new or empty folder")
    if file or not path.is_dir():
        parent = path.absolute().parent
        if not parent.is_dir():
            state = "is a file" if parent.exists() else "does not exist"
            why = f"cannot write {option} because {show(parent)} {state}"
            raise _refused(path, why, f"create that folder first, or choose another {option}")
        _check_writable(path, parent, option)
        return Output(path, kind, path.exists())
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise _refused(path, f"cannot read {option} ({exc.strerror})", "choose a folder you can use") from None
    found = output_kind(path) if entries else kind
    if found != kind:
        what = f"holds an aerotune {KINDS[found][0]}, not a" if found else "is not an aerotune"
        raise _refused(path, f"folder exists and {what} {name}", f"choose a new or empty {option} folder")
    _check_writable(path, path, option)
    hold_lock(path, option, keep=False)
    return Output(path, kind, bool(entries), not entries)


def _check_place(path: Path, inputs: Iterable[str | Path], option: str, inside_inputs: bool) -> None:
    """Refuse an output that is, contains or (unless ``inside_inputs``) lies inside an input, lies inside an
    output that is replaced whole, or is a broken symbolic link."""
    out = resolved(path)
    for item in inputs:
        src = resolved(item)
        how = "is" if out == src else "contains" if out in src.parents else "lies inside" if src in out.parents else ""
        if how and (how != "lies inside" or not inside_inputs):
            why = f"{option} {how} the input {show(Path(item))}; aerotune never overwrites or writes into your data"
            raise _refused(path, why, "choose a folder apart from it")
    for parent in out.parents:  # by marker only: a user's folder may hold a manifest.json
        if (parent / MARKER).is_file() and (found := output_kind(parent)) in REPLACED_WHOLE:
            raise _refused(
                path,
                f"{option} lies inside the aerotune {KINDS[found][0]} {show(parent)}, which is replaced whole "
                "when it is written again",
                "choose a folder outside it",
            )
    if path.is_symlink() and not path.exists():
        raise _refused(path, f"{option} is a broken symbolic link", f"remove it or choose another {option}")


def _check_writable(path: Path, folder: Path, option: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        why = f"cannot write in {show(folder)} (permission denied)"
        raise _refused(path, why, f"choose an {option} folder you can write to")


def _refused(path: Path, problem: str, fix: str) -> OutputError:
    """The one line that refuses ``path``: what is wrong, and what to do."""
    return OutputError(f"{show(path)}: {problem}; {fix}")


@dataclass
class Place:
    """Where a command writes, yielded by :func:`writing`: a temporary folder or file beside ``out``, or ``out``."""

    path: Path
    out: Path
    staged: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary file, its final name)
    made: list[Path] = field(default_factory=list)  # folders created here, removed again on failure

    def stage(self, tmp: Path, final: Path) -> None:
        """``tmp`` takes the name ``final`` when the output is committed and is removed if it fails."""
        self.staged.append((tmp, final))

    def folder(self, folder: Path) -> Path:
        """Create ``folder`` (and the folders above it that are missing), removed again on failure."""
        if not folder.is_dir():
            self.folder(folder.parent)
            folder.mkdir()
            self.made.append(folder)
        return folder


@contextlib.contextmanager
def writing(
    path: str | Path,
    kind: str,
    *,
    inputs: Iterable[str | Path] = (),
    replace: bool | str = False,
    keep: Callable[[], bool] = lambda: False,
    ours: Callable[[Path], bool] | None = None,
    option: str = "--out",
    inside_inputs: bool = False,
) -> Iterator[Place]:
    """Check the output, sweep what dead processes left beside it, lock and mark it, let the caller build it,
    commit it; on any failure or interrupt undo what this call did. Signals are only recorded meanwhile
    (:func:`interrupts.deferred`) and raised at the loops' checks or before the commit, never inside it.

    ``replace``: the output is replaced whole, built in a temporary folder beside ``path`` and renamed into place
    (one that appeared meanwhile only if it is an unlocked output of this kind); ``"aside"`` (the demo, whose
    stages need their final paths): built at ``path``, an earlier output moved aside until the end. Otherwise it
    is written in place (resume): a folder this call created is removed on failure unless ``keep()``. ``ours``:
    a single file, built beside and replacing an earlier one only if ``ours(path)``. The commit renames what
    :meth:`Place.stage` was given (the temporary folder or file first), in order.
    """
    path = Path(path)
    with interrupts.deferred(), released():
        output = check_output(path, kind, inputs=inputs, option=option, inside_inputs=inside_inputs, ours=ours)
        sweep(path)
        beside = replace is True or ours is not None
        place = Place(_temp_name(path) if beside else path, path)
        aside = _temp_name(path, "old") if replace == "aside" and output.existed else None
        locked = False
        try:
            with os_errors(path, f"write the {KINDS[kind][0]}"):  # a full disk or a size limit: one line
                if beside:
                    place.stage(place.path, path)
                if aside is not None:
                    os.replace(path, aside)
                if ours is None:
                    if beside and (path / LOCK).is_file():  # the folder to be replaced: no command starts on it
                        hold_lock(path, option)
                    place.folder(place.path)
                    if kind != "synth":  # a dataset: never marked, no lock file inside
                        hold_lock(place.path, option)
                        locked = True
                        mark(place.path, kind)
                yield place
                interrupts.check()  # a signal that no loop checked for: nothing is committed
                for tmp, final in place.staged:
                    _rename(tmp, final, kind, option)
        except BaseException:  # only what this call did is undone; folders that existed before stay
            for tmp, _final in place.staged:
                _remove(tmp)
            if not keep():
                for folder in reversed(place.made):
                    _remove(folder)
                if locked and output.was_empty and not beside:  # the user's empty folder: empty again
                    for child in path.iterdir():
                        _remove(child)
            if aside is not None and aside.exists():
                os.replace(aside, path)
            raise
        if aside is not None:
            _remove(aside)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _temp_name(out: Path, what: str = "tmp") -> Path:
    return out.parent / f".{out.name}.{what}-{os.getpid()}-{time.time_ns()}"


def _rename(tmp: Path, final: Path, kind: str, option: str) -> None:
    """``tmp`` takes the name ``final``. A folder replaces only an empty folder or an aerotune output of its kind
    that no other command writes (moved aside, then removed); anything else that appeared there meanwhile stays."""
    try:
        os.replace(tmp, final)  # a file, or a folder where there is none or an empty one
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR) or not tmp.is_dir():
            raise
    if final.is_symlink() or output_kind(final) != kind:
        name = KINDS[kind][0]
        why = f"appeared while this command ran and is not an aerotune {name}; it was left as it is"
        raise _refused(final, why, f"nothing was written; run again with another {option}")
    hold_lock(final, option)  # another command that made the same new folder and still writes it: refused
    old = _temp_name(final, "old")
    os.replace(final, old)
    os.replace(tmp, final)
    _remove(old)


def sweep(out: Path) -> None:
    """Remove the temporary folders and files beside ``out`` (``.NAME.tmp-PID-…``) whose process is gone
    (SIGKILL, out of memory: its clean-up never ran) and whose lock nobody holds."""
    for p in out.parent.glob(f".{glob.escape(out.name)}.tmp-*"):
        pid = p.name[len(out.name) + 6 :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OutputError):  # locked: a process it started still writes it
                hold_lock(p, keep=False)
                _remove(p)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        pass
    return True
