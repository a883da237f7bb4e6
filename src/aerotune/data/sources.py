"""Finding image/mask pairs (by file stem, never by listing order) and reading them.

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
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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
from aerotune.data.palette import Palette, count_colors, key_text
from aerotune.data.rasters import check_training_image, decode, is_geotiff, raster_size, read_image  # noqa: F401
from aerotune.errors import DatasetError
from aerotune.reading import file_problem, open_image, show

if TYPE_CHECKING:
    from aerotune.config import DataConfig

log = logging.getLogger(__name__)

#: Above this share of unknown mask pixels the palette itself is probably wrong.
WRONG_PALETTE_SHARE = 0.5
#: Masks whose aspect ratio differs from their image's by more than this are never resized.
ASPECT_TOLERANCE = 0.01
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
PAIR_HINT = "or pass --skip-bad-pairs to leave such pairs out"


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


def _files(
    folder: Path, problems: list[Problem], odd: list[Problem], bad: set[str], sort: Callable
) -> dict[str, dict[str, Path]]:
    """Image files in ``folder`` by kind ("image", "mask") and stem (suffix stripped, by ``sort``, which returns
    the kind and stem, or why the name fits neither: a problem in ``odd``); odd entries named like images
    become problems (their stems: ``bad``)."""
    out: dict[str, dict[str, Path]] = {"image": {}, "mask": {}}
    for p in entries(folder):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        problem, kind = file_problem(p), sort(p.stem)
        if isinstance(kind, str):
            odd.append(Problem(p, kind))
            continue
        kind, stem = kind
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
    if not is_dir(root):
        problem = "not found"
        if root.is_symlink() or root.exists():
            problem = f"is not usable ({file_problem(root) or 'it is a file, not a folder'})"
        raise DatasetError(
            f"{show(root)}: dataset folder {problem}; pass a folder with images/ and masks/ (or "
            "tile folders that each hold them)"
        )
    given = (image_suffix, mask_suffix)
    groups: list[tuple[str, Path, Path | None, Path | None]] = []
    layout = "flat"
    image, mask = pick(root, images_dir, masks_dir)
    if image or mask:
        groups.append(("", root, image, mask))
    elif any(given) and image_names(root):
        groups.append(("", root, root, root))
    else:
        layout = "tiled"
        for sub in (p for p in entries(root) if is_dir(p) and not p.name.startswith(".")):
            image, mask = pick(sub, images_dir, masks_dir)
            if image or mask:
                groups.append((sub.name, sub, image, mask))
            elif any(given) and image_names(sub):
                groups.append((sub.name, sub, sub, sub))
    if not groups:
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
    samples: list[Sample] = []
    problems: list[Problem] = []
    for tile, folder, image_dir, mask_dir in groups:
        for part, found, name in (("images", image_dir, images_dir), ("masks", mask_dir, masks_dir)):
            if found is None:
                k = 0 if part == "images" else 1
                looked = name or "/, ".join(dict.fromkeys(pair[k] for pair in FOLDER_PAIRS))
                problems.append(
                    Problem(
                        folder / (name or part),
                        f"folder missing (looked for {looked}/, saw "
                        f"{seen(folder, deep=False)}); add the {part} of {show(folder.name or root)} "
                        f"or name their folder with --{part}-dir NAME",
                    )
                )
        shared = image_dir is not None and image_dir == mask_dir
        if shared and not any(given):
            problems.append(_suggestion(folder, image_dir, mask_dir, 0, given) or Problem(image_dir, stems.SHARED))
            continue
        bad: set[str] = set()  # stems of broken links, folders named like images...: already reported
        odd: list[Problem] = []  # names that fit no suffix, pairs without a partner: a suffix may explain them
        files: dict[str, dict[str, Path]] = {"image": {}, "mask": {}}
        for kind, folder_ in (("image", image_dir), ("mask", mask_dir)):
            if folder_ is not None and (kind == "image" or not shared):
                sort = stems.sorter(kind, *given, shared=shared)
                for k, found_ in _files(folder_, problems, odd, bad, sort).items():
                    files[k].update(found_)
        images, masks = files["image"], files["mask"]
        mname, iname = (mask_dir or folder / "masks").name, (image_dir or folder / "images").name
        for stem in sorted(images.keys() | masks.keys()):
            if stem in bad and (stem not in masks or stem not in images):
                continue
            if stem not in masks:
                want = f"{show(mname)}/{show(stem)}{show(mask_suffix or '')}.png"
                odd.append(Problem(images[stem], f"image has no mask; add {want} or remove it"))
            elif stem not in images:
                want = f"{show(iname)}/{show(stem)}{show(image_suffix or '')}.jpg"
                odd.append(Problem(masks[stem], f"mask has no image; add {want} or remove it"))
            else:
                samples.append(Sample(images[stem], masks[stem], tile, stem))
        hint = None
        if odd and image_dir is not None and mask_dir is not None:
            hint = _suggestion(folder, image_dir, mask_dir, len(images.keys() & masks.keys()), given)
        problems.extend([hint] if hint else odd)
    if not samples and not problems:
        problems.append(Problem(root, f"no image files found ({' '.join(IMAGE_SUFFIXES)})"))
    problems.sort(key=lambda p: not p.message.startswith(stems.HINT))  # a suggestion comes first
    return Discovery(samples, problems, layout)


def discover_for(root: str | Path, config: DataConfig) -> Discovery:
    """:func:`discover` with the folder names and file name suffixes of ``config``."""
    names = {k: getattr(config, k) for k in ("images_dir", "masks_dir", "image_suffix", "mask_suffix")}
    return discover(root, **names)


def image_size(path: Path, *, what: str = "image") -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels; a mask of floating-point values is refused."""
    if is_geotiff(path):
        return raster_size(path, what=what)
    with open_image(path, what=what) as im:
        if what == "mask" and im.mode.startswith("F"):
            raise DatasetError(
                f"{show(path)}: mask holds floating-point values (mode {im.mode}), not integer class ids or "
                "colours; save it as uint8 (or uint16) class ids, or as an 8-bit RGB image of colours"
            )
        return im.size


