"""Which image files ``predict`` segments and what each output is named: files given by name, the images of a
folder, or a web-map tile tree (``images/<z>/<x>/<y>.webp``) whose relative paths the outputs keep."""

from __future__ import annotations

from pathlib import Path

from aerotune.data.folders import FOLDER_PAIRS, IMAGE_SUFFIXES, entries, is_dir
from aerotune.errors import DatasetError
from aerotune.outputs import MARKER
from aerotune.reading import show

#: The names of masks folders, which a walk through a dataset folder leaves out (lower case).
MASK_FOLDERS = {m for _, m in FOLDER_PAIRS}


def _images_in(folder: Path) -> list[Path]:
    return [
        p for p in entries(folder) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    ]


def _walk(folder: Path, prefix: str, skip: set[Path], visited: set[Path]) -> list[tuple[Path, str]]:
    """Every image under ``folder`` with its path relative to the walk's start, without the extension. Left
    out: hidden entries, ``skip`` (the output folder), aerotune's own output folders and masks folders."""
    visited.add(folder.resolve())
    found = [(p, prefix + p.stem) for p in _images_in(folder)]
    for sub in entries(folder):
        if not is_dir(sub) or sub.name.startswith(".") or sub.resolve() in skip | visited:
            continue
        if (sub / MARKER).exists() or sub.name.lower() in MASK_FOLDERS:
            continue
        found += _walk(sub, f"{prefix}{sub.name}/", skip, visited)
    return found


def list_inputs(inputs: list[str | Path], out: str | Path | None = None) -> list[tuple[Path, str]]:
    """``(image file, output name)`` of every input: a file named directly keeps its stem; a folder that holds
    images gives those (not its sub-folders), named by their stems; a folder that holds only sub-folders (a
    tile tree) gives every image below it, named by the path relative to it (``18/1234/5678``), leaving out
    ``out``, aerotune's output folders and masks folders."""
    skip = {Path(out).resolve()} if out is not None else set()
    files: list[tuple[Path, str]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            direct = sorted(_images_in(item))
            files += [(p, p.stem) for p in direct] if direct else _walk(item, "", skip, set())
        elif item.is_file():
            files.append((item, item.stem))
        else:
            raise DatasetError(f"{item}: no such image or folder; pass image files or folders of images")
    if not files:
        raise DatasetError(
            f"{', '.join(map(str, inputs))}: no images found ({' '.join(IMAGE_SUFFIXES)}) in it or in its "
            "sub-folders; pass image files, or the folder that holds them (for a dataset, its images/ folder)"
        )
    names = [n for _, n in files]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DatasetError(
            f"two inputs are named {show(dup)!r}; their masks would overwrite each other: predict them "
            "into separate --out folders"
        )
    return files


def list_images(inputs: list[str | Path]) -> list[Path]:
    """Image files named directly or found in the given folders (see :func:`list_inputs`)."""
    return [p for p, _ in list_inputs(inputs)]
