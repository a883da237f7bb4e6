"""Made-up learning-curve tables for the hpo_replay tests (a helper module, not a test module)."""

from __future__ import annotations

CURVES = {  # (lr, batch): validation losses over 3 epochs
    (0.001, 8): [0.90, 0.80, 0.75],
    (0.001, 16): [0.95, 0.85, 0.70],
    (0.01, 8): [0.60, 0.55, 0.50],
    (0.01, 16): [1.00, 1.00, 1.00],
}


def row(lr: float, batch: int, losses: list[float], seed: int = 42, status: str = "completed") -> dict:
    """One row of the synthetic grid's form (``record.py``)."""
    return {
        "learning_rate": lr,
        "batch_size": batch,
        "activation": "relu",
        "seed": seed,
        "status": status,
        "epochs": len(losses),
        "val_loss": losses,
        "val_mean_iou": [1 - v for v in losses],
    }


def rows() -> list[dict]:
    """CURVES at the main seed, and (0.001, 8) again at seeds 1 and 2, +-0.02 around the main seed's curve."""
    out = [row(lr, b, v) for (lr, b), v in CURVES.items()]
    out += [row(0.001, 8, [v + d for v in CURVES[(0.001, 8)]], seed=s) for s, d in ((1, 0.02), (2, -0.02))]
    return out
