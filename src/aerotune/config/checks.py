"""The small value checks and parsers the config sections validate with (one-line ``ConfigError`` on bad input)."""

from __future__ import annotations

from aerotune.errors import ConfigError


def check(ok: bool, key: str, value: object, expected: str) -> None:
    """Raise ``ConfigError`` naming ``key`` and what to use instead unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} = {value!r} is invalid; use {expected}")


def is_extension(text: str) -> bool:
    """True for a suffix that ends in an image file extension (``_mask.png``): suffixes end before it."""
    return text.lower().endswith((".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"))


def test_tile_names(text: str | None) -> list[str]:
    """The tile folder names of ``data.test_tiles`` (comma-separated; blanks around names dropped)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def parse_bands(text: str | None, *, where: str = "--bands") -> tuple[int, ...] | None:
    """``"4,3,2"`` -> ``(4, 3, 2)`` (1-based GeoTIFF bands, in the model's channel order); empty: None (all)."""
    if text is None or not str(text).strip():
        return None
    try:
        bands = tuple(int(b) for b in str(text).split(","))
    except ValueError:
        raise ConfigError(f"{where} {text!r}: expected band numbers separated by commas, e.g. 1,2,3") from None
    if any(b < 1 for b in bands):
        raise ConfigError(f"{where} {text!r}: band numbers start at 1")
    return bands
