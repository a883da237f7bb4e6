"""Procedural aerial scenes with exact masks, for the demo and the tests (nothing can be downloaded).

Sandy bare land (the majority class) with roads, buildings along them, water, vegetation and a few grey
unlabeled patches. Noise, per-object colours, lighting and blur make a U-Net learn; each class keeps a
local look of its own, so it can."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, ImageFilter

from aerotune import interrupts
from aerotune.data.palette import DUBAI_CLASSES, Palette
from aerotune.errors import DatasetError
from aerotune.outputs import writing

log = logging.getLogger(__name__)

BUILDING, LAND, ROAD, VEGETATION, WATER, UNLABELED = range(len(DUBAI_CLASSES))  # ids in DUBAI_CLASSES order
MIN_SIZE = 32
_ROOFS = np.array(
    [
        (226, 222, 214),
        (214, 198, 168),
        (188, 186, 182),
        (172, 92, 64),
        (124, 142, 160),
        (150, 120, 96),
        (236, 236, 230),
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_synthetic_dataset` wrote."""

    root: Path
    scenes: int
    tiles: int
    size: int
    seed: int
    class_fractions: dict[str, float]


def _fbm(rng: np.random.Generator, size: int, feature: float, octaves: int) -> np.ndarray:
    """Smooth noise (mean 0, std 1): bicubic upsampled random grids, coarsest features ``feature`` px."""
    total = np.zeros((size, size), np.float32)
    for k in range(octaves):
        cells = max(2, round(size / (feature / 2**k)) + 1)
        grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32))
        total += 0.5**k * np.asarray(grid.resize((size, size), Image.BICUBIC))
    return (total - total.mean()) / (total.std() + 1e-6)


def _rect(cx: ArrayLike, cy: ArrayLike, w: ArrayLike, h: ArrayLike, ang: ArrayLike) -> np.ndarray:
    """Corners (..., 4, 2 as x/y) of w x h rectangles centred at (cx, cy), rotated by ang radians."""
    cx, cy, w, h, ang = (np.asarray(v, np.float64)[..., None] for v in (cx, cy, w, h, ang))
    px, py = np.array([-0.5, 0.5, 0.5, -0.5]) * w, np.array([-0.5, -0.5, 0.5, 0.5]) * h
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([cx + px * c - py * s, cy + px * s + py * c], -1)


def _roads(
    rng: np.random.Generator, size: int, draw: ImageDraw.ImageDraw, marks: ImageDraw.ImageDraw
) -> tuple[float, list[tuple[np.ndarray, np.ndarray, int]]]:
    """Draw a (possibly rotated) street grid and maybe a curved road; return grid angle and lines."""
    theta = 0.0 if rng.random() < 0.4 else float(rng.uniform(-0.5, 0.5))
    centre, reach = np.array([size / 2, size / 2]), size * 0.75
    lines = []
    for family, ang in enumerate((theta, theta + math.pi / 2)):
        d, n = np.array([math.cos(ang), math.sin(ang)]), np.array([-math.sin(ang), math.cos(ang)])
        off = -reach + rng.uniform(0, 140)
        while off < reach:
            main = rng.random() < 0.25
            w = int(rng.integers(10, 15) if main else rng.integers(5, 10))
            side = family == 1 and rng.random() < 0.35  # side streets end somewhere
            s0 = rng.uniform(-reach, 0) if side else -reach
            s1 = s0 + rng.uniform(size * 0.3, size) if side else reach
            p0, p1 = centre + n * off + d * s0, centre + n * off + d * s1
            draw.line([tuple(p0), tuple(p1)], fill=255, width=w)
            lines.append((p0, p1, w))
            if main:  # dashed centre line, only paint: the class stays Road
                for t in np.arange(s0, s1, 18.0):
                    marks.line([tuple(centre + n * off + d * u) for u in (t, t + 9)], fill=255, width=1)
            off += rng.uniform(90, 170)
    if rng.random() < 0.6:
        phi = rng.uniform(0, math.pi)
        d, n = np.array([math.cos(phi), math.sin(phi)]), np.array([-math.sin(phi), math.cos(phi)])
        t, wave = np.linspace(-reach, reach, 64), 2 * np.pi / rng.uniform(0.6, 1.5) / size
        bend = rng.uniform(10, 10 + 0.15 * size) * np.sin(wave * t + rng.uniform(0, 2 * np.pi))
        pts = centre + n * rng.uniform(-0.3, 0.3) * size + d * t[:, None] + n * bend[:, None]
        draw.line(pts.ravel().tolist(), fill=255, width=int(rng.integers(6, 11)), joint="curve")
    return theta, lines