def read_mask(path: Path, palette: Palette | None = None) -> np.ndarray:
    """Decode a mask for ``palette``: (H, W, 3) uint8 colours, or (H, W) class ids for an index palette.

    Colour masks may be RGB, RGBA, P, L, LA or 1-bit; id masks L, P (the palette index is the id), 1-bit,
    16-bit (I;16, I), or RGB/RGBA with three equal channels. Other modes are a ``DatasetError`` that says why.
    GeoTIFF masks are decoded by Pillow too: one band of class ids, or three uint8 bands of colours.
    """
    with open_image(path, what="mask") as im:
        im.load()
        mode = im.mode
        if palette is None or not palette.by_id:
            if mode in SIXTEEN_BIT:
                raise DatasetError(
                    f"{show(path)}: mask is a 16-bit image (mode {mode}): it holds numbers, not "
                    "colours; if they are class ids, map names to ids in the classes file "
                    "(Building = 1), else save the mask as an 8-bit RGB PNG"
                )
            if mode not in ("RGB", "RGBA", "P", "PA", "L", "LA", "1"):
                raise DatasetError(
                    f"{show(path)}: mask is a {mode} image; save masks as RGB, palette or greyscale PNGs"
                )
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
        if mode in ("L", "P", "1") or mode in SIXTEEN_BIT:
            return np.asarray(im).astype(np.int64 if mode in SIXTEEN_BIT else np.uint8)
        if mode in ("LA", "PA"):
            return np.asarray(im.getchannel(0), dtype=np.uint8)
        if mode in ("RGB", "RGBA"):
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
                return rgb[..., 0].copy()
            raise DatasetError(
                f"{show(path)}: mask is a colour (RGB) image but the classes file maps names to ids; "
                'give colours in the classes file (Building = "#3C1098") or save masks as '
                "greyscale or palette PNGs of class ids"
            )
        raise DatasetError(
            f"{show(path)}: mask is a {mode} image; masks of class ids must be greyscale (L), "
            "palette (P), 1-bit or 16-bit images"
        )


def read_mask_rgb(path: Path) -> np.ndarray:
    """Decode a colour mask of any PNG mode (RGB, RGBA, P, L, ...) into an (H, W, 3) uint8 colour array."""
    return read_mask(path)


def size_problem(image: tuple[int, int], mask: tuple[int, int], mask_size: str) -> str | None:
    """Why a mask of size ``mask`` cannot label an image of size ``image`` (None when it can)."""
    if mask == image:
        return None
    ratio = (mask[0] / mask[1]) / (image[0] / image[1])
    same_shape = abs(ratio - 1) <= ASPECT_TOLERANCE
    if same_shape and mask_size == "resize":
        return None
    text = f"mask is {mask[0]}x{mask[1]} but its image is {image[0]}x{image[1]}; "
    if same_shape:
        return text + f"pass --mask-size resize to resample the mask to its image (nearest neighbour), {PAIR_HINT}"
    return (
        text + f"their aspect ratios differ by {abs(ratio - 1):.1%} (more than {ASPECT_TOLERANCE:.0%}), so "
        f"the mask cannot be resized; give both the same size, {PAIR_HINT}"
    )


