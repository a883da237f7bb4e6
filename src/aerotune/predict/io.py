"""Reading scenes by rows and writing class maps as rows finish (PNG with zlib, GeoTIFF with rasterio).

PNG and JPEG inputs are decoded whole by Pillow (3 bytes a pixel); GeoTIFFs are read window by window
with rasterio (``aerotune[geo]``), so their size is bounded by the disk only. Masks are written row block
by row block, never held whole: a palette PNG streamed through zlib, or a tiled, compressed GeoTIFF with the
input's CRS and transform. Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aerotune.data.palette import Palette
from aerotune.data.patches import scaled_size
from aerotune.data.sources import read_image
from aerotune.errors import DatasetError, MissingExtraError, first_line

log = logging.getLogger(__name__)

GEOTIFF_SUFFIXES = (".tif", ".tiff")


def has_rasterio() -> bool:
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def _rasterio():
    try:
        import rasterio
    except ImportError:
        raise MissingExtraError("rasterio", "geo") from None
    return rasterio


def gdal_cache(scene: Scene, extra_bands: int = 0):
    """A context that caps GDAL's block cache (by default 5 % of RAM, which a big scene fills) at what one strip
    of tiles needs: two 256-row tile rows of the input's bands and of every band written. No-op for PNG/JPEG."""
    if not scene.geo:
        return contextlib.nullcontext()
    need = 2 * 256 * scene.width * (len(scene.bands) + 1 + extra_bands)
    return _rasterio().Env(GDAL_CACHEMAX=int(min(max(64 * 2**20, need), 2**30)))


def _open_raster(path: Path, mode: str = "r", **profile):
    """``rasterio.open`` without its NotGeoreferencedWarning: a missing CRS is logged once, by ``open_scene``."""
    rasterio = _rasterio()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


@dataclass
class Scene:
    """One input scene, opened (header read, bands checked) but not yet decoded."""

    path: Path
    width: int  # at the input's own size
    height: int
    geo: bool  # read by rasterio; the mask is written as a GeoTIFF
    bands: tuple[int, ...] = ()  # 1-based bands to read (GeoTIFF)
    profile: dict[str, Any] = field(default_factory=dict)

    @property
    def pixels(self) -> int:
        return self.width * self.height


