"""Finding image/mask pairs (by file stem, never by listing order) and reading them.

Two layouts are recognised:

* tiled: ``ROOT/<folder>/images/*`` with ``ROOT/<same folder>/masks/*`` (the Dubai set);
* flat: ``ROOT/images`` and ``ROOT/masks``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from aerotune.data.palette import Palette, count_colors, to_hex
from aerotune.errors import DatasetError, first_line

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
#: Above this share of unknown mask pixels the palette itself is probably wrong.
WRONG_PALETTE_SHARE = 0.5


@dataclass(frozen=True)
class Sample:
    """One image and its mask. ``tile`` is the folder it came from ("" for the flat layout)."""

    image: Path
    mask: Path
    tile: str
    stem: str

    @property
    def name(self) -> str:
        return f"{self.tile}/{self.stem}" if self.tile else self.stem


@dataclass
class Problem:
    path: Path | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class Discovery:
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    layout: str = "flat"


def _files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def discover(root: str | Path) -> Discovery:
    """Find every image/mask pair under ``root``; unpaired files become problems, not errors."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found; pass a folder with images/ and masks/ "
                           "(or tile folders that each hold them)")
    groups: list[tuple[str, Path]] = []
    layout = "flat"
    if (root / "images").is_dir() or (root / "masks").is_dir():
        groups.append(("", root))
    else:
        layout = "tiled"
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if (sub / "images").is_dir() or (sub / "masks").is_dir():
                groups.append((sub.name, sub))
    if not groups:
        raise DatasetError(f"{root}: no images/ and masks/ folders found; use ROOT/images + ROOT/masks "
                           "or ROOT/<tile>/images + ROOT/<tile>/masks")
    samples: list[Sample] = []
    problems: list[Problem] = []
    for tile, folder in groups:
        for part in ("images", "masks"):
            if not (folder / part).is_dir():
                problems.append(Problem(folder / part, f"folder missing; add the {part} of {folder.name or root}"))
        images = _files(folder / "images") if (folder / "images").is_dir() else {}
        masks = _files(folder / "masks") if (folder / "masks").is_dir() else {}
        for stem in sorted(images.keys() | masks.keys()):
            if stem not in masks:
                problems.append(Problem(images[stem], f"image has no mask; add masks/{stem}.png or remove it"))
            elif stem not in images:
                problems.append(Problem(masks[stem], f"mask has no image; add images/{stem}.jpg or remove it"))
            else:
                samples.append(Sample(images[stem], masks[stem], tile, stem))
    if not samples and not problems:
        problems.append(Problem(root, "no image files found (.jpg .jpeg .png .tif)"))
    return Discovery(samples, problems, layout)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: cannot read image ({first_line(exc)}); replace or remove the file") from None


def read_image(path: Path) -> Image.Image:
    """Decode an image as RGB; a corrupt or truncated file is a ``DatasetError``."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image ({first_line(exc)}); replace or remove the file") from None


def read_mask_rgb(path: Path) -> np.ndarray:
    """Decode a mask of any PNG mode (RGB, RGBA, P, L, ...) into an (H, W, 3) uint8 colour array."""
    return np.asarray(read_image(path), dtype=np.uint8)


@dataclass
class Inspection:
    """What ``aerotune data inspect`` reports."""

    root: Path
    layout: str
    samples: list[Sample]
    sizes: dict[str, tuple[int, int]]
    colors: dict[tuple[int, int, int], int]
    color_files: dict[tuple[int, int, int], list[str]]
    problems: list[Problem]
    palette: Palette

    @property
    def unknown(self) -> dict[tuple[int, int, int], int]:
        known = set(self.palette.colors)
        return {c: n for c, n in self.colors.items() if c not in known}

    @property
    def total_pixels(self) -> int:
        return sum(self.colors.values())


def inspect_dataset(root: str | Path, palette: Palette, *, patch_size: int = 256, scale: float = 1.0) -> Inspection:
    """Read every pair once (one image in memory at a time) and list sizes, colours and problems."""
    found = discover(root)
    problems = list(found.problems)
    colors: dict[tuple[int, int, int], int] = defaultdict(int)
    color_files: dict[tuple[int, int, int], list[str]] = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    good: list[Sample] = []
    for s in found.samples:
        try:
            size = image_size(s.image)
            read_image(s.image)  # decode fully: truncated JPEGs only fail here
            rgb = read_mask_rgb(s.mask)
        except DatasetError as exc:
            problems.append(Problem(None, str(exc)))
            continue
        mask_size = (rgb.shape[1], rgb.shape[0])
        if mask_size != size:
            problems.append(Problem(s.mask, f"mask is {mask_size[0]}x{mask_size[1]} but its image is "
                                            f"{size[0]}x{size[1]}; give both the same size"))
            continue
        scaled = (round(size[0] * scale), round(size[1] * scale))
        if min(scaled) < patch_size:
            problems.append(Problem(s.image, f"image is {scaled[0]}x{scaled[1]} (after scale {scale}), smaller "
                                             f"than one {patch_size} patch; use a smaller --patch-size"))
        sizes[s.name] = size
        for c, n in count_colors(rgb).items():
            colors[c] += n
            color_files[c].append(str(s.mask))
        good.append(s)
    insp = Inspection(Path(root), found.layout, good, sizes, dict(colors), dict(color_files), problems, palette)
    if insp.unknown:
        problems.append(Problem(None, unknown_colors_message(insp.unknown, insp.color_files, insp.total_pixels)))
    return insp


def unknown_colors_message(unknown: dict[tuple[int, int, int], int], files: dict[tuple[int, int, int], list[str]],
                           total: int) -> str:
    """One line naming each unknown colour, its pixel count and files, and the fix."""
    share = sum(unknown.values()) / max(total, 1)
    parts = []
    for color, n in sorted(unknown.items(), key=lambda kv: -kv[1])[:8]:
        where = files.get(color, [])
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        parts.append(f"{to_hex(color)} ({n} px in {shown})")
    more = f" and {len(unknown) - 8} more colours" if len(unknown) > 8 else ""
    if share > WRONG_PALETTE_SHARE:
        return (f"{share:.0%} of mask pixels have colours outside the palette, so the palette looks wrong for "
                f"these masks: {'; '.join(parts)}{more}; pass a classes file that matches the masks with --classes")
    return (f"unknown mask colours ({share:.2%} of pixels): {'; '.join(parts)}{more}; add them to a classes file "
            "(--classes) or pass --unknown-colors ignore to skip them in loss and metrics")