@dataclass
class Inspection:
    """What ``aerotune data inspect`` reports. Colours are mask values: RGB tuples, or ids for index palettes."""

    root: Path
    layout: str
    samples: list[Sample]
    sizes: dict[str, tuple[int, int]]
    colors: dict[tuple[int, int, int] | int, int]
    color_files: dict[tuple[int, int, int] | int, list[str]]
    problems: list[Problem]
    palette: Palette

    @property
    def unknown(self) -> dict[tuple[int, int, int] | int, int]:
        known = set(self.palette.keys)
        return {c: n for c, n in self.colors.items() if c not in known}

    @property
    def total_pixels(self) -> int:
        return sum(self.colors.values())


def inspect_dataset(
    root: str | Path,
    palette: Palette,
    *,
    patch_size: int = 256,
    scale: float = 1.0,
    images_dir: str | None = None,
    masks_dir: str | None = None,
    image_suffix: str | None = None,
    mask_suffix: str | None = None,
    mask_size: str = "error",
    bands: tuple[int, ...] | None = None,
) -> Inspection:
    """Read every pair once (one image in memory at a time) and list sizes, colours and problems (``bands``:
    the GeoTIFF bands that training would read, checked)."""
    names = {"image_suffix": image_suffix, "mask_suffix": mask_suffix}
    found = discover(root, images_dir=images_dir, masks_dir=masks_dir, **names)
    problems = list(found.problems)
    colors: dict = defaultdict(int)
    color_files: dict = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    good: list[Sample] = []
    for s in found.samples:
        try:
            size = image_size(s.image)
            if bands:
                check_training_image(s.image, bands)
            decode(s.image)  # decode fully: truncated JPEGs only fail here
            mask = read_mask(s.mask, palette)
        except DatasetError as exc:
            problems.append(Problem(None, str(exc), s))
            continue
        problem = size_problem(size, (mask.shape[1], mask.shape[0]), mask_size)
        if problem:
            problems.append(Problem(s.mask, problem, s))
            continue
        scaled = (round(size[0] * scale), round(size[1] * scale))
        if min(scaled) < patch_size:
            problems.append(
                Problem(
                    s.image,
                    f"image is {scaled[0]}x{scaled[1]} (after scale {scale}), smaller "
                    f"than one {patch_size} patch; use a smaller --patch-size",
                    s,
                )
            )
        sizes[s.name] = size
        for c, n in count_colors(mask).items():
            colors[c] += n
            color_files[c].append(show(s.mask))
        good.append(s)
    insp = Inspection(Path(root), found.layout, good, sizes, dict(colors), dict(color_files), problems, palette)
    if insp.unknown:
        problems.append(Problem(None, unknown_colors_message(insp.unknown, insp.color_files, insp.total_pixels)))
    return insp


def unknown_colors_message(unknown: dict, files: dict, total: int) -> str:
    """One line naming each unknown colour (or id), its pixel count and files, and the fix."""
    share = sum(unknown.values()) / max(total, 1)
    by_id = all(isinstance(k, int) for k in unknown)
    noun = "ids" if by_id else "colours"
    parts = []
    for key, n in sorted(unknown.items(), key=lambda kv: -kv[1])[:8]:
        where = files.get(key, [])
        shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        parts.append(f"{key_text(key)} ({n} px in {shown})")
    more = f" and {len(unknown) - 8} more {noun}" if len(unknown) > 8 else ""
    jpegs = sorted({f for key in unknown for f in files.get(key, []) if f.lower().endswith((".jpg", ".jpeg"))})
    if jpegs and not by_id:  # lossy compression blends colours: no palette or ignore class fixes that
        return (
            f"{share:.0%} of mask pixels have colours outside the palette, and the masks are JPEG files "
            f"({', '.join(jpegs[:3])}{' …' if len(jpegs) > 3 else ''}), whose lossy compression changes colours: "
            f"{'; '.join(parts[:3])}; save the masks as PNG from their source (lossless), then rerun"
        )
    if share > WRONG_PALETTE_SHARE:
        greys = not by_id and all(k[0] == k[1] == k[2] and k[0] < 64 for k in unknown)
        hint = (
            " (these look like class ids in greyscale masks: map names to ids in the classes file, Building = 1)"
            if greys
            else ""
        )
        return (
            f"{share:.0%} of mask pixels have {noun} outside the palette, so the palette looks wrong for "
            f"these masks: {'; '.join(parts)}{more}; pass a classes file that matches the masks with "
            f"--classes{hint}"
        )
    return (
        f"unknown mask {noun} ({share:.2%} of pixels): {'; '.join(parts)}{more}; add them to a classes file "
        "(--classes) or pass --unknown-colors ignore to skip them in loss and metrics"
    )