def open_scene(path: Path, *, bands: tuple[int, ...] | None = None, num_bands: int = 3) -> Scene:
    """Check that ``path`` is a readable image with ``num_bands`` bands (after ``bands`` selects some)."""
    if path.suffix.lower() in GEOTIFF_SUFFIXES and has_rasterio():
        return _open_geotiff(path, bands, num_bands)
    if bands:
        if path.suffix.lower() in GEOTIFF_SUFFIXES:
            raise MissingExtraError("rasterio", "geo")
        raise DatasetError(f"{path}: --bands applies to GeoTIFF inputs only; drop it for PNG/JPEG images")
    try:
        with Image.open(path) as im:
            width, height = im.size
    except Image.DecompressionBombError:
        raise DatasetError(
            f"{path}: too large for Pillow's PNG/JPEG decoder (over {2 * Image.MAX_IMAGE_PIXELS:,} "
            "pixels); convert it to a tiled GeoTIFF (gdal_translate -co TILED=YES -co COMPRESS=DEFLATE "
            'IN OUT.tif) and pip install "aerotune[geo]"'
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image ({first_line(exc)}); replace or remove the file") from None
    return Scene(path, width, height, geo=False)


def _open_geotiff(path: Path, bands: tuple[int, ...] | None, num_bands: int) -> Scene:
    rasterio = _rasterio()
    try:
        with _open_raster(path) as src:
            count, profile = src.count, dict(src.profile)
            crs, width, height = src.crs, src.width, src.height
    except rasterio.errors.RasterioIOError as exc:
        raise DatasetError(f"{path}: cannot read GeoTIFF ({first_line(exc)}); replace or remove the file") from None
    chosen = tuple(bands) if bands else tuple(range(1, count + 1))
    bad = [b for b in chosen if not 1 <= b <= count]
    if bad:
        raise DatasetError(f"{path}: has {count} band(s), no band {bad[0]}; pass --bands with numbers 1..{count}")
    if len(chosen) != num_bands:
        raise DatasetError(
            f"{path}: {len(chosen)} band(s) selected but the model takes {num_bands}; pick them with "
            f"--bands, e.g. --bands {','.join(str(i) for i in range(1, num_bands + 1))}"
        )
    if crs is None:
        log.warning("%s: no georeference (CRS); the class map is written without one", path)
    return Scene(path, width, height, geo=True, bands=chosen, profile=profile)


class SceneRows:
    """Rows of a scene at the model's scale as uint8 ``(rows, W, bands)``; ``read(r0, r1)`` is a ``RowReader``."""

    def __init__(self, scene: Scene, scale: float = 1.0) -> None:
        self.scene = scene
        self.width, self.height = scaled_size((scene.width, scene.height), scale)
        self._src = None
        if scene.geo:
            self._src = _open_raster(scene.path)
            self._lo, self._hi = _band_ranges(self._src, scene.bands)
            self.image = None
        else:
            image = read_image(scene.path)
            if scale != 1:
                image = image.resize(
                    (self.width, self.height), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
                )
            self.image = np.asarray(image, dtype=np.uint8)

    def read(self, r0: int, r1: int) -> np.ndarray:
        if self.image is not None:
            return self.image[r0:r1]
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        sy = self.scene.height / self.height
        window = Window(0, r0 * sy, self.scene.width, (r1 - r0) * sy)
        data = self._src.read(
            list(self.scene.bands),
            window=window,
            out_shape=(len(self.scene.bands), r1 - r0, self.width),
            resampling=Resampling.bilinear if sy != 1 else Resampling.nearest,
        )
        return _to_uint8(data, self._lo, self._hi).transpose(1, 2, 0)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()


def _band_ranges(src, bands: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band value range mapped onto 0..255: the full range for uint8, else the 0.5-99.5 percentiles
    of a decimated read (at most ~1 megapixel; GDAL takes it from overviews where the file has them)."""
    if src.dtypes[0] == "uint8":
        return np.zeros(len(bands)), np.full(len(bands), 255.0)
    step = max(1, int(np.ceil(max(src.width, src.height) / 1024)))
    sample = src.read(list(bands), out_shape=(len(bands), max(1, src.height // step), max(1, src.width // step)))
    flat = sample.reshape(len(bands), -1).astype(np.float64)
    lo, hi = np.percentile(flat, 0.5, axis=1), np.percentile(flat, 99.5, axis=1)
    log.info("%s: %s bands scaled to 0..255 per band from %s to %s", src.name, src.dtypes[0], lo.tolist(), hi.tolist())
    return lo, np.maximum(hi, lo + 1e-6)


def _to_uint8(data: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return data
    x = (data.astype(np.float32) - lo[:, None, None]) / (hi - lo)[:, None, None]
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- writers


class PngRowWriter:
    """A PNG written row block by row block (palette mode ``P`` or ``RGB``), compressed as it goes."""

    def __init__(self, path: Path, width: int, height: int, *, palette: Palette | None = None) -> None:
        self.path, self.width, self.height = path, width, height
        self.tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        self.rows = 0
        self._zip = zlib.compressobj(6)
        self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        color_type = 3 if palette else 2
        self._file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
        if palette:
            self._chunk(b"PLTE", bytes(v for c in palette.colors for v in c))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._file.write(
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    def write(self, rows: np.ndarray) -> None:
        """Append rows: ``(h, W)`` class ids or ``(h, W, 3)`` colours, uint8."""
        flat = rows.reshape(rows.shape[0], -1)
        filtered = np.concatenate([np.zeros((flat.shape[0], 1), np.uint8), flat], axis=1)  # filter type 0
        data = self._zip.compress(filtered.tobytes())
        if data:
            self._chunk(b"IDAT", data)
        self.rows += rows.shape[0]

    def close(self) -> Path:
        if self.rows != self.height:
            self.abort()
            raise RuntimeError(f"{self.path}: {self.rows} of {self.height} rows written")
        self._chunk(b"IDAT", self._zip.flush())
        self._chunk(b"IEND", b"")
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)


class GeoTiffRowWriter:
    """A tiled, deflate-compressed uint8 GeoTIFF with a source's CRS and transform, written by row blocks."""

    def __init__(
        self, path: Path, scene: Scene, *, bands: int = 1, palette: Palette | None = None, nodata: int | None = None
    ) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        src = scene.profile
        tiled = scene.width >= 256 and scene.height >= 256
        profile = {
            "driver": "GTiff",
            "width": scene.width,
            "height": scene.height,
            "count": bands,
            "dtype": "uint8",
            "crs": src.get("crs"),
            "transform": src.get("transform"),
            "compress": "deflate",
            "tiled": tiled,
            "BIGTIFF": "IF_SAFER",
        }
        if tiled:
            profile.update(blockxsize=256, blockysize=256)
        if nodata is not None:
            profile["nodata"] = nodata
        if profile["crs"] is None:
            profile.pop("crs")
            profile.pop("transform")
        self._dst = _open_raster(self.tmp, "w", **profile)
        if palette:
            self._dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(palette.colors)})
        self.rows = 0

    def write(self, rows: np.ndarray) -> None:
        """Append rows: ``(h, W)`` for one band or ``(bands, h, W)``."""
        from rasterio.windows import Window

        data = rows[None] if rows.ndim == 2 else rows
        self._dst.write(data, window=Window(0, self.rows, data.shape[2], data.shape[1]))
        self.rows += data.shape[1]

    def close(self) -> Path:
        self._dst.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._dst.close()
        self.tmp.unlink(missing_ok=True)
