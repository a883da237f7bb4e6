"""Reading masks (colours or class ids, any common mode) and saying in one line what is wrong with them: a size
that does not fit the image, colours outside the palette, JPEG compression."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aerotune.config import MAX_TOLERANCE
from aerotune.data.palette import Palette, key_text
from aerotune.data.rasters import is_geotiff, raster_size
from aerotune.data.scaling import SIXTEEN_BIT
from aerotune.errors import DatasetError
from aerotune.reading import image_header, load_image, open_image, show

#: Above this share of unknown mask pixels the palette itself is probably wrong.
WRONG_PALETTE_SHARE = 0.5
#: Masks whose aspect ratio differs from their image's by more than this are never resized.
ASPECT_TOLERANCE = 0.01
PAIR_HINT = "or pass --skip-bad-pairs to leave such pairs out"
#: The share of unknown pixels a suggested ``--color-tolerance`` gives a class to; the rest are mostly blends at
#: class boundaries, better left unknown (ignored) than guessed.
SUGGEST_SHARE = 0.9
#: The ``--color-tolerance`` suggested when the colours cannot be measured against the palette.
FALLBACK_TOLERANCE = 32


def image_size(path: Path, *, what: str = "image") -> tuple[int, int]:
    """(width, height) as viewers show the image (EXIF orientation applied), from the file header without
    decoding pixels; a mask of floating-point values is refused."""
    if is_geotiff(path):
        return raster_size(path, what=what)
    size, mode = image_header(path, what=what)
    if what == "mask" and mode.startswith("F"):
        raise DatasetError(
            f"{show(path)}: mask holds floating-point values (mode {mode}), not integer class ids or "
            "colours; save it as uint8 (or uint16) class ids, or as an 8-bit RGB image of colours"
        )
    return size


def read_mask(path: Path, palette: Palette | None = None) -> np.ndarray:
    """Decode a mask for ``palette``: (H, W, 3) uint8 colours, or (H, W) class ids for an index palette.

    Colour masks may be RGB, RGBA, P, L, LA or 1-bit; id masks L, P (the palette index is the id), 1-bit,
    16-bit (I;16, I), or RGB/RGBA with three equal channels. Other modes are a ``DatasetError`` that says why.
    GeoTIFF masks are decoded by Pillow too: one band of class ids, or three uint8 bands of colours. Masks are
    turned as viewers show them (EXIF orientation), as their images are; GeoTIFFs (read as stored) are not.
    """
    im = load_image(path, what="mask", upright=not is_geotiff(path))
    mode = im.mode
    if palette is None or not palette.by_id:
        if mode in SIXTEEN_BIT:
            raise DatasetError(
                f"{show(path)}: mask is a 16-bit image (mode {mode}): it holds numbers, not "
                "colours; if they are class ids, map names to ids in the classes file "
                "(Building = 1), else save the mask as an 8-bit RGB PNG"
            )
        if mode not in ("RGB", "RGBA", "P", "PA", "L", "LA", "1"):
            raise DatasetError(f"{show(path)}: mask is a {mode} image; save masks as RGB, palette or greyscale PNGs")
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


def suggest_tolerance(unknown: dict, palette: Palette) -> tuple[int, int] | None:
    """The smallest colour tolerance that would give a class to :data:`SUGGEST_SHARE` of the ``unknown`` colours'
    pixels (or to all it can, within ``MAX_TOLERANCE``), with the pixels it would still leave unknown; None when
    none of them is within ``MAX_TOLERANCE`` of a single nearest palette colour."""
    if palette.by_id or not unknown:
        return None
    colors = np.asarray(list(unknown), dtype=np.int64).reshape(-1, 3)
    pixels = np.asarray(list(unknown.values()), dtype=np.int64)
    classes = palette.match(colors, MAX_TOLERANCE)
    near = classes >= 0
    if not near.any():
        return None
    need = np.abs(colors[near] - np.asarray(palette.colors, dtype=np.int64)[classes[near]]).max(axis=1)
    order = np.argsort(need, kind="stable")
    covered = np.cumsum(pixels[near][order])
    at = min(int(np.searchsorted(covered, SUGGEST_SHARE * pixels.sum())), len(order) - 1)
    return int(need[order][at]), int(pixels.sum() - covered[at])


def _tolerance_fix(unknown: dict, total: int, palette: Palette | None, tolerance: int) -> str:
    """For lossy masks, the fix besides PNG masks: the ``--color-tolerance`` to pass (measured from the colours when
    it can be), or the ignore class for what a tolerance already given leaves."""
    ignore = "or pass --unknown-colors ignore to skip them in loss and metrics (mostly blends at class boundaries)"
    if tolerance:  # a tolerance was chosen: what is left is better ignored than snapped ever further
        return f"{ignore}, or a larger --color-tolerance (at most {MAX_TOLERANCE})"
    found = suggest_tolerance(unknown, palette) if palette is not None else (FALLBACK_TOLERANCE, 0)
    if found is None:
        return ignore
    n, left = found
    rest = f"; {left / max(total, 1):.2%} of mask pixels would stay unknown: add --unknown-colors ignore" * bool(left)
    return (
        f"or, with no lossless source, pass --color-tolerance {n} (a colour within {n} per channel of its nearest "
        f"palette colour takes that class{rest})"
    )


def unknown_colors_message(
    unknown: dict, files: dict, total: int, *, palette: Palette | None = None, tolerance: int = 0, fix: str = ""
) -> str:
    """One line naming each unknown colour (or id), its pixel count and files, and the fix (``tolerance``: the
    ``--color-tolerance`` they are unknown at; for JPEG masks a tolerance is suggested from ``palette``; ``fix``:
    the fix for lossless masks where the palette is given, not chosen, as by a model)."""
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
    if jpegs and not by_id:  # lossy compression blends colours: no palette fixes that; lossless masks or snapping
        beyond = f" beyond --color-tolerance {tolerance}" if tolerance else ""
        return (
            f"{share:.0%} of mask pixels have colours outside the palette, and the masks are JPEG files "
            f"({', '.join(jpegs[:3])}{' …' if len(jpegs) > 3 else ''}), whose lossy compression changes colours"
            f"{beyond}: {'; '.join(parts[:3])}; save the masks as PNG from their source (lossless), then rerun, "
            f"{_tolerance_fix(unknown, total, palette, tolerance)}"
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
            f"these masks: {'; '.join(parts)}{more}; "
            + (fix or f"pass a classes file that matches the masks with --classes{hint}")
        )
    return f"unknown mask {noun} ({share:.2%} of pixels): {'; '.join(parts)}{more}; " + (
        fix or "add them to a classes file (--classes) or pass --unknown-colors ignore to skip them in loss and metrics"
    )


def mask_palette_colors(palette: Palette, masks: list[Path]) -> dict[str, str]:
    """Display colours (class name -> ``#RRGGBB``) of an index palette's classes whose colour the classes file did
    not give, taken from the PNG palette of the first palette-mode (P) mask: the dataset's own colours. {} for a
    colour palette, masks without a PNG palette, or one that does not tell the classes apart (a grey ramp, or two
    classes of one colour); the fixed display colours then stay."""
    if not palette.by_id or palette.given is None or all(palette.given):
        return {}
    for path in masks:
        if is_geotiff(path):
            continue
        with open_image(path, what="mask") as im:
            if im.mode not in ("P", "PA"):
                continue
            flat = im.getpalette() or []
        table = [tuple(flat[i : i + 3]) for i in range(0, len(flat) - 2, 3)]
        ids = palette.ids or ()
        if any(i >= len(table) for i in ids):
            return {}
        colors = [table[i] for i in ids]
        if len(set(colors)) < len(colors) or all(c == (i, i, i) for c, i in zip(colors, ids)):
            return {}
        chosen = [tuple(c) if not g else own for c, g, own in zip(colors, palette.given, palette.colors)]
        if len(set(chosen)) < len(chosen):  # a mask colour is one the classes file gave another class
            return {}
        return {n: "#{:02X}{:02X}{:02X}".format(*c) for n, c, g in zip(palette.names, colors, palette.given) if not g}
    return {}
