"""ONNX export of a trained model, and a scene model that runs it with onnxruntime (no PyTorch in the loop).

The exported graph maps normalised windows ``image (batch, bands, h, w)`` float32 to softmax
``probabilities (batch, classes, h, w)``; batch and size are dynamic (sizes divisible by ``2**(depth-1)``).
What the runner needs besides the graph travels in the file's metadata under the key ``aerotune``
(JSON): classes and colours, normalisation and its statistics, window size, scale and band count.
Needs ``aerotune[onnx]`` (onnx, onnxscript and onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.config import RunConfig
from aerotune.data.palette import Palette
from aerotune.data.rasters import Bands
from aerotune.errors import ConfigError, MissingExtraError, RunError, first_line
from aerotune.outputs import check_output, writing
from aerotune.predict.window import Scorer
from aerotune.records import JSONDict

log = logging.getLogger(__name__)

METADATA_KEY = "aerotune"
FORMAT_VERSION = 1


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtraError(module, "onnx") from None


def normalize_numpy(batch: np.ndarray, method: str, stats: list[list[float]] | None) -> np.ndarray:
    """uint8 ``(B, H, W, bands)`` -> float32 ``(B, bands, H, W)``, as ``aerotune.data.dataset.normalize``."""
    x = batch.astype(np.float32).transpose(0, 3, 1, 2)
    if method == "minmax":
        lo = x.min(axis=(2, 3), keepdims=True)
        hi = x.max(axis=(2, 3), keepdims=True)
        return np.ascontiguousarray((x - lo) / np.maximum(hi - lo, 1.0))
    mean = np.asarray(stats[0], np.float32).reshape(1, -1, 1, 1) * 255.0
    std = np.asarray(stats[1], np.float32).reshape(1, -1, 1, 1) * 255.0
    return np.ascontiguousarray((x - mean) / std)


def default_out(model: str | Path) -> Path:
    """``best.pt`` -> ``best.onnx`` beside it; a run folder -> ``RUN/model.onnx``."""
    model = Path(model)
    return model.with_suffix(".onnx") if model.is_file() else model / "model.onnx"


def export_onnx(model_path: str | Path, out: str | Path | None = None, *, opset: int = 18) -> Path:
    """Export a checkpoint or run folder's best model to ONNX with our metadata; returns the file written."""
    onnx = _require("onnx")
    _require("onnxscript")
    import torch

    from aerotune.predict.scene import Predictor

    out = Path(out) if out else default_out(model_path)
    check_output(out, "onnx", inputs=[model_path], ours=_is_ours)  # before the model is loaded
    predictor = Predictor.load(model_path, device="cpu")
    net = predictor.model.to(memory_format=torch.contiguous_format).float().eval()

    p = predictor.patch_size
    with writing(out, "onnx", inputs=[model_path], ours=_is_ours) as place:
        _export_graph(net, torch.rand(2, predictor.num_bands, p, p), place.path, opset=opset)
        graph = onnx.load(str(place.path))
        entry = graph.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(_metadata(predictor))
        graph.producer_name = "aerotune"
        onnx.save(graph, str(place.path))
    log.info("%s -> %s", model_path, out)
    return out


def _export_graph(net, example, path: Path, *, opset: int) -> None:
    """Write ``net`` (softmax outputs, dynamic batch and size) to ``path`` with torch's dynamo exporter, quietly."""
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.inner(image).softmax(dim=1)

    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    try:
        # The exporter reports its steps on stdout and torch's own deprecations as warnings: neither is ours.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed": not the user's concern
            torch.onnx.export(
                WithSoftmax(net),
                (example,),
                path,
                input_names=["image"],
                output_names=["probabilities"],
                dynamic_shapes={"image": dims},
                dynamo=True,
                opset_version=opset,
                external_data=False,
            )
    finally:
        quiet.setLevel(level)


def _metadata(predictor) -> JSONDict:
    """What ``aerotune predict`` needs besides the graph: classes, normalisation, window, bands, config."""
    return {
        "format": FORMAT_VERSION,
        "classes": predictor.palette.to_dict(),
        "normalization": predictor.config.data.normalization,
        "norm_stats": [list(s) for s in predictor.stats] if predictor.stats else None,
        "patch_size": predictor.patch_size,
        "scale": predictor.scale,
        "bands": predictor.num_bands,
        "input": predictor.trained.to_dict(),  # GeoTIFF bands and their scaling, as trained
        "config": predictor.config.to_dict(),
    }


def _is_ours(path: Path) -> bool:
    try:
        return METADATA_KEY in _read_metadata(path)
    except RunError:
        return False


def _read_metadata(path: Path) -> dict[str, str]:
    return dict(_open_session(path).get_modelmeta().custom_metadata_map)


def _run_config(data: Any, path: Path) -> RunConfig | None:
    """The run's settings from the metadata (only ``evaluate`` reads them, for the run's folder layout). A file
    from another aerotune version whose settings do not parse still segments scenes: None, with a warning."""
    if not data:
        return None
    try:
        return RunConfig.from_dict(data, where=f"{path} metadata")
    except (ConfigError, ValueError, TypeError) as exc:
        log.warning("%s: the run's settings in the metadata cannot be read (%s); ignored", path, first_line(exc, 200))
        return None


def _open_session(path: Path):
    ort = _require("onnxruntime")
    if not path.is_file():
        raise RunError(f"{path}: no such ONNX file; export one with aerotune export MODEL --format onnx")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's exception types are not public API
        raise RunError(
            f"{path}: not a readable ONNX model ({first_line(exc, 200)}); export one with "
            "aerotune export MODEL --format onnx"
        ) from None


@dataclass
class OnnxPredictor:
    """An exported model run by onnxruntime; segments scenes like ``Predictor`` (see ``predict.run``)."""

    session: Any
    palette: Palette
    patch_size: int
    scale: float
    num_bands: int
    normalization: str
    norm_stats: list[list[float]] | None
    batch_size: int = 16
    trained: Bands = field(default_factory=Bands)
    #: The run's settings as exported (files written before they travelled along: None).
    config: RunConfig | None = None

    @classmethod
    def load(cls, path: str | Path, *, batch_size: int = 16) -> OnnxPredictor:
        path = Path(path)
        session = _open_session(path)
        raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise RunError(
                f"{path}: an ONNX model without aerotune metadata (classes, normalisation, window); "
                "only files written by aerotune export can segment scenes"
            )
        try:
            meta = json.loads(raw)
            palette = Palette.from_dict(meta["classes"], where=f"{path} metadata")
            return cls(
                session,
                palette,
                int(meta["patch_size"]),
                float(meta["scale"]),
                int(meta["bands"]),
                str(meta["normalization"]),
                meta.get("norm_stats"),
                batch_size,
                Bands.from_dict(meta.get("input") or {"count": meta["bands"]}),
                _run_config(meta.get("config"), path),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RunError(
                f"{path}: aerotune metadata is damaged ({first_line(exc, 200)}); export the model again"
            ) from None

    def scorer(self) -> Scorer:
        def score(batch: np.ndarray) -> np.ndarray:
            x = normalize_numpy(batch, self.normalization, self.norm_stats)
            return self.session.run(None, {"image": x})[0]

        return score
