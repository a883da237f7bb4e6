"""A trained PyTorch model ready to segment whole scenes (see ``run.py`` for the files, ``window.py`` for the blend).

Windows are the training patch size, normalised as in training (min-max per window by default). Inference runs
under ``torch.inference_mode`` in channels-last layout, with bf16 autocast where the device has it natively.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aerotune.config import RunConfig
from aerotune.data.dataset import normalize
from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands
from aerotune.errors import RunError
from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint
from aerotune.predict.run import DEFAULT_OVERLAP, list_images, predict_files  # noqa: F401 - the public API
from aerotune.predict.window import Scorer, stream_scene
from aerotune.runtime import autocast_dtype, select_device

log = logging.getLogger(__name__)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the best one of a training run folder or a tuning run folder."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / "best_checkpoint.pt", path / "checkpoints" / "best.pt"]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise RunError(
            f"{path}: no checkpoint found (looked for {', '.join(str(c) for c in candidates)}); "
            "pass a run folder or a .pt checkpoint"
        )
    return found


@dataclass
class Predictor:
    """A trained model ready to segment scenes."""

    model: torch.nn.Module
    config: RunConfig
    palette: Palette
    stats: tuple[list[float], list[float]] | None
    device: torch.device
    batch_size: int = 16
    trained: Bands = field(default_factory=Bands)  # the input it was trained on: bands and their scaling

    @property
    def num_bands(self) -> int:
        return self.trained.count

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", batch_size: int = 16) -> Predictor:
        """Load from a checkpoint file, a training run folder or a tuning run folder (its best model)."""
        found = find_checkpoint(path)
        ckpt = load_checkpoint(found)
        model, config, palette = model_from_checkpoint(ckpt, where=found)
        dev = select_device(device)
        stats = tuple(ckpt["norm_stats"]) if ckpt.get("norm_stats") else None
        model = model.to(dev).to(memory_format=torch.channels_last).eval()
        return cls(model, config, palette, stats, dev, batch_size, Bands.from_dict(ckpt.get("bands")))

    @property
    def patch_size(self) -> int:
        return self.config.data.patch_size

    @property
    def scale(self) -> float:
        return self.config.data.scale

    def scorer(self) -> Scorer:
        """uint8 windows ``(B, P, P, bands)`` -> float32 probabilities ``(B, K, P, P)``."""
        dtype = autocast_dtype(self.config.train.precision, self.device)

        def score(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                x = normalize(torch.from_numpy(batch), self.config.data.normalization, self.stats)
                x = x.to(self.device).contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    logits = self.model(x)
                return logits.float().softmax(dim=1).cpu().numpy()

        return score

    def scores(self, image: np.ndarray, *, overlap: float = DEFAULT_OVERLAP, blend: str = "smooth") -> np.ndarray:
        """Class probabilities ``(C, H, W)`` for an ``(H, W, 3)`` uint8 image at the model's scale (held whole)."""
        h, w = image.shape[:2]
        out = np.empty((self.palette.num_classes, h, w), dtype=np.float32)

        def keep(r0: int, probs: np.ndarray) -> None:
            out[:, r0 : r0 + probs.shape[1]] = probs

        stream_scene(
            lambda r0, r1: image[r0:r1],
            h,
            w,
            self.scorer(),
            patch=self.patch_size,
            num_classes=self.palette.num_classes,
            overlap=overlap,
            blend=blend,
            batch_size=self.batch_size,
            emit=keep,
        )
        return out

    def segment(self, image: Image.Image, **options) -> np.ndarray:
        """Class ids ``(H, W)`` for a whole scene at its own size (resampled to the training scale and back)."""
        from aerotune.data.patches import scaled_size

        size = image.size
        scale = self.scale
        work = (
            image.resize(scaled_size(size, scale), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
            if scale != 1
            else image
        )
        ids = self.scores(np.asarray(work, dtype=np.uint8), **options).argmax(axis=0).astype(np.uint8)
        if ids.shape[::-1] != size:
            ids = np.asarray(Image.fromarray(ids, "L").resize(size, Image.Resampling.NEAREST))
        return ids
