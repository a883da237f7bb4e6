"""Reading scenes by rows and writing class maps as rows finish (PNG with zlib, GeoTIFF with rasterio).

Scenes are opened and read by ``aerotune.data.rasters`` (shared with training, so both scale a scene alike):
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
import zlib
from pathlib import Path

import numpy as np

from aerotune.data.palette import Palette
from aerotune.data.rasters import (  # noqa: F401 - opening and reading scenes is shared with training
    GEOTIFF_SUFFIXES,
    Scene,
    SceneRows,
    has_rasterio,
    open_scene,
)
from aerotune.data.rasters import open_raster as _open_raster
from aerotune.data.rasters import rasterio_module as _rasterio

log = logging.getLogger(__name__)


def gdal_cache(scene: Scene, extra_bands: int = 0):
    """A context that caps GDAL's block cache (by default 5 % of RAM, which a big scene fills) at what one strip
    of tiles needs: two 256-row tile rows of the input's bands and of every band written. No-op for PNG/JPEG."""
    if not scene.geo:
        return contextlib.nullcontext()
    need = 2 * 256 * scene.width * (len(scene.bands) + 1 + extra_bands)
    return _rasterio().Env(GDAL_CACHEMAX=int(min(max(64 * 2**20, need), 2**30)))


# ---------------------------------------------------------------- writers


class PngRowWriter:
    """A PNG written row block by row block (palette mode ``P`` or ``RGB``), compressed as it goes."""

    def __init__(self, path: Path, width: int, height: int, *, palette: Palette | None = None) -> None:
        self.path, self.width, self.height = path, width, height
        self.tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        self.rows = 0
        self._zip = zlib.compressobj(6)
        self._file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
        try:
            color_type = 3 if palette else 2
            self._file.write(b"\x89PNG\r\n\x1a\n")
            self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            if palette:
                self._chunk(b"PLTE", bytes(v for c in palette.colors for v in c))
        except BaseException:  # e.g. a full disk: no temporary file stays
            self.abort()
            raise

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
        """Complete the file under its temporary name and return that name (the caller renames it to ``path``)."""
        if self.rows != self.height:
            self.abort()
            raise RuntimeError(f"{self.path}: {self.rows} of {self.height} rows written")
        self._chunk(b"IDAT", self._zip.flush())
        self._chunk(b"IEND", b"")
        self._file.close()
        return self.tmp

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
        self.rows = 0
        try:
            self._dst = _open_raster(self.tmp, "w", **profile)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if palette:
            try:
                self._dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(palette.colors)})
            except BaseException:
                self.abort()
                raise

    def write(self, rows: np.ndarray) -> None:
        """Append rows: ``(h, W)`` for one band or ``(bands, h, W)``."""
        from rasterio.windows import Window

        data = rows[None] if rows.ndim == 2 else rows
        self._dst.write(data, window=Window(0, self.rows, data.shape[2], data.shape[1]))
        self.rows += data.shape[1]

    def close(self) -> Path:
        """Complete the file under its temporary name and return that name (the caller renames it to ``path``)."""
        self._dst.close()
        return self.tmp

    def abort(self) -> None:
        self._dst.close()
        self.tmp.unlink(missing_ok=True)
