"""Opening scenes and reading their pixels as uint8 bands: PNG/JPEG with Pillow, GeoTIFF with rasterio.

Training (``data/patches.py``) and prediction (``predict/``) read images through the same two objects, so a
scene is scaled the same way in both: :func:`open_scene` checks a file and picks its bands, :class:`SceneRows`
returns rows at the model's scale as uint8 ``(rows, W, bands)``.

GeoTIFFs (``aerotune[geo]``) may have any band count; ``--bands 3,2,1`` picks bands (1-based) and their order.
uint8 values are used as they are. Other values are mapped to 0..255 per band, linearly between the band's
0.5 and 99.5 percentiles: for a model trained on uint16 images, the training set's percentiles (every
training image decimated to about a megapixel, pooled), recorded in the patch cache and the checkpoint as
:class:`Bands`; otherwise each scene's own. 16-bit greyscale pictures read by Pillow (PNG, TIFF without
rasterio) follow the same rule (:mod:`aerotune.data.scaling`). Pillow's pictures are read as viewers show them
(their EXIF orientation applied, ``reading.load_image``); GDAL reads GeoTIFFs as stored.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aerotune import interrupts
from aerotune.data.scaling import (  # noqa: F401 - PERCENTILES, SAMPLE_SIDE: imported from here too
    PERCENTILES,
    SAMPLE_SIDE,
    SIXTEEN_BIT,
    grey_histogram,
    grey_to_rgb,
    grey_values,
    ranges_from_histogram,
    to_uint8,
)
from aerotune.errors import DatasetError, MissingExtraError, first_line
from aerotune.reading import image_header, load_image, show

log = logging.getLogger(__name__)

GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: For a PNG/JPEG scene over Pillow's pixel limit, the other way to read it.
AS_GEOTIFF = (
    "; or convert it to a tiled GeoTIFF (gdal_translate -co TILED=YES -co COMPRESS=DEFLATE IN OUT.tif) and "
    'pip install "aerotune[geo]", which reads it window by window'
)


def has_rasterio() -> bool:
    try:
        import rasterio  # noqa: F401
    except ImportError:
        return False
    return True


def rasterio_module():
    """``rasterio``, or a ``MissingExtraError`` naming ``aerotune[geo]``."""
    try:
        import rasterio
    except ImportError:
        raise MissingExtraError("rasterio", "geo") from None
    return rasterio


def open_raster(path: Path, mode: str = "r", **profile):
    """``rasterio.open`` without its NotGeoreferencedWarning: a missing CRS is logged once, by ``open_scene``."""
    rasterio = rasterio_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path, mode, **profile)


def is_geotiff(path: Path) -> bool:
    """Read with rasterio: a ``.tif``/``.tiff`` file while rasterio is installed (else Pillow reads it)."""
    return Path(path).suffix.lower() in GEOTIFF_SUFFIXES and has_rasterio()


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def read_image(path: Path, trained: Bands | None = None) -> Image.Image:
    """Decode an image as the model's RGB (a PIL image), turned as viewers show it; a 16-bit greyscale picture is
    scaled by the ``trained`` ranges (else its own). A corrupt or unreadable file is a ``DatasetError``."""
    im = load_image(path)
    if im.mode not in SIXTEEN_BIT:
        return im.convert("RGB")
    if trained is not None and trained.lo and len(trained.lo) == 3:
        return Image.fromarray(grey_to_rgb(grey_values(im), np.asarray(trained.lo), np.asarray(trained.hi)))
    log.info("%s: 16-bit greyscale scaled to 0..255 by its own range", show(path))
    return Image.fromarray(grey_to_rgb(grey_values(im), None, None))


@dataclass(frozen=True)
class Bands:
    """A model's input: how many bands, which GeoTIFF bands (1-based; None: all) and, for a model trained
    on uint16 GeoTIFFs, the per-band values mapped to 0 and 255 (``lo``/``hi``)."""

    count: int = 3
    select: tuple[int, ...] | None = None
    lo: tuple[float, ...] | None = None
    hi: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, object]:
        """The bands as a manifest or checkpoint stores them."""
        return {
            "count": self.count,
            "select": list(self.select) if self.select else None,
            "scaling": {"dtype": "uint16", "lo": list(self.lo), "hi": list(self.hi)} if self.lo else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Bands:
        """From a manifest or checkpoint; None (written before bands existed) is 3-band RGB."""
        if not raw:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError(f"bands {raw!r} are not a table")
        try:
            scaling = raw.get("scaling") or {}
            select, lo, hi = raw.get("select"), scaling.get("lo"), scaling.get("hi")
            bands = cls(
                int(raw.get("count", 3)),
                tuple(int(b) for b in select) if select else None,
                tuple(map(float, lo)) if lo else None,
                tuple(map(float, hi)) if hi else None,
            )
        except (AttributeError, TypeError) as exc:
            raise ValueError(f"bands {raw!r} are unreadable ({exc})") from None
        if bands.count < 1 or any(v is not None and len(v) != bands.count for v in (bands.select, bands.lo, bands.hi)):
            raise ValueError(f"bands {raw!r} do not agree with their count")
        return bands


@dataclass
class Scene:
    """One input scene, opened (header read, bands checked) but not yet decoded."""

    path: Path
    width: int  # at the input's own size
    height: int
    geo: bool  # read by rasterio; the mask is written as a GeoTIFF
    bands: tuple[int, ...] = ()  # 1-based bands to read (GeoTIFF)
    profile: dict[str, object] = field(default_factory=dict)
    dtype: str = "uint8"
    trained: Bands | None = None  # the model's input, whose scaling applies to uint16 scenes

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def num_bands(self) -> int:
        return len(self.bands) if self.geo else 3


def open_scene(
    path: Path, *, bands: tuple[int, ...] | None = None, num_bands: int | None = 3, trained: Bands | None = None
) -> Scene:
    """Check that ``path`` is a readable image with ``num_bands`` bands (after ``bands`` selects some;
    by default the bands the model was ``trained`` on, else all). ``num_bands`` None: any count."""
    path = Path(path)
    tif = path.suffix.lower() in GEOTIFF_SUFFIXES
    if tif and has_rasterio():
        return _open_geotiff(path, bands or (trained.select if trained else None), num_bands, trained)
    if bands:
        if tif:
            raise MissingExtraError("rasterio", "geo")
        raise DatasetError(f"{show(path)}: --bands applies to GeoTIFF inputs only; drop it for PNG/JPEG images")
    try:
        (width, height), mode = image_header(path, too_large=AS_GEOTIFF)
    except DatasetError:
        if tif:  # a multi-band or 16-bit GeoTIFF Pillow cannot decode
            raise MissingExtraError("rasterio", "geo") from None
        raise
    if num_bands is not None and num_bands != 3:
        raise DatasetError(
            f"{show(path)}: an RGB image (3 bands) but the model takes {num_bands}; give it a GeoTIFF "
            f"with {num_bands} bands"
        )
    return Scene(path, width, height, geo=False, dtype=pillow_dtype(mode), trained=trained)


def pillow_dtype(mode: str) -> str:
    """The values of a Pillow picture of ``mode``: "uint16" for 16-bit greyscale, else "uint8"."""
    return "uint16" if mode in SIXTEEN_BIT else "uint8"


def _open_geotiff(path: Path, bands: tuple[int, ...] | None, num_bands: int | None, trained: Bands | None) -> Scene:
    rasterio = rasterio_module()
    try:
        with open_raster(path) as src:
            count, profile, dtype = src.count, dict(src.profile), src.dtypes[0]
            crs, width, height = src.crs, src.width, src.height
    except rasterio.errors.RasterioIOError as exc:
        raise DatasetError(
            f"{show(path)}: cannot read GeoTIFF ({first_line(exc)}); replace or remove the file"
        ) from None
    chosen = tuple(bands) if bands else tuple(range(1, count + 1))
    bad = [b for b in chosen if not 1 <= b <= count]
    if bad:
        raise DatasetError(f"{show(path)}: has {count} band(s), no band {bad[0]}; pass --bands with numbers 1..{count}")
    if num_bands is not None and len(chosen) != num_bands:
        raise DatasetError(
            f"{show(path)}: {len(chosen)} band(s) selected but the model takes {num_bands}; pick them with "
            f"--bands, e.g. --bands {','.join(str(i) for i in range(1, num_bands + 1))}"
        )
    if crs is None:
        log.warning("%s: no georeference (CRS); the class map is written without one", path)
    return Scene(path, width, height, geo=True, bands=chosen, profile=profile, dtype=dtype, trained=trained)


class SceneRows:
    """Rows of a scene at the model's scale as uint8 ``(rows, W, bands)``; ``read(r0, r1)`` is a ``RowReader``."""

    def __init__(self, scene: Scene, scale: float = 1.0) -> None:
        self.scene = scene
        self.width, self.height = scaled_size((scene.width, scene.height), scale)
        self._src = None
        if scene.geo:
            self._src = open_raster(scene.path)
            self._lo, self._hi = scene_ranges(self._src, scene)
            self.image = None
        else:
            image = read_image(scene.path, scene.trained)
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
        try:
            data = self._src.read(
                list(self.scene.bands),
                window=window,
                out_shape=(len(self.scene.bands), r1 - r0, self.width),
                resampling=Resampling.bilinear if sy != 1 else Resampling.nearest,
            )
        except Exception as exc:  # noqa: BLE001 - GDAL's read errors have many types; all mean a bad file
            raise DatasetError(
                f"{show(self.scene.path)}: cannot read GeoTIFF ({first_line(exc)}); replace or remove the file"
            ) from None
        return to_uint8(data, self._lo, self._hi).transpose(1, 2, 0)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()


