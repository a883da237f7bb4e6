"""Finding image/mask pairs by file stem, never by listing order (reading masks: :mod:`aerotune.data.masks`).

Two layouts are recognised, each with the usual folder names (:data:`FOLDER_PAIRS`, any letter case) or the
names given with ``--images-dir`` / ``--masks-dir``:

* tiled: ``ROOT/<folder>/images/*`` with ``ROOT/<same folder>/masks/*`` (the Dubai set);
* flat: ``ROOT/images`` and ``ROOT/masks``.

Names that differ by a suffix (``123_sat.jpg`` + ``123_mask.png``) pair once ``--image-suffix`` /
``--mask-suffix`` are given, and may then share one folder (the root, each tile folder, or a folder named as
both); without them, a refusal names the options when the names show them (:mod:`aerotune.data.stems`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aerotune.data import stems
from aerotune.data.folders import (  # noqa: F401 - FOLDER_PAIRS, IMAGE_SUFFIXES: imported from here too
    FOLDER_PAIRS,
    IMAGE_SUFFIXES,
    entries,
    image_names,
    inside_a_dataset,
    is_dir,
    looked_for,
    pick,
    seen,
)
from aerotune.data.rasters import check_training_image, decode, is_geotiff, raster_size, read_image  # noqa: F401
from aerotune.errors import DatasetError
from aerotune.reading import file_problem, show

if TYPE_CHECKING:
    from aerotune.config import DataConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One image and its mask. ``tile`` is the folder it came from ("" for the flat layout)."""

    image: Path
    mask: Path
    tile: str
    stem: str

    @property
    def name(self) -> str:
        return show(f"{self.tile}/{self.stem}" if self.tile else self.stem)


@dataclass
class Problem:
    path: Path | None
    message: str
    sample: Sample | None = None  # the pair this problem rules out, if any

    def __str__(self) -> str:
        return f"{show(self.path)}: {self.message}" if self.path else self.message


@dataclass
class Discovery:
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    layout: str = "flat"


def _walk(
    folder: Path, *, deep: bool, prefix: str = "", visited: set[Path] | None = None
) -> Iterator[tuple[Path, str]]:
    """Entries of ``folder`` named like images, each with its sub-folder path relative to ``folder`` ("" or
    ``"18/1234/"``); with ``deep``, sub-folders too (web-map tile trees), each real folder once (no link loops)."""
    visited = set() if visited is None else visited
    visited.add(folder.resolve())
    for p in entries(folder):
        if p.name.startswith("."):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            yield p, prefix
        elif deep and is_dir(p) and p.resolve() not in visited:
            yield from _walk(p, deep=True, prefix=f"{prefix}{p.name}/", visited=visited)


def _files(
    folder: Path, problems: list[Problem], odd: list[Problem], bad: set[str], sort: Callable, *, deep: bool
) -> dict[str, dict[str, Path]]:
    """Image files in ``folder`` (and, if ``deep``, its sub-folders) by kind ("image", "mask") and stem: the path
    relative to ``folder`` with the suffix stripped by ``sort``, which returns the kind and stem, or why the name
    fits neither (a problem in ``odd``); odd entries named like images become problems (their stems: ``bad``)."""
    out: dict[str, dict[str, Path]] = {"image": {}, "mask": {}}
    for p, prefix in _walk(folder, deep=deep):
        problem, kind = file_problem(p), sort(p.stem)
        if isinstance(kind, str):
            odd.append(Problem(p, kind))
            continue
        kind, stem = kind[0], prefix + kind[1]
        if problem and "permission denied" not in problem:
            problems.append(Problem(p, problem))
            bad.add(stem)
        elif stem in out[kind]:
            problems.append(
                Problem(
                    p,
                    f"two files share the name {show(stem)!s} ({show(out[kind][stem].name)} and "
                    f"{show(p.name)}), so the pairing is ambiguous; keep one of them",
                )
            )
        else:
            out[kind][stem] = p
    return out


def _holds_images(folder: Path) -> bool:
    try:
        return bool(image_names(folder))
    except DatasetError:  # an unlistable sub-folder: the usual "no folders found" error describes the root
        return False


