"""One rule for 16-bit pictures, whatever their container: a 16-bit greyscale PNG or TIFF read by Pillow (modes
``I;16*`` and ``I``) is scaled to 0..255 exactly as a uint16 GeoTIFF read by rasterio.

Each band is mapped linearly from its 0.5 to its 99.5 percentile to 0..255 (values outside are clipped): for
training, the training set's percentiles (every 16-bit image decimated to about a megapixel, pooled), recorded
in the patch cache and the checkpoint (``rasters.Bands``) and used again by predict; a scene read without
recorded ranges uses its own. A Pillow greyscale image is the model's three bands, the grey repeated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Percentiles of each band mapped to 0 and 255 (values outside are clipped).
PERCENTILES = (0.5, 99.5)
#: A decimated read for the percentiles is at most this many pixels on its longer side.
SAMPLE_SIDE = 1024
#: Pillow's modes of 16-bit (or 32-bit integer) greyscale pictures.
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def ranges_from_histogram(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the values at the ``PERCENTILES`` of a value histogram ``(bands, values)``."""
    cum = np.cumsum(hist, axis=1)
    lo = np.array([np.searchsorted(c, c[-1] * PERCENTILES[0] / 100) for c in cum], dtype=np.float64)
    hi = np.array([np.searchsorted(c, c[-1] * PERCENTILES[1] / 100) for c in cum], dtype=np.float64)
    return lo, np.maximum(hi, lo + 1)


def to_uint8(data: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(bands, h, w)`` values -> uint8, each band linearly from ``lo`` .. ``hi`` to 0 .. 255 (clipped)."""
    if data.dtype == np.uint8:
        return data
    x = (data.astype(np.float32) - lo[:, None, None]) / (hi - lo)[:, None, None]
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def grey_values(im: Any) -> np.ndarray:
    """A decoded 16-bit Pillow image's values ``(H, W)`` as uint16 (mode ``I`` clipped to 0..65535)."""
    values = np.asarray(im)
    if values.dtype != np.uint16:
        values = np.clip(values, 0, 65535).astype(np.uint16)
    return values


def grey_histogram(values: np.ndarray, bands: int = 3) -> np.ndarray:
    """Counts of every uint16 value ``(bands, 65536)`` in a decimated view of greyscale ``values``, repeated
    for each of the model's ``bands`` (the grey is every band)."""
    step = max(1, int(np.ceil(max(values.shape) / SAMPLE_SIDE)))
    counts = np.bincount(values[::step, ::step].ravel(), minlength=65536)
    return np.repeat(counts[None, :], bands, axis=0)


def grey_to_rgb(values: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> np.ndarray:
    """16-bit greyscale ``(H, W)`` -> uint8 ``(H, W, 3)`` by the ranges ``lo``/``hi`` (3 bands), or by the
    picture's own percentiles when none were recorded."""
    if lo is None or hi is None:
        lo, hi = ranges_from_histogram(grey_histogram(values))
    out = np.empty((*values.shape, 3), np.uint8)
    for b in range(3):
        out[..., b] = to_uint8(values[None], np.asarray(lo[b : b + 1]), np.asarray(hi[b : b + 1]))[0]
    return out
