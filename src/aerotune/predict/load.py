"""Loading a scene model: PyTorch checkpoints and run folders, or exported ONNX files (no torch in the loop)."""

from __future__ import annotations

from pathlib import Path


def load_model(path: str | Path, *, device: str = "auto", batch_size: int = 16):
    """A scene model from a run folder or ``.pt`` checkpoint (PyTorch) or an ``.onnx`` file (onnxruntime)."""
    if str(path).lower().endswith(".onnx"):
        from aerotune.predict.onnx import OnnxPredictor

        return OnnxPredictor.load(path, batch_size=batch_size)
    from aerotune.predict.scene import Predictor

    return Predictor.load(path, device=device, batch_size=batch_size)
