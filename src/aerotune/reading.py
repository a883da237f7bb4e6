"""Reading users' files safely: printable names, text files (TOML, JSON) and images, each failure one line.

Every reader here turns what can go wrong with a file someone else made (missing, a folder, unreadable,
vanished, a dangling or looping symlink, empty, corrupt, a name that is not UTF-8, a header claiming an
enormous size) into an ``AerotuneError`` that names the file and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from aerotune.errors import AerotuneError, ConfigError, DatasetError, first_line

#: Environment variable that raises (or lowers) the largest image, in pixels, that aerotune decodes.
MAX_PIXELS_ENV = "AEROTUNE_MAX_IMAGE_PIXELS"
#: Default limit: Pillow's own hard limit (2 x its warning threshold), about 179 million pixels (~13400 x 13400).
DEFAULT_MAX_PIXELS = 178_956_970


def show(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes that are not UTF-8 appear as ``\\xNN`` instead of crashing a print."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def toml_parser() -> ModuleType:
    """``tomllib`` (Python 3.11+) or its backport ``tomli`` (a dependency on Python 3.10)."""
    try:
        import tomllib
    except ImportError:
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib


def file_problem(path: Path, exc: OSError | None = None) -> str | None:
    """Why ``path`` cannot be read as a file ("is a folder", "permission denied", ...), or None if it can.

    Tells a dangling or looping symlink apart from a missing file, so messages name the link, not "no file".
    """
    try:
        if path.is_symlink():
            target = os.readlink(path)
            try:
                os.stat(path)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    return f"symlink loop (-> {show(target)}); replace the link with the real file"
                return f"broken symlink (-> {show(target)}, which does not exist); fix or remove the link"
        if path.is_dir():
            return "it is a folder, not a file; rename or remove it"
        if not path.exists():
            return "file not found (moved or deleted while aerotune ran?); check the path and run again"
    except OSError as err:
        return f"{first_line(err)}; check the path and its permissions"
    if exc is not None and isinstance(exc, PermissionError) or not os.access(path, os.R_OK):
        return "permission denied; make it readable (chmod u+r) or run as a user who can read it"
    return None


def read_text(path: str | Path, *, what: str, fix: str, error: type[AerotuneError] = ConfigError) -> str:
    """The text of a small settings file (UTF-8, a leading byte-order mark is dropped)."""
    path = Path(path)
    problem = file_problem(path)
    if problem and "not found" in problem and not path.is_symlink():
        raise error(f"{show(path)}: {what} not found; {fix}")
    if problem:
        raise error(f"{show(path)}: cannot read {what}: {problem}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{show(path)}: cannot read {what} ({first_line(exc)}); {fix}") from None
    return data.decode("utf-8-sig", errors="replace")


def load_json(text: str, *, where: str, error: type[AerotuneError] = ConfigError) -> Any:
    """Parse JSON; a key given twice in one object is an error (the default would silently keep the last)."""

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        """One JSON object, refusing a key given twice."""
        out: dict[str, object] = {}
        for key, value in items:
            if key in out:
                raise error(f"{where}: key {key!r} appears twice ({out[key]!r} and {value!r}); keep one of them")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def load_yaml(text: str, *, where: str, error: type[AerotuneError] = ConfigError) -> Any:
    """Parse YAML safely; a key given twice in one mapping is an error (PyYAML would silently keep the last)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN202 - PyYAML's signature
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor" may repeat by design
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    line = key_node.start_mark.line + 1
                    raise error(
                        f"{where}: key {key!r} appears twice (line {seen[key]} and line {line}); keep one of them"
                    )
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def max_image_pixels() -> int:
    """The pixel limit for decoding images: ``$AEROTUNE_MAX_IMAGE_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw)) if "e" in raw.lower() else int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive whole number of "
            f"pixels; set it like {MAX_PIXELS_ENV}=400000000 or unset it"
        )
    return value


@contextlib.contextmanager
def _pixel_limit(limit: int) -> Iterator[None]:
    """Pillow's decompression-bomb guard at ``limit`` pixels, raised as an error from the first pixel over it."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