def _buildings(
    rng: np.random.Generator, size: int, road_im: Image.Image, occ: np.ndarray, theta: float, sun: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack rotated rectangles near roads, not on ``occ`` nor each other; return mask, roof RGB, shadow."""
    bld_im, roof_im, shadow_im = (Image.new(mode, (size, size)) for mode in ("L", "RGB", "L"))
    bdraw, rdraw, sdraw = map(ImageDraw.Draw, (bld_im, roof_im, shadow_im))
    near = np.asarray(road_im.filter(ImageFilter.BoxBlur(60))) > 3  # within ~60 px of a road
    cands = np.flatnonzero(near & ~occ) if (near & ~occ).any() else np.flatnonzero(~occ)
    n_try = 3000 * size * size // 512**2 + 50
    pts = rng.choice(cands, n_try) if cands.size else np.empty(0, np.int64)
    big = rng.random(n_try) < 0.08
    dims = np.where(big[:, None], rng.uniform(28, 60, (n_try, 2)), rng.uniform(9, 26, (n_try, 2)))
    angles = np.where(
        rng.random(n_try) < 0.8, theta + math.pi / 2 * rng.integers(0, 2, n_try), rng.uniform(0, math.pi, n_try)
    )
    colours = _ROOFS[rng.integers(0, len(_ROOFS), n_try)] + rng.normal(0, 10, (n_try, 3))
    all_corners = _rect(pts % size, pts // size, dims[:, 0], dims[:, 1], angles)
    # Bounding boxes with a small gap, so neighbouring buildings never touch.
    lo_xy = np.maximum(np.floor(all_corners.min(1)).astype(int) - 2, 0)
    hi_xy = np.ceil(all_corners.max(1)).astype(int) + 3
    target, done = rng.uniform(0.12, 0.25) * size * size, 0.0
    for i, p in enumerate(pts):
        if done >= target:
            break
        (y, x), (w, h) = divmod(int(p), size), dims[i]
        corners, (x0, y0), (x1, y1) = all_corners[i], lo_xy[i], hi_xy[i]
        if occ[y0:y1, x0:x1].any():
            continue
        occ[y0:y1, x0:x1] = True
        # Taller (bigger) buildings cast longer shadows.
        sdraw.polygon((corners + sun * rng.uniform(2, 6) * (2 if big[i] else 1)).ravel().tolist(), fill=255)
        bdraw.polygon(corners.ravel().tolist(), fill=255)
        rdraw.polygon(corners.ravel().tolist(), fill=tuple(np.clip(colours[i], 0, 255).astype(int)))
        co, si, a = math.cos(angles[i]), math.sin(angles[i]), angles[i]
        if rng.random() < 0.5:  # gabled roof: the half on one side of the ridge is darker
            inner, k = (
                (
                    _rect(x - si * h / 4, y + co * h / 4, w, h / 2, a)
                    if w >= h
                    else _rect(x + co * w / 4, y + si * w / 4, w / 2, h, a)
                ),
                0.8,
            )
        else:  # flat roof with a parapet rim
            inner, k = _rect(x, y, w - 4, h - 4, a), 1.07
        rdraw.polygon(inner.ravel().tolist(), fill=tuple(np.clip(colours[i] * k, 0, 255).astype(int)))
        done += w * h
    return np.asarray(bld_im) > 0, np.asarray(roof_im, np.float32), np.asarray(shadow_im) > 0


def _canvas(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A blank greyscale layer and its drawer."""
    return (im := Image.new("L", (size, size))), ImageDraw.Draw(im)


def _water(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Water: a coastline (noise plus a ramp) or inland blobs; some scenes have none. The mask and its depth."""
    field, water_share = _fbm(rng, size, 160, 3), 0.0
    if rng.random() < 0.8:
        water_share = rng.uniform(0.07, 0.22)
        if rng.random() < 0.5:
            a = rng.uniform(0, 2 * math.pi)
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
            field = field * 0.5 + 4 * (xx * math.cos(a) + yy * math.sin(a))
    thr = np.quantile(field, 1 - water_share) if water_share else np.inf
    return field > thr, np.clip((field - thr) / 1.2, 0, 1)


def _unlabeled(rng: np.random.Generator, size: int, theta: float, taken: np.ndarray) -> np.ndarray:
    """Unlabeled: a few grey rectangles on land (building sites, car parks the annotators skipped)."""
    unl_im, draw = _canvas(size)
    target, done = rng.uniform(0.004, 0.025) * size * size, 0.0
    while done < target:
        w, h = rng.uniform(10, 40, 2) * min(1.0, size / 256)  # small scenes: small patches, no overshoot
        draw.polygon(_rect(*rng.uniform(0, size, 2), w, h, theta).ravel().tolist(), fill=255)
        done += w * h
    return (np.asarray(unl_im) > 0) & ~taken


def _trees(
    rng: np.random.Generator, size: int, lines: list, free: np.ndarray, sun: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Trees in rows along roads and in garden clusters, on free land only: their crowns and shadows."""
    (tree_im, tdraw), (tshadow_im, tsdraw) = _canvas(size), _canvas(size)

    def tree(x: float, y: float, r: float) -> None:
        if not (0 <= x < size and 0 <= y < size and free[int(y), int(x)]):
            return  # no tree (nor its shadow) on water, roads or roofs
        for drawer, (sx, sy) in ((tdraw, (0, 0)), (tsdraw, sun * r * 0.7)):
            drawer.ellipse((x - r + sx, y - r + sy, x + r + sx, y + r + sy), fill=255)

    for p0, p1, w in lines:
        if rng.random() < 0.35:
            d = (p1 - p0) / (np.linalg.norm(p1 - p0) + 1e-6)
            r, side = rng.uniform(2.5, 4.5), rng.choice((-1, 1))
            offset = np.array([-d[1], d[0]]) * side * (w / 2 + r + 1.5)
            for t in np.arange(0, np.linalg.norm(p1 - p0), 2 * r + rng.uniform(1, 4)):
                tree(*(p0 + d * t + offset), r)
    free_idx = np.flatnonzero(free)
    for _ in range(rng.poisson(18 * size * size / 512**2) if free_idx.size else 0):
        cy, cx = divmod(int(rng.choice(free_idx)), size)
        for x, y in rng.normal((cx, cy), rng.uniform(6, 20), (int(rng.integers(5, 25)), 2)):
            tree(x, y, rng.uniform(2, 6))
    return np.asarray(tree_im) > 0, np.asarray(tshadow_im) > 0


def _layout(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """Lay out all objects; return boolean class masks plus shading layers."""
    water, depth = _water(rng, size)
    (road_im, draw), (marks_im, marks) = _canvas(size), _canvas(size)
    theta, lines = _roads(rng, size, draw, marks)
    road = (np.asarray(road_im) > 0) & ~water
    unl = _unlabeled(rng, size, theta, water | road)
    sun = np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)], np.float32)
    bld, roof, bld_shadow = _buildings(rng, size, road_im, road | water | unl, theta, sun)
    free = ~(road | water | unl | bld)
    # Vegetation: parks from thresholded noise, and trees.
    park_field = _fbm(rng, size, 90, 3)
    park = park_field > np.quantile(park_field, 1 - rng.uniform(0.05, 0.13))
    trees, tree_shadow = _trees(rng, size, lines, free, sun)
    veg = (park | trees) & free
    shadow = (bld_shadow & ~bld) | (tree_shadow & ~veg & ~bld)
    return {
        "water": water,
        "depth": depth,
        "road": road,
        "marks": (np.asarray(marks_im) > 0) & road,
        "unl": unl,
        "bld": bld,
        "roof": roof,
        "veg": veg,
        "trees": trees & veg,
        "shadow": shadow,
    }