def _suggestion(folder: Path, image_dir: Path, mask_dir: Path, pairs: int, given: tuple) -> Problem | None:
    """One problem naming the suffix options that would pair the files, when their names show them."""
    if image_dir == mask_dir:
        text = stems.suggestion(image_names(image_dir), None, pairs, given)
        return Problem(image_dir, text) if text else None
    where = f" in {show(image_dir.name)}/ and {show(mask_dir.name)}/"
    text = stems.suggestion(image_names(image_dir), image_names(mask_dir), pairs, given, where)
    return Problem(folder, text) if text else None


def _nothing_found(root: Path, image_dirs: list[Path | None]) -> Problem:
    """Why no pair was found where the folders were: an images folder of sub-folders without image files is named
    with the layout aerotune expects."""
    for folder in (d for d in image_dirs if d is not None):
        subs = [show(p.name) + "/" for p in entries(folder) if is_dir(p) and not p.name.startswith(".")]
        if subs and not image_names(folder):
            shown = ", ".join(subs[:6]) + (f" and {len(subs) - 6} more" if len(subs) > 6 else "")
            return Problem(
                folder,
                f"holds only sub-folders ({shown}) and no image files ({' '.join(IMAGE_SUFFIXES)}) in any of them; "
                f"aerotune expects image files in {show(folder.name)}/ and the masks folder, directly or in "
                "sub-folders with the same relative paths (images/18/5/7.webp + masks/18/5/7.png)",
            )
    return Problem(root, f"no image files found ({' '.join(IMAGE_SUFFIXES)})")


#: One place pairs are looked for: its tile ("" in the flat layout), its folder, and its images and masks folders.
Group = tuple[str, Path, "Path | None", "Path | None"]


def discover(
    root: str | Path,
    *,
    images_dir: str | None = None,
    masks_dir: str | None = None,
    image_suffix: str | None = None,
    mask_suffix: str | None = None,
) -> Discovery:
    """Find every image/mask pair under ``root``; unpaired or odd files become problems, not errors.

    ``image_suffix`` / ``mask_suffix`` are stripped from the stems before pairing (the sample's stem is the
    stripped one); with one of them, a folder may hold both kinds (``--images-dir X --masks-dir X``, or a
    dataset root or tile folder that holds image files and no image/mask folders).
    """
    root = Path(root)
    _check_root(root)
    given = (image_suffix, mask_suffix)
    groups, layout = _groups(root, images_dir, masks_dir, given)
    samples: list[Sample] = []
    problems: list[Problem] = []
    for group in groups:
        problems.extend(_missing_folders(root, group, images_dir, masks_dir))
        _pair_group(group, given, samples, problems)
    if not samples and not problems:
        problems.append(_nothing_found(root, [g[2] for g in groups]))
    problems.sort(key=lambda p: not p.message.startswith(stems.HINT))  # a suggestion comes first
    return Discovery(samples, problems, layout)


def _check_root(root: Path) -> None:
    """Refuse a dataset folder that is missing or not a folder."""
    if not is_dir(root):
        problem = "not found"
        if root.is_symlink() or root.exists():
            problem = f"is not usable ({file_problem(root) or 'it is a file, not a folder'})"
        raise DatasetError(
            f"{show(root)}: dataset folder {problem}; pass a folder with images/ and masks/ (or "
            "tile folders that each hold them)"
        )


def _groups(
    root: Path, images_dir: str | None, masks_dir: str | None, given: tuple[str | None, str | None]
) -> tuple[list[Group], str]:
    """The places to look for pairs in, and the layout (flat or tiled); none at all is a ``DatasetError``."""
    groups: list[Group] = []
    image, mask = pick(root, images_dir, masks_dir)
    if image or mask:
        return [("", root, image, mask)], "flat"
    if any(given) and image_names(root):
        return [("", root, root, root)], "flat"
    for sub in (p for p in entries(root) if is_dir(p) and not p.name.startswith(".")):
        image, mask = pick(sub, images_dir, masks_dir)
        if image or mask:
            groups.append((sub.name, sub, image, mask))
        elif any(given) and image_names(sub):
            groups.append((sub.name, sub, sub, sub))
    if not groups:
        _no_folders(root, images_dir, masks_dir, given)
    return groups, "tiled"