@contextlib.contextmanager
def open_image(path: Path, *, what: str = "image", too_large: str = "") -> Iterator[Any]:
    """Open ``path`` with Pillow; any failure to open or decode it inside the block is a one-line ``DatasetError``
    (``too_large``: another fix for an image over the pixel limit). Pixels as stored: decode with
    :func:`load_image`, which turns them as viewers show them."""
    from PIL import Image, UnidentifiedImageError

    limit = max_image_pixels()
    try:
        with _pixel_limit(limit), Image.open(path) as im:
            yield im
    except AerotuneError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DatasetError(_too_large(path, what, limit) + too_large) from None
    except UnidentifiedImageError:
        problem = file_problem(path)
        if problem is None:
            empty = path.stat().st_size == 0
            problem = "the file is empty (0 bytes)" if empty else "not an image file that Pillow can read"
            problem += "; replace or remove it"
        raise DatasetError(f"{show(path)}: cannot read {what}: {problem}") from None
    except OSError as exc:
        problem = file_problem(path, exc) or f"{first_line(exc)}; replace or remove the file"
        raise DatasetError(f"{show(path)}: cannot read {what}: {problem}") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on a user's file is bad input, not a bug
        raise DatasetError(
            f"{show(path)}: cannot read {what}: {type(exc).__name__}: {first_line(exc)}; replace or remove the file"
        ) from None


#: EXIF orientation (tag 274) -> the Pillow transpose that shows the stored pixels as viewers display them; the
#: mapping of ``PIL.ImageOps.exif_transpose``.
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}  # fmt: skip


def orientation(im: Any) -> int:
    """The EXIF orientation of an opened image (1: as stored), read without decoding pixels.

    Pillow's PNG ``getexif`` decodes the whole image to look for an ``eXIf`` chunk after the pixel data; the
    base method reads what the header held, so a size from the header and the decoded pixels always agree.
    """
    from PIL import Image

    value = Image.Image.getexif(im).get(0x0112, 1)
    return value if value in _TRANSPOSE else 1


def displayed_size(im: Any) -> tuple[int, int]:
    """(width, height) as image viewers show the image: swapped when its orientation turns it by 90 degrees."""
    w, h = im.size
    return (h, w) if orientation(im) in (5, 6, 7, 8) else (w, h)


def image_header(
    path: Path, *, what: str = "image", upright: bool = True, too_large: str = ""
) -> tuple[tuple[int, int], str]:
    """(displayed size, mode) of an image from its header, with the checks of :func:`open_image`.

    ``upright`` False: the stored size (files read by GDAL, which ignores the orientation tag)."""
    with open_image(path, what=what, too_large=too_large) as im:
        return (displayed_size(im) if upright else im.size), im.mode


def load_image(path: Path, *, what: str = "image", upright: bool = True) -> Any:
    """Decode an image (a PIL image) turned as viewers show it (its EXIF orientation applied, as
    ``PIL.ImageOps.exif_transpose`` does), so annotation tools' masks line up with their images; any failure
    is a one-line ``DatasetError``. Every image and mask aerotune decodes with Pillow is read here."""
    from PIL import Image

    with open_image(path, what=what) as im:
        turn = orientation(im) if upright else 1
        im.load()
        if turn == 1:
            return im  # its pixels are loaded: closing the file keeps them
        return im.transpose(getattr(Image.Transpose, _TRANSPOSE[turn]))


def _too_large(path: Path, what: str, limit: int) -> str:
    size = ""
    with contextlib.suppress(Exception):
        from PIL import Image

        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(path) as im:
                w, h = im.size
                size = f" claims {w}x{h} = {w * h:,} pixels, more than"
        finally:
            Image.MAX_IMAGE_PIXELS = old
    size = size or " is larger than"
    return (
        f"{show(path)}: {what}{size} the limit of {limit:,} (a guard against decompression bombs); "
        f"if it is a real large scene, raise the limit, e.g. {MAX_PIXELS_ENV}={max(limit * 4, 10**9)}"
    )
