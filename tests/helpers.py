"""Small crafted datasets for tests (real image and mask files, written with Pillow; GeoTIFFs with rasterio), and the
command line run for real in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from aerotune.data.palette import Palette

PALETTE = Palette.dubai()
ROOT = Path(__file__).resolve().parents[1]


def aerotune(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "aerotune", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("aerotune: error:")]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def random_ids(h: int, w: int, seed: int = 0, classes: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Blocky labels, so nearest-neighbour resampling has something to keep.
    small = rng.integers(0, classes, size=(-(-h // 8), -(-w // 8)), dtype=np.uint8)
    return np.kron(small, np.ones((8, 8), dtype=np.uint8))[:h, :w]


def write_pair(
    folder: Path,
    stem: str,
    w: int,
    h: int,
    *,
    seed: int = 0,
    image_ext: str = ".jpg",
    mask_mode: str = "RGB",
    ids: np.ndarray | None = None,
) -> tuple[Path, Path]:
    """Write ``images/<stem><ext>`` and ``masks/<stem>.png`` under ``folder``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = random_ids(h, w, seed) if ids is None else ids
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    image_path = folder / "images" / f"{stem}{image_ext}"
    Image.fromarray(img).save(image_path)
    mask_path = folder / "masks" / f"{stem}.png"
    save_mask(PALETTE.decode(ids), mask_path, mask_mode)
    return image_path, mask_path


def save_mask(rgb: np.ndarray, path: Path, mode: str = "RGB") -> None:
    im = Image.fromarray(rgb)
    if mode == "RGBA":
        im = im.convert("RGBA")
    elif mode == "P":
        im = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    elif mode == "L":
        im = im.convert("L")
    im.save(path)


def make_tiled(root: Path, tiles: int = 2, per_tile: int = 2, size: tuple[int, int] = (80, 72)) -> Path:
    for t in range(tiles):
        for i in range(per_tile):
            write_pair(root / f"Tile {t + 1}", f"image_part_{i + 1:03d}", *size, seed=t * 10 + i)
    return root


def deepglobe_layout(root: Path, flat: Path) -> Path:
    """Copy a tiled set (``Tile N/images/x.jpg`` + ``Tile N/masks/x.png``) into one folder the way DeepGlobe lays
    out its files: ``TileN-x_sat.jpg`` beside ``TileN-x_mask.png``. Returns ``flat``."""
    import shutil

    flat.mkdir()
    for image in sorted(Path(root).glob("*/images/*")):
        tile = image.parent.parent.name.replace(" ", "")
        shutil.copy(image, flat / f"{tile}-{image.stem}_sat{image.suffix}")
        shutil.copy(image.parent.parent / "masks" / f"{image.stem}.png", flat / f"{tile}-{image.stem}_mask.png")
    return flat


def write_tif(path, bands: np.ndarray, *, crs="EPSG:32640"):
    """Write ``bands`` ((count, H, W) uint8 or uint16) as a GeoTIFF, georeferenced in ``crs`` (None: not at all).
    Needs rasterio (``aerotune[geo]``): callers skip without it."""
    import rasterio
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "count": bands.shape[0],
        "height": bands.shape[1],
        "width": bands.shape[2],
        "dtype": bands.dtype.name,
    }
    if crs:
        profile.update(crs=crs, transform=from_origin(500000.0, 2800000.0, 0.5, 0.5))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


#: The display colours a tile tree's palette masks carry (class id -> RGB), as web-map label exports do.
TREE_COLORS = ((0, 0, 0), (230, 60, 40))


def write_tile_tree(root: Path, *, columns: int = 3, rows: int = 4, size: int = 64, zoom: int = 18) -> Path:
    """A web-map tile tree (robosat, label-maker): ``images/<z>/<x>/<y>.webp`` RGB tiles and
    ``masks/<z>/<x>/<y>.png`` palette masks of class ids 0/1 (the palette carries :data:`TREE_COLORS`); the same
    ``<y>`` names repeat in every column. Writes ``classes.toml`` (ids) beside them. Returns ``root``."""
    flat_palette = [v for c in TREE_COLORS for v in c] + [0] * (768 - 3 * len(TREE_COLORS))
    for x in range(columns):
        for y in range(rows):
            seed = 100 * x + y
            ids = (random_ids(size, size, seed, classes=2) > 0).astype(np.uint8)
            rng = np.random.default_rng(seed)
            image = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
            image[ids == 1] += 120  # buildings are brighter, so one epoch learns something
            tile = f"{zoom}/{7000 + x}/{3000 + y}"
            (root / "images" / tile).parent.mkdir(parents=True, exist_ok=True)
            (root / "masks" / tile).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "images" / f"{tile}.webp", lossless=True)
            mask = Image.frombytes("P", (size, size), ids.tobytes())
            mask.putpalette(flat_palette)
            mask.save(root / "masks" / f"{tile}.png")
    (root / "classes.toml").write_text("background = 0\nbuilding = 1\n")
    return root