def _sample(src, bands: tuple[int, ...]) -> np.ndarray:
    """A decimated read of ``bands`` (at most ``SAMPLE_SIDE`` pixels a side; GDAL uses overviews where present)."""
    step = max(1, int(np.ceil(max(src.width, src.height) / SAMPLE_SIDE)))
    shape = (len(bands), max(1, src.height // step), max(1, src.width // step))
    try:
        return src.read(list(bands), out_shape=shape)
    except Exception as exc:  # noqa: BLE001 - as in SceneRows.read
        raise DatasetError(
            f"{show(src.name)}: cannot read GeoTIFF ({first_line(exc)}); replace or remove the file"
        ) from None


def band_histogram(src, bands: tuple[int, ...]) -> np.ndarray:
    """Counts of every uint16 value per band ``(bands, 65536)`` in a decimated read of a uint16 GeoTIFF."""
    sample = _sample(src, bands)
    return np.stack([np.bincount(b.ravel(), minlength=65536) for b in sample])


def scene_ranges(src, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Per-band values mapped to 0 and 255: the full range for uint8, the model's recorded ranges for uint16
    when it has them, else the scene's own percentiles."""
    n = len(scene.bands)
    if scene.dtype == "uint8":
        return np.zeros(n), np.full(n, 255.0)
    trained = scene.trained
    if scene.dtype == "uint16" and trained is not None and trained.lo and len(trained.lo) == n:
        return np.asarray(trained.lo), np.asarray(trained.hi)
    if scene.dtype == "uint16":
        lo, hi = ranges_from_histogram(band_histogram(src, scene.bands))
    else:
        flat = _sample(src, scene.bands).reshape(n, -1).astype(np.float64)
        lo, hi = np.percentile(flat, PERCENTILES[0], axis=1), np.percentile(flat, PERCENTILES[1], axis=1)
        hi = np.maximum(hi, lo + 1e-6)
    log.info(
        "%s: %s bands scaled to 0..255 by its own ranges %s to %s", src.name, scene.dtype, lo.tolist(), hi.tolist()
    )
    return lo, hi


def raster_size(path: Path, *, what: str = "image") -> tuple[int, int]:
    """(width, height) of a GeoTIFF from its header; a mask must hold integers."""
    rasterio = rasterio_module()
    try:
        with open_raster(path) as src:
            size, dtype = (src.width, src.height), src.dtypes[0]
    except rasterio.errors.RasterioIOError as exc:
        raise DatasetError(
            f"{show(path)}: cannot read {what} ({first_line(exc)}); replace or remove the file"
        ) from None
    if what == "mask" and not np.issubdtype(np.dtype(dtype), np.integer):
        raise DatasetError(
            f"{show(path)}: mask holds {dtype} values, not integer class ids or colours; save it as uint8 "
            "(or uint16) class ids, or as 3 uint8 bands of colours"
        )
    return size


def decode(path: Path) -> None:
    """Decode every pixel of an image (truncated files often fail only here), keeping none."""
    if not is_geotiff(path):
        load_image(path)
        return
    with open_raster(path) as src:
        for band in range(1, src.count + 1):
            try:
                src.read(band)
            except Exception as exc:  # noqa: BLE001 - as in SceneRows.read
                raise DatasetError(
                    f"{show(path)}: cannot read GeoTIFF ({first_line(exc)}); replace or remove the file"
                ) from None


def read_scaled(scene: Scene, scale: float) -> np.ndarray:
    """The whole scene at ``scale`` as uint8 ``(H, W, bands)``, exactly as prediction reads it."""
    rows = SceneRows(scene, scale)
    try:
        return rows.read(0, rows.height)
    finally:
        rows.close()


def training_bands(images: list[Path], select: tuple[int, ...] | None) -> Bands:
    """The input of a model trained on ``images``: their band count and, where any is uint16, the per-band
    ``PERCENTILES`` of every uint16 image's decimated read, pooled (``plan_cache`` checked the files)."""
    hist, count = None, 3
    for path in images:
        interrupts.check()
        scene = check_training_image(path, select)
        count = scene.num_bands
        if scene.dtype != "uint16":
            continue
        if scene.geo:
            with open_raster(path) as src:
                h = band_histogram(src, scene.bands)
        else:  # a 16-bit greyscale picture read by Pillow: the same rule, its grey in each of the 3 bands
            h = grey_histogram(grey_values(load_image(path)))
        hist = h if hist is None else hist + h
    if hist is None:
        return Bands(count, select)
    lo, hi = ranges_from_histogram(hist)
    log.info("uint16 bands scaled to 0..255 per band from %s to %s (training set)", lo.tolist(), hi.tolist())
    return Bands(count, select, tuple(lo.tolist()), tuple(hi.tolist()))


def check_training_image(path: Path, select: tuple[int, ...] | None, trained: Bands | None = None) -> Scene:
    """Open a training image (its header): a GeoTIFF must hold uint8 or uint16 values; PNG/JPEG headers are
    read with the checks of ``reading.image_header`` (file problems, the pixel limit, orientation)."""
    if not is_geotiff(path) and not select:
        try:
            size, mode = image_header(path)
            return Scene(path, *size, geo=False, dtype=pillow_dtype(mode), trained=trained)
        except DatasetError:
            if path.suffix.lower() in GEOTIFF_SUFFIXES:  # a multi-band or 16-bit GeoTIFF Pillow cannot decode
                raise MissingExtraError("rasterio", "geo") from None
            raise
    scene = open_scene(path, bands=select, num_bands=None, trained=trained)
    if scene.dtype not in ("uint8", "uint16"):
        raise DatasetError(
            f"{show(path)}: GeoTIFF of {scene.dtype} values; training reads uint8 or uint16 images: convert "
            "it (gdal_translate -ot UInt16 -scale ...)"
        )
    return scene
