"""The colour of one class on each Dubai tile, as the model sees it (each image's channels min-max scaled).

Why a held-out tile is hard for one class: if its pixels of that class are coloured unlike the other tiles', no
recipe trained on those tiles has seen them. Prints, per tile, the class's share of the pixels, its mean scaled
R, G, B, its saturation (mean distance of a pixel's channels from their grey) and G - R.

Usage: python benchmarks/tile_colours.py [--data ../shared/datasets/dubai-aerial] [--class-name Vegetation]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from aerotune.data.palette import Palette
from aerotune.data.sources import read_image

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai-aerial"


def tile_colours(tile: Path, colour: np.ndarray) -> tuple[float, np.ndarray]:
    """The share of ``tile``'s pixels whose mask is ``colour``, and those pixels' scaled colours (N x 3)."""
    shares, pixels = [], []
    for image_path in sorted((tile / "images").iterdir()):
        mask_path = next((tile / "masks").glob(f"{image_path.stem}.*"), None)
        if mask_path is None:
            continue
        image = np.asarray(read_image(image_path).convert("RGB"), dtype=np.float32)
        mask = np.asarray(read_image(mask_path).convert("RGB"), dtype=np.int32)
        if image.shape[:2] != mask.shape[:2]:
            continue
        lo, hi = image.min(axis=(0, 1)), image.max(axis=(0, 1))
        scaled = (image - lo) / np.maximum(hi - lo, 1)
        chosen = np.abs(mask - colour).sum(axis=-1) < 30  # the set's masks are JPEG-like near their colours
        shares.append(chosen.mean())
        pixels.append(scaled[chosen])
    return float(np.mean(shares)), np.concatenate(pixels) if pixels else np.zeros((0, 3), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--class-name", default="Vegetation")
    args = parser.parse_args()
    palette = Palette.dubai()
    if args.class_name not in palette.names:
        sys.exit(f"--class-name: {args.class_name!r} is not one of {', '.join(palette.names)}")
    if not all((args.data / f"Tile {t}").is_dir() for t in range(1, 9)):
        sys.exit(f"{args.data}: Dubai dataset (Tile 1 .. Tile 8) not found; pass --data")
    colour = np.array(palette.colors[palette.names.index(args.class_name)])
    print(f"| tile | {args.class_name} share | mean scaled R, G, B | saturation | G - R |\n|---|---|---|---|---|")
    for t in range(1, 9):
        share, pixels = tile_colours(args.data / f"Tile {t}", colour)
        if not len(pixels):
            print(f"| Tile {t} | 0 | | | |")
            continue
        mean = pixels.mean(axis=0)
        saturation = np.abs(pixels - pixels.mean(axis=1, keepdims=True)).mean()
        rgb = ", ".join(f"{v:.3f}" for v in mean)
        print(f"| Tile {t} | {share:.3f} | {rgb} | {saturation:.3f} | {mean[1] - mean[0]:+.3f} |")


if __name__ == "__main__":
    main()
