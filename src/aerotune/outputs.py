"""The one rule for outputs, and :func:`writing`, the one way every command writes one.

An output folder is new, empty, or one that aerotune wrote for the same purpose (``.aerotune.json``, or the
signature files of older versions); it never is, contains or lies inside an input; and it is checked, and locked
(:mod:`aerotune.locks`), before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from aerotune.files import os_errors, printable, resolved, write_json
from aerotune.locks import LOCK, check_not_busy, hold_lock, moved_lock, released

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
    """An output folder that passed :func:`check_output`; nothing has been written yet."""

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
    """Check an output folder against the rule, writing nothing; ``inside_inputs`` allows it inside an input
    folder (``predict scenes/ --out scenes/masks``). Raises OutputError."""
    path, name, shown = Path(path), KINDS[kind][0], printable(Path(path))
    _check_inputs(path, inputs, option, inside_inputs)
    _check_not_inside_replaced(path, option)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{shown}: {option} is a broken symbolic link; remove it or choose another folder")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown}: {option} is an existing file, not a folder; choose a new or empty folder")
    if not path.is_dir():
        _check_parent(path, option, "create")
        return Output(path, kind, False)
    try:
        entries = [p.name for p in path.iterdir()]
    except OSError as exc:
        raise OutputError(f"{shown}: cannot read {option} ({exc.strerror}); choose a folder you can use") from None
    found = output_kind(path) if entries else kind
    if found is None:
        raise OutputError(
            f"{shown}: folder exists and is not an aerotune {name} (it is not empty and "
            f"aerotune did not write it); choose a new or empty {option} folder"
        )
    if found != kind:
        raise OutputError(
            f"{shown}: folder holds an aerotune {KINDS[found][0]}, not a {name}; choose another {option} folder"
        )
    _check_writable(path, path, option)
    check_not_busy(path, option)
    return Output(path, kind, bool(entries), not entries)


def check_output_file(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    ours: Callable[[Path], bool],
    what: str,
    option: str = "--out",
) -> Path:
    """Check a single output file: not a folder nor an input, in a folder we may write to, and new or an earlier
    output of ours (``ours(path)``)."""
    path = Path(path)
    shown = printable(path)
    _check_inputs(path, inputs, option, inside_inputs=True)
    if path.is_dir():
        raise OutputError(f"{shown}: {option} is a folder; give a file name, e.g. {printable(path / 'model.onnx')}")
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{shown}: {option} is a broken symbolic link; remove it or choose another file")
    if path.exists() and not ours(path):
        raise OutputError(
            f"{shown}: exists and is not an aerotune {what}; aerotune never overwrites your files, "
            f"choose another {option}"
        )
    _check_parent(path, option, "write")
    return path


def _check_parent(path: Path, option: str, verb: str) -> None:
    parent = path.absolute().parent
    if not parent.is_dir():
        state = "is a file" if parent.exists() else "does not exist"
        raise OutputError(
            f"{printable(path)}: cannot {verb} {option} because {printable(parent)} {state}; create that folder "
            f"first, or choose another {option}"
        )
    _check_writable(path, parent, option)


def _check_writable(path: Path, folder: Path, option: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"{printable(path)}: cannot write in {printable(folder)} (permission denied); "
            f"choose an {option} folder you can write to"
        )


def _check_not_inside_replaced(path: Path, option: str) -> None:
    for parent in resolved(path).parents:  # by marker only: a user's folder may hold a manifest.json
        try:
            found = json.loads((parent / MARKER).read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if found in REPLACED_WHOLE:
            raise OutputError(
                f"{printable(path)}: {option} lies inside the aerotune {KINDS[found][0]} {printable(parent)}, "
                f"which is replaced whole when it is written again; choose a folder outside it"
            )


def _check_inputs(path: Path, inputs: Iterable[str | Path], option: str, inside_inputs: bool) -> None:
    out, shown = resolved(path), printable(path)
    for item in inputs:
        src, given = resolved(item), printable(Path(item))
        if out == src:
            raise OutputError(
                f"{shown}: {option} is the input {given} itself; writing there "
                "would overwrite it; choose a separate output folder"
            )
        if out in src.parents:
            raise OutputError(
                f"{shown}: {option} contains the input {given}; writing there could overwrite it; "
                "choose a folder outside your data"
            )
        if src in out.parents and not inside_inputs:
            raise OutputError(
                f"{shown}: {option} lies inside the input {given}; aerotune does not write into your data; "
                "choose a folder outside it"
            )


@dataclass
class Place:
    """Where a command writes, yielded by :func:`writing`: a temporary folder or file beside ``out``, or ``out``."""

    path: Path
    out: Path
    staged: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary file, its final name)
    made: list[Path] = field(default_factory=list)  # sub-folders created here, removed again on failure

    def stage(self, tmp: Path, final: Path) -> None:
        """``tmp`` takes the name ``final`` when the output is committed and is removed if it fails."""
        self.staged.append((tmp, final))

    def folder(self, folder: Path) -> Path:
        """Create ``folder`` inside ``path`` (and the folders between), removed again on failure."""
        missing = []
        while folder != self.path and not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for f in reversed(missing):
            f.mkdir()
            self.made.append(f)
        return missing[0] if missing else folder


@contextlib.contextmanager
def writing(
    path: str | Path,
    kind: str,
    *,
    inputs: Iterable[str | Path] = (),
    replace: bool = False,
    beside: bool = True,
    keep: Callable[[], bool] = lambda: False,
    ours: Callable[[Path], bool] | None = None,
    option: str = "--out",
    inside_inputs: bool = False,
) -> Iterator[Place]:
    """Check the output, sweep what dead processes left beside it, lock and mark it, let the caller build it,
    commit it; on any failure or interrupt undo this call's work.

    ``replace``: build in a temporary folder beside ``path`` and rename it into place (an old output replaced
    whole; one that appeared meanwhile only if it is an unlocked output of this kind); with ``beside=False``
    build at ``path``, an earlier output moved aside until the end (the demo). Otherwise write in place (resume):
    a folder this call created is removed on failure unless ``keep()``. ``ours``: write a single file, replacing
    an existing one only if ``ours(path)``. Files given to :meth:`Place.stage` take their names at the end.
    """
    path = Path(path)
    with released():
        if ours is not None:
            check_output_file(path, inputs=inputs, ours=ours, what=KINDS[kind][0], option=option)
            sweep(path)
            tmp = _temp_name(path)
            try:
                yield Place(tmp, path)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return
        output = check_output(path, kind, inputs=inputs, option=option, inside_inputs=inside_inputs)
        sweep(path)
        if not replace:
            yield from _in_place(output, keep)
        else:
            with os_errors(path, f"write the {KINDS[kind][0]}"):  # a full disk or a size limit: one line
                yield from (_beside(output, option) if beside else _moved_aside(output))


def _temp_name(out: Path, what: str = "tmp") -> Path:
    return out.parent / f".{out.name}.{what}-{os.getpid()}-{time.time_ns()}"


def _in_place(output: Output, keep: Callable[[], bool]) -> Iterator[Place]:
    path, place = output.path, Place(output.path, output.path)
    made = locked = marked = claimed = False
    try:
        with interrupts.deferred(), os_errors(path, "create the output folder"):  # a Ctrl-C lands after all three
            try:
                path.mkdir(parents=True)
                made = True
            except FileExistsError:
                pass
            hold_lock(path)
            locked = True
            marked = not (path / MARKER).is_file()
            mark(path, output.kind)
        claimed = True
        yield place
        with interrupts.deferred():  # the staged files take their names together
            for tmp, final in place.staged:
                os.replace(tmp, final)
    except BaseException:  # only what this call did is undone; folders that existed before stay
        for tmp, _final in place.staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(place.made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if not output.existed and not (claimed and keep()):
            if made:
                shutil.rmtree(path, ignore_errors=True)
            elif locked and output.was_empty:  # the user's empty folder: empty again
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        elif marked and not claimed:
            (path / MARKER).unlink(missing_ok=True)
        raise


def _beside(output: Output, option: str) -> Iterator[Place]:
    out, marked = output.path, output.kind != "synth"
    if (out / LOCK).is_file():  # the folder to be replaced: no other command may start on it meanwhile
        hold_lock(out, option)
    tmp = _temp_name(out)
    try:
        with interrupts.deferred():  # made, locked and marked together; a Ctrl-C lands after, inside this try
            tmp.mkdir()
            if marked:
                hold_lock(tmp)
                mark(tmp, output.kind)
        yield Place(tmp, out)
        if out.exists() or out.is_symlink():
            _check_replaceable(tmp, out, option)
            old = _temp_name(out, "old")
            with interrupts.deferred():  # never neither folder at ``out``
                os.replace(out, old)
                os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        moved_lock(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_replaceable(tmp: Path, out: Path, option: str) -> None:
    """Only an empty folder or an unlocked output of the same kind at ``out`` may be replaced."""
    made = output_kind(tmp)
    name = KINDS[made][0] if made in KINDS else "output"
    try:
        empty = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    except OSError:
        empty = False
    if not empty and (out.is_symlink() or not out.is_dir() or output_kind(out) != made):
        raise OutputError(
            f"{printable(out)}: appeared while this command ran and is not an aerotune {name}; it was left as it "
            f"is and nothing was written; run again with another {option}"
        )
    hold_lock(out, option)  # another command that made the same new folder and still writes it: refused


def _moved_aside(output: Output) -> Iterator[Place]:
    out, earlier = output.path, None
    if output.existed:
        earlier = _temp_name(out, "old")
        os.replace(out, earlier)
    try:
        yield from _in_place(dataclasses.replace(output, existed=False), lambda: False)
    except BaseException:
        if earlier is not None:
            with interrupts.deferred():  # a second Ctrl-C must not leave the earlier output under its hidden name
                shutil.rmtree(out, ignore_errors=True)
                os.replace(earlier, out)
        raise
    if earlier is not None:
        shutil.rmtree(earlier, ignore_errors=True)


def sweep(out: Path) -> None:
    """Remove the temporary folders and files beside ``out`` (``.NAME.tmp-PID-…``) whose process is gone
    (SIGKILL, out of memory: its clean-up never ran) and whose lock nobody holds."""
    for p in out.parent.glob(f".{glob.escape(out.name)}.tmp-*"):
        pid = p.name[len(out.name) + 6 :].split("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            with contextlib.suppress(OutputError):  # locked: a process it started still writes it
                check_not_busy(p, "")
                shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True
