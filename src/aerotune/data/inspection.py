"""``aerotune data inspect``: every pair read once, with sizes, colours and problems listed, before anything is cut."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aerotune import interrupts
from aerotune.data.masks import image_size, read_mask, size_problem, unknown_colors_message
from aerotune.data.palette import Palette, count_colors
from aerotune.data.rasters import check_training_image, decode
from aerotune.data.sources import Problem, Sample, discover
from aerotune.errors import DatasetError
from aerotune.reading import show


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
    tolerance: int = 0  # --color-tolerance: colours near a palette colour take its class
    #: The class index each mask value takes (-1: unknown), as the patch cache assigns it.
    classes: dict[tuple[int, int, int] | int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keys = list(self.colors)
        if self.palette.by_id:
            index = {k: i for i, k in enumerate(self.palette.keys)}
            self.classes = {k: index.get(k, -1) for k in keys}
        elif keys:
            self.classes = dict(zip(keys, self.palette.match(np.asarray(keys), self.tolerance).tolist()))

    @property
    def unknown(self) -> dict[tuple[int, int, int] | int, int]:
        return {c: n for c, n in self.colors.items() if self.classes[c] < 0}

    @property
    def snapped(self) -> dict[tuple[int, int, int] | int, int]:
        """Colours that are not palette colours but take a class through the tolerance, with their pixels."""
        known = set(self.palette.keys)
        return {c: n for c, n in self.colors.items() if self.classes[c] >= 0 and c not in known}

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
    color_tolerance: int = 0,
) -> Inspection:
    """Read every pair once (one image in memory at a time) and list sizes, colours and problems (``bands``:
    the GeoTIFF bands that training would read, checked; ``color_tolerance``: as ``--color-tolerance``)."""
    palette.check_tolerance(color_tolerance)
    names = {"image_suffix": image_suffix, "mask_suffix": mask_suffix}
    found = discover(root, images_dir=images_dir, masks_dir=masks_dir, **names)
    problems = list(found.problems)
    colors: dict = defaultdict(int)
    color_files: dict = defaultdict(list)
    sizes: dict[str, tuple[int, int]] = {}
    good: list[Sample] = []
    for s in found.samples:
        interrupts.check()
        read = _read_pair(s, palette, bands, mask_size, problems)
        if read is None:
            continue
        size, mask = read
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
    insp = Inspection(
        Path(root), found.layout, good, sizes, dict(colors), dict(color_files), problems, palette, color_tolerance
    )
    if insp.unknown:
        message = unknown_colors_message(
            insp.unknown, insp.color_files, insp.total_pixels, palette=palette, tolerance=color_tolerance
        )
        problems.append(Problem(None, message))
    return insp


def _read_pair(
    s: Sample, palette: Palette, bands: tuple[int, ...] | None, mask_size: str, problems: list[Problem]
) -> tuple[tuple[int, int], np.ndarray] | None:
    """A pair's image size and its mask, read whole; None (with the problem added) when it cannot be used."""
    try:
        size = image_size(s.image)
        if bands:
            check_training_image(s.image, bands)
        decode(s.image)  # decode fully: truncated JPEGs only fail here
        mask = read_mask(s.mask, palette)
    except DatasetError as exc:
        problems.append(Problem(None, str(exc), s))
        return None
    problem = size_problem(size, (mask.shape[1], mask.shape[0]), mask_size)
    if problem:
        problems.append(Problem(s.mask, problem, s))
        return None
    return size, mask
