"""Test-time augmentation: a window scored under flips and rotations, averaged in probability space.

Every transform is undone on the probabilities before averaging, so each output pixel averages the model's
views of that same pixel. Per-window min-max normalisation is unchanged by flips and rotations.
"""

from __future__ import annotations

import numpy as np

from aerotune.predict.window import Scorer

#: (quarter turns, mirror left-right first) per mode. ``flips``: identity, both mirrors and both at once.
TRANSFORMS: dict[str, list[tuple[int, bool]]] = {
    "none": [(0, False)],
    "flips": [(0, False), (0, True), (2, True), (2, False)],
    "d4": [(k, f) for k in range(4) for f in (False, True)],
}


def with_tta(scorer: Scorer, mode: str = "none") -> Scorer:
    """A scorer that averages ``scorer`` over the transforms of ``mode`` (none | flips | d4)."""
    if mode not in TRANSFORMS:
        raise ValueError(f"tta must be one of {list(TRANSFORMS)}, got {mode!r}")
    transforms = TRANSFORMS[mode]
    if len(transforms) == 1:
        return scorer

    def averaged(batch: np.ndarray) -> np.ndarray:  # (B, P, P, bands) -> (B, K, P, P)
        total = None
        for k, flip in transforms:
            x = batch[:, :, ::-1] if flip else batch
            probs = scorer(np.ascontiguousarray(np.rot90(x, k, axes=(1, 2))))
            probs = np.rot90(probs, -k, axes=(2, 3))
            probs = probs[..., ::-1] if flip else probs
            total = probs.copy() if total is None else total + probs
        return total / len(transforms)

    return averaged
