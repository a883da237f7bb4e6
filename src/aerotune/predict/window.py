"""Sliding windows over a scene in bounded memory: a weighted blend kept for one strip of windows only.

The scene is visited strip by strip (one row of windows at a time). Each window's class probabilities are
weighted by a blend window and added into a running sum that covers only the rows the current strip
touches (``patch`` rows x scene width). Once a strip is done, the rows above the next strip's start get no
more contributions: they are normalised and handed to ``emit``, and the running sum moves down. Peak
memory is therefore ``(classes + 1) x patch x width`` floats plus one strip of input, whatever the height.

Blend windows (per axis, the 2-D window is their outer product):

* ``smooth``: flat in the middle, raised-cosine ramps over the overlap at both ends, so two neighbouring
  windows cross-fade across their overlap and the pixels a window sees with least context (its border)
  count least. This removes seams at any overlap.
* ``uniform``: every window counts the same (a plain average; seams show where windows change).

Edges: the last window of a row or column is moved to end at the scene's edge, so every pixel is covered;
a scene smaller than one window is mirrored out to the window size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from aerotune import interrupts

#: ``scorer(batch)``: uint8 windows ``(B, P, P, bands)`` -> float32 class probabilities ``(B, K, P, P)``.
Scorer = Callable[[np.ndarray], np.ndarray]
#: ``read(r0, r1)``: rows ``r0 .. r1 - 1`` of the scene, full width, as uint8 ``(r1 - r0, W, bands)``.
RowReader = Callable[[int, int], np.ndarray]
#: ``emit(r0, probs)``: finished rows from ``r0`` on, class probabilities float32 ``(K, rows, W)``.
Emit = Callable[[int, np.ndarray], None]

BLENDS = ("smooth", "uniform")
#: Weight at a window's very edge: small, but never zero (a scene border is seen by one window only).
EDGE_WEIGHT = 1e-3
#: Finished rows are normalised and handed on in blocks of this many rows.
EMIT_ROWS = 32


def window_starts(length: int, patch: int, stride: int) -> list[int]:
    """Window offsets along one axis; the last window ends at ``length`` (``length >= patch``)."""
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def stride_for(patch: int, overlap: float) -> int:
    """The window step for an overlap given as a fraction of the window (0 <= overlap < 1)."""
    return max(1, patch - int(round(patch * overlap)))


def blend_window(patch: int, overlap_px: int, kind: str = "smooth") -> np.ndarray:
    """The ``(patch, patch)`` float32 weight of one window."""
    ramp = np.ones(patch, dtype=np.float32)
    if kind == "smooth" and overlap_px > 0:
        n = min(overlap_px, patch // 2)
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)
        ramp[:n] = rise
        ramp[patch - n :] = rise[::-1]
        ramp = np.maximum(ramp, EDGE_WEIGHT)
    elif kind not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {kind!r}")
    return np.outer(ramp, ramp)


def _padded_reader(read: RowReader, height: int, width: int, patch: int) -> RowReader:
    """Rows of a scene mirrored out to at least one window in each direction."""
    if height >= patch and width >= patch:
        return read
    mode = "reflect" if min(height, width) > 1 else "edge"

    def padded(r0: int, r1: int) -> np.ndarray:
        rows = read(min(r0, height), min(r1, height)) if r0 < height else np.empty((0, width, 0), np.uint8)
        if rows.shape[0] < r1 - r0:  # mirror the scene downwards, then take the rows asked for
            whole = np.pad(read(0, height), ((0, patch - height), (0, 0), (0, 0)), mode=mode)
            rows = whole[r0:r1]
        if width < patch:
            rows = np.pad(rows, ((0, 0), (0, patch - width), (0, 0)), mode=mode)
        return rows

    return padded


def stream_scene(
    read: RowReader,
    height: int,
    width: int,
    scorer: Scorer,
    *,
    patch: int,
    num_classes: int,
    overlap: float = 0.25,
    blend: str = "smooth",
    batch_size: int = 16,
    emit: Emit,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Segment a ``height x width`` scene window by window; hand finished rows to ``emit`` top to bottom."""
    stride = stride_for(patch, overlap)
    weight = blend_window(patch, patch - stride, blend)
    hh, ww = max(height, patch), max(width, patch)
    read = _padded_reader(read, height, width, patch)
    rows = window_starts(hh, patch, stride)
    cols = window_starts(ww, patch, stride)
    total = np.zeros((num_classes, patch, ww), dtype=np.float32)  # rows r .. r + patch of the scene
    norm = np.zeros((patch, ww), dtype=np.float32)
    for i, r in enumerate(rows):
        interrupts.check()
        strip = read(r, r + patch)
        for b in range(0, len(cols), batch_size):
            batch = cols[b : b + batch_size]
            probs = scorer(np.stack([strip[:, q : q + patch] for q in batch]))
            for q, pr in zip(batch, probs):
                total[:, :, q : q + patch] += pr * weight
                norm[:, q : q + patch] += weight
        done = (rows[i + 1] if i + 1 < len(rows) else hh) - r  # rows no later window reaches
        keep = min(done, max(0, height - r))
        for c in range(0, keep, EMIT_ROWS):  # in small blocks: the normalised copy stays small too
            emit(r + c, total[:, c : min(keep, c + EMIT_ROWS), :width] / norm[c : min(keep, c + EMIT_ROWS), :width])
        for k in range(num_classes):  # class by class: each move is one contiguous block, no temporary copy
            total[k, : patch - done] = total[k, done:]
        total[:, patch - done :] = 0
        norm[: patch - done] = norm[done:]
        norm[patch - done :] = 0
        if progress:
            progress(min(r + done, height), height)