def make_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic aerial scene.

    Args:
        rng: Random generator; the scene depends on nothing else.
        size: Side of the square scene in pixels (at least 32).

    Returns:
        The image (uint8, size x size x 3) and class ids (uint8, size x size) in DUBAI_CLASSES order.
    """
    if size < MIN_SIZE:
        raise DatasetError(f"synthetic scene size {size} is too small; use a size of at least {MIN_SIZE}")
    m = _layout(rng, size)
    ids = np.full((size, size), LAND, np.uint8)
    for key, cls in (("veg", VEGETATION), ("unl", UNLABELED), ("road", ROAD), ("water", WATER), ("bld", BUILDING)):
        ids[m[key]] = cls

    def tone(base: tuple[float, float, float], jitter: float) -> np.ndarray:
        return np.array(base, np.float32) + rng.normal(0, jitter, 3).astype(np.float32)

    low, fine = _fbm(rng, size, 70, 4)[..., None], _fbm(rng, size, 5, 2)[..., None]
    img = tone((206, 176, 136), 10) * (1 + 0.08 * low + 0.04 * fine)  # sand
    # Colour only the pixels of each class: full-size layers would double the time.
    v, dark = m["veg"], tone((40, 80, 34), 6)
    green = dark + (tone((112, 138, 58), 8) - dark) * np.clip(0.5 + 0.3 * low[v], 0, 1)
    img[v] = green * np.clip(0.75 + 0.22 * fine[v] + 0.25 * m["trees"][v][:, None], 0.3, 1.5)
    v, shallow = m["water"], tone((62, 142, 150), 8)  # deeper water, further from the shore, is darker
    img[v] = (shallow + (tone((18, 52, 88), 6) - shallow) * m["depth"][v][:, None]) * (1 + 0.03 * fine[v])
    v = m["road"]
    img[v] = tone((96, 96, 102), 8) * (1 + 0.05 * low[v] + 0.05 * fine[v])
    img[m["unl"]] = tone((150, 150, 148), 8) * (1 + 0.1 * np.sign(fine[m["unl"]]))
    img[m["bld"]] = m["roof"][m["bld"]]
    img[m["marks"]] = tone((226, 224, 210), 6)
    img[m["shadow"]] *= rng.uniform(0.45, 0.65)
    img += rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(4, 9)  # grain before blur
    gain = rng.uniform(0.8, 1.2) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
    img = (img - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-18, 18)
    img = np.clip(img * gain, 0, 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0))), np.float32)
    img += rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(2, 4)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8), ids


def _check_args(scenes: int, size: int, seed: int, tiles: int | None) -> int:
    for name, value, least in (("scenes", scenes, 1), ("size", size, MIN_SIZE), ("seed", seed, 0), ("tiles", tiles, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise DatasetError(f"synthetic dataset: {name} must be a whole number, got {value!r}")
        if value is not None and value < least:
            raise DatasetError(f"synthetic dataset: {name} must be at least {least}, got {value}")
    tiles = math.ceil(scenes / 4) if tiles is None else int(tiles)
    if not 1 <= tiles <= scenes:
        raise DatasetError(f"synthetic dataset: tiles must be between 1 and scenes ({scenes}), got {tiles}")
    return tiles


def write_synthetic_dataset(
    out: str | Path, *, scenes: int = 8, size: int = 512, seed: int = 0, tiles: int | None = None
) -> SynthResult:
    """Write a tiled dataset like the Dubai set: ``OUT/Tile N/{images,masks}/image_part_NNN.{jpg,png}``.

    Files go to a temporary sibling folder renamed to ``out`` at the end: no half-written datasets.

    Args:
        out: Folder to create; it must not exist or be empty.
        scenes: Number of scenes (at least 1).
        size: Side of each square scene in pixels (at least 32).
        seed: Seed; the same seed gives the same dataset.
        tiles: Number of tile folders (1..scenes); default ceil(scenes / 4).

    Returns:
        Where the data went and the share of pixels per class over all scenes.

    Raises:
        DatasetError: Bad arguments or a non-empty output folder.
    """
    tiles, out = _check_args(scenes, size, seed, tiles), Path(out)
    if out.is_dir() and not out.is_symlink() and any(out.iterdir()):  # a file or a link: check_output says so
        raise DatasetError(f"{out}: output folder exists and is not empty; choose an empty or new folder")
    palette, counts = Palette.dubai(), np.zeros(len(DUBAI_CLASSES), np.int64)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(scenes)]
    with writing(out, "synth", replace=True, option="the output folder") as place:
        for t, group in enumerate(np.array_split(np.arange(scenes), tiles), start=1):
            tile = place.path / f"Tile {t}"
            for part in ("images", "masks"):
                (tile / part).mkdir(parents=True)
            for k, scene in enumerate(group, start=1):
                interrupts.check()
                image, ids = make_scene(rngs[scene], size)
                counts += np.bincount(ids.ravel(), minlength=palette.num_classes)
                Image.fromarray(image).save(tile / "images" / f"image_part_{k:03d}.jpg", quality=90)
                mask = Image.frombytes("P", (size, size), ids.tobytes())
                mask.putpalette([v for rgb in palette.colors for v in rgb])
                mask.save(tile / "masks" / f"image_part_{k:03d}.png")
                log.debug("wrote synthetic scene %d to %s", scene + 1, tile)
    fractions = {name: float(c) / counts.sum() for name, c in zip(palette.names, counts)}
    log.info("wrote %d synthetic scenes of %dx%d in %d tiles to %s", scenes, size, size, tiles, out)
    return SynthResult(root=out, scenes=scenes, tiles=tiles, size=size, seed=seed, class_fractions=fractions)
