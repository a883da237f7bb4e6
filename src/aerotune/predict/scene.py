"""Whole-scene segmentation: a sliding window over an image of any size, with blended overlaps.

Windows are the training patch size (minmax normalisation is per window, as in training) and overlap by
half; each window's softmax is weighted by a smooth bump that is highest at its centre, so seams between
windows vanish and every pixel's prediction leans on the windows that see it with the most context.
Memory is bounded by one scene's class scores (C x H x W float32).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aerotune.config import RunConfig
from aerotune.data.dataset import normalize
from aerotune.data.palette import Palette
from aerotune.data.patches import scaled_size
from aerotune.data.sources import IMAGE_SUFFIXES, read_image
from aerotune.errors import DatasetError, RunError
from aerotune.files import check_output, removed_on_failure
from aerotune.model.checkpoint import load_checkpoint, model_from_checkpoint
from aerotune.runtime import autocast_dtype, select_device

log = logging.getLogger(__name__)


@dataclass
class Predictor:
    """A trained model ready to segment scenes."""

    model: torch.nn.Module
    config: RunConfig
    palette: Palette
    stats: tuple[list[float], list[float]] | None
    device: torch.device
    batch_size: int = 16

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto", batch_size: int = 16) -> Predictor:
        """Load from a checkpoint file, a training run folder or a tuning run folder (its best model)."""
        path = Path(path)
        candidates = [path] if path.is_file() else [path / "best_checkpoint.pt", path / "checkpoints" / "best.pt"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise RunError(f"{path}: no checkpoint found (looked for {', '.join(str(c) for c in candidates)}); "
                           "pass a run folder or a .pt checkpoint")
        ckpt = load_checkpoint(found)
        model, config, palette = model_from_checkpoint(ckpt, where=found)
        dev = select_device(device)
        stats = tuple(ckpt["norm_stats"]) if ckpt.get("norm_stats") else None
        return cls(model.to(dev), config, palette, stats, dev, batch_size)

    @torch.no_grad()
    def scores(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities ``(C, H, W)`` for an ``(H, W, 3)`` uint8 image at the model's scale."""
        p = self.config.data.patch_size
        h, w = image.shape[:2]
        pad_h, pad_w = max(0, p - h), max(0, p - w)
        if pad_h or pad_w:  # smaller than one window: mirror the edges
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        hh, ww = image.shape[:2]
        stride = max(1, p // 2)
        rows = _starts(hh, p, stride)
        cols = _starts(ww, p, stride)
        c = self.palette.num_classes
        total = np.zeros((c, hh, ww), dtype=np.float32)
        weight = np.zeros((hh, ww), dtype=np.float32)
        bump = _bump(p)
        dtype = autocast_dtype(self.config.train.precision, self.device)
        windows = [(r, q) for r in rows for q in cols]
        self.model.eval()
        for start in range(0, len(windows), self.batch_size):
            batch = windows[start:start + self.batch_size]
            x = torch.from_numpy(np.stack([image[r:r + p, q:q + p] for r, q in batch]))
            x = normalize(x, self.config.data.normalization, self.stats).to(self.device)
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                probs = self.model(x).float().softmax(dim=1).cpu().numpy()
            for (r, q), pr in zip(batch, probs):
                total[:, r:r + p, q:q + p] += pr * bump
                weight[r:r + p, q:q + p] += bump
        return (total / weight)[:, :h, :w]

    def segment(self, image: Image.Image) -> np.ndarray:
        """Class ids ``(H, W)`` for a whole scene at its own size (resampled to the training scale and back)."""
        size = image.size
        scale = self.config.data.scale
        work = image.resize(scaled_size(size, scale), Image.Resampling.BOX if scale < 1 else
                            Image.Resampling.BILINEAR) if scale != 1 else image
        ids = self.scores(np.asarray(work, dtype=np.uint8)).argmax(axis=0).astype(np.uint8)
        if ids.shape[::-1] != size:
            ids = np.asarray(Image.fromarray(ids, "L").resize(size, Image.Resampling.NEAREST))
        return ids


def _starts(length: int, patch: int, stride: int) -> list[int]:
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


def _bump(p: int) -> np.ndarray:
    # A raised cosine with a floor, so border pixels seen by one window only still get weight.
    ramp = 0.1 + 0.9 * np.sin(np.linspace(0, np.pi, p, dtype=np.float32)) ** 2
    return np.outer(ramp, ramp)


def list_images(inputs: list[str | Path]) -> list[Path]:
    """Image files named directly or found in the given folders (not recursive)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif item.is_file():
            files.append(item)
        else:
            raise DatasetError(f"{item}: no such image or folder; pass image files or folders of images")
    if not files:
        raise DatasetError(f"{', '.join(map(str, inputs))}: no images found (.jpg .jpeg .png .tif)")
    return files


def predict_files(predictor: Predictor, inputs: list[str | Path], out: str | Path, *, overlay: bool = False,
                  progress=None) -> list[Path]:
    """Segment every input image; write ``OUT/<stem>.png`` (palette-mode mask) and, optionally, an overlay."""
    output = check_output(out, "predictions", inputs=inputs, inside_inputs=True)
    files = list_images(inputs)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise DatasetError(f"two inputs are named {dup!r}; their masks would overwrite each other: predict them "
                           "into separate --out folders")
    out = output.claim()
    with removed_on_failure(output):
        return _predict_all(predictor, files, out, overlay=overlay, progress=progress)


def _predict_all(predictor: Predictor, files: list[Path], out: Path, *, overlay: bool, progress) -> list[Path]:
    written = []
    flat_palette = [v for c in predictor.palette.colors for v in c]
    for i, f in enumerate(files):
        image = read_image(f)
        ids = predictor.segment(image)
        mask = Image.fromarray(ids, "P")
        mask.putpalette(flat_palette + [0, 0, 0] * (256 - predictor.palette.num_classes))
        written.append(_save(mask, out / f"{f.stem}.png"))
        if overlay:
            colour = Image.fromarray(predictor.palette.decode(ids))
            written.append(_save(Image.blend(image, colour, 0.45), out / f"{f.stem}_overlay.jpg"))
        log.info("%s -> %s", f, out / f"{f.stem}.png")
        if progress:
            progress(i + 1, len(files))
    return written


def _save(image: Image.Image, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix == ".png":
            image.save(tmp, format="PNG")
        else:
            image.save(tmp, format="JPEG", quality=90)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
