"""Which folders of a dataset hold its images and masks: the usual folder names of public datasets
(:data:`FOLDER_PAIRS`, any letter case) or the names given with ``--images-dir`` / ``--masks-dir``, and what an
error says was looked for and seen when none is found."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from aerotune.errors import DatasetError, first_line
from aerotune.reading import file_problem, show

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
#: (images folder, masks folder) names of public datasets, compared ignoring case, in order of preference.
FOLDER_PAIRS = (
    ("images", "masks"),
    ("image", "mask"),
    ("img", "gt"),
    ("images", "labels"),
    ("rgb", "label"),
    ("images", "annotations"),
    ("imgs", "masks"),
    ("images", "gt"),
    ("image", "label"),
    ("img", "mask"),
    ("img", "masks"),
    ("imgs", "labels"),
    ("rgb", "labels"),
)


def entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        problem = file_problem(folder, exc) or f"cannot be listed ({first_line(exc)})"
        raise DatasetError(f"{show(folder)}: folder {problem}") from None


def is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def pick(folder: Path, images_dir: str | None, masks_dir: str | None) -> tuple[Path | None, Path | None]:
    """The images and masks folders inside ``folder`` (either may be None)."""
    dirs = {p.name: p for p in entries(folder) if is_dir(p)}
    lower: dict[str, list[Path]] = defaultdict(list)
    for name, p in dirs.items():
        lower[name.lower()].append(p)

    def find(name: str) -> Path | None:
        if name in dirs:
            return dirs[name]
        hits = lower.get(name.lower(), [])
        return hits[0] if len(hits) == 1 else None

    if images_dir and masks_dir:
        return find(images_dir), find(masks_dir)
    pairs = [(images_dir or i, masks_dir or m) for i, m in FOLDER_PAIRS]
    found = list(dict.fromkeys((find(i), find(m)) for i, m in pairs if find(i) and find(m)))
    if len(found) > 1:
        shown = ", ".join(f"{i.name}/ + {m.name}/" for i, m in found)
        raise DatasetError(
            f"{show(folder)}: more than one pair of image and mask folders ({shown}); choose one "
            "with --images-dir NAME --masks-dir NAME"
        )
    if found:
        return found[0]
    image = next((find(i) for i, _ in pairs if find(i)), None)
    mask = next((find(m) for _, m in pairs if find(m)), None)
    return image, mask


def looked_for(images_dir: str | None, masks_dir: str | None) -> str:
    """The folder pairs looked for, as an error shows them."""
    pairs = dict.fromkeys(f"{images_dir or i}/+{masks_dir or m}/" for i, m in FOLDER_PAIRS)
    return ", ".join(pairs) + ("" if images_dir and masks_dir else " (any letter case)")


def seen(root: Path, *, deep: bool = True) -> str:
    """What ``root`` holds (and, if ``deep``, its first sub-folder), as an error shows it."""
    found = [p for p in entries(root) if not p.name.startswith(".")]
    names = [show(p.name) + ("/" if is_dir(p) else "") for p in found[:10]]
    text = ", ".join(names) + (f" and {len(found) - 10} more" if len(found) > 10 else "") or "nothing"
    sub = next((p for p in found if is_dir(p)), None) if deep else None
    if sub is not None:
        inner = [show(p.name) + "/" for p in entries(sub) if is_dir(p) and not p.name.startswith(".")][:6]
        text += f" ({show(sub.name)}/ holds {', '.join(inner) if inner else 'no folders'})"
    return text


def image_names(folder: Path) -> list[tuple[str, str]]:
    """(stem, extension) of the files in ``folder`` named like images."""
    return [
        (p.stem, p.suffix)
        for p in entries(folder)
        if not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES and not is_dir(p)
    ]


def inside_a_dataset(root: Path, images_dir: str | None, masks_dir: str | None) -> str | None:
    """When ``root`` is itself the images or masks folder of a dataset (a usual slip: ``--data data/images``),
    the one-line fix that names the dataset folder; otherwise None."""
    parent = root.absolute().parent
    try:
        image, mask = pick(parent, images_dir, masks_dir)
    except DatasetError:
        return None
    if image is None or mask is None or root.name not in (image.name, mask.name):
        return None
    which, other = ("images", mask) if root.name == image.name else ("masks", image)
    return (
        f"{show(root)}: this is the {which} folder of a dataset; pass the folder that holds it and "
        f"{other.name}/ instead: --data {show(root.parent if root.parent.name else parent)}"
    )