def _no_folders(root: Path, images_dir: str | None, masks_dir: str | None, given: tuple) -> None:
    """Raise the ``DatasetError`` for a dataset folder without image and mask folders, naming the likely fix."""
    shared = next((f for f in (root, *entries(root)) if is_dir(f) and _holds_images(f)), None)
    hint = _suggestion(shared, shared, shared, 0, given) if shared else None
    if hint:
        raise DatasetError(str(hint))
    slip = inside_a_dataset(root, images_dir, masks_dir)
    if slip:
        raise DatasetError(slip)
    raise DatasetError(
        f"{show(root)}: no image and mask folders found; looked for "
        f"{looked_for(images_dir, masks_dir)} in it and in its sub-folders, and saw "
        f"{seen(root)}; name the folders with --images-dir NAME --masks-dir NAME"
    )


def _missing_folders(root: Path, group: Group, images_dir: str | None, masks_dir: str | None) -> list[Problem]:
    """A problem for each of a group's images and masks folders that was not found."""
    _tile, folder, image_dir, mask_dir = group
    out = []
    for part, found, name in (("images", image_dir, images_dir), ("masks", mask_dir, masks_dir)):
        if found is None:
            k = 0 if part == "images" else 1
            looked = name or "/, ".join(dict.fromkeys(pair[k] for pair in FOLDER_PAIRS))
            out.append(
                Problem(
                    folder / (name or part),
                    f"folder missing (looked for {looked}/, saw "
                    f"{seen(folder, deep=False)}); add the {part} of {show(folder.name or root)} "
                    f"or name their folder with --{part}-dir NAME",
                )
            )
    return out


def _pair_group(group: Group, given: tuple, samples: list[Sample], problems: list[Problem]) -> None:
    """Pair the image and mask files of one group by stem, into ``samples``; the rest into ``problems``."""
    tile, folder, image_dir, mask_dir = group
    shared = image_dir is not None and image_dir == mask_dir
    if shared and not any(given):
        problems.append(_suggestion(folder, image_dir, mask_dir, 0, given) or Problem(image_dir, stems.SHARED))
        return
    bad: set[str] = set()  # stems of broken links, folders named like images...: already reported
    odd: list[Problem] = []  # names that fit no suffix, pairs without a partner: a suffix may explain them
    files: dict[str, dict[str, Path]] = {"image": {}, "mask": {}}
    for kind, folder_ in (("image", image_dir), ("mask", mask_dir)):
        if folder_ is not None and (kind == "image" or not shared):
            sort = stems.sorter(kind, *given, shared=shared)
            deep = folder_ != folder  # the root or a tile folder holding both kinds: its own files only
            for k, found_ in _files(folder_, problems, odd, bad, sort, deep=deep).items():
                files[k].update(found_)
    images, masks = files["image"], files["mask"]
    mname, iname = (mask_dir or folder / "masks").name, (image_dir or folder / "images").name
    for stem in sorted(images.keys() | masks.keys()):
        if stem in bad and (stem not in masks or stem not in images):
            continue
        if stem not in masks:
            want = f"{show(mname)}/{show(stem)}{show(given[1] or '')}.png"
            odd.append(Problem(images[stem], f"image has no mask; add {want} or remove it"))
        elif stem not in images:
            want = f"{show(iname)}/{show(stem)}{show(given[0] or '')}.jpg"
            odd.append(Problem(masks[stem], f"mask has no image; add {want} or remove it"))
        else:
            samples.append(Sample(images[stem], masks[stem], tile, stem))
    hint = None
    if odd and image_dir is not None and mask_dir is not None:
        hint = _suggestion(folder, image_dir, mask_dir, len(images.keys() & masks.keys()), given)
    problems.extend([hint] if hint else odd)


def discover_for(root: str | Path, config: DataConfig) -> Discovery:
    """:func:`discover` with the folder names and file name suffixes of ``config``."""
    names = {k: getattr(config, k) for k in ("images_dir", "masks_dir", "image_suffix", "mask_suffix")}
    return discover(root, **names)
