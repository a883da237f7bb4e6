"""Class names <-> colours <-> ids. Colour-to-id conversion never invents a class."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aerotune.errors import PaletteError, first_line

#: Label written for pixels whose colour is unknown when they are explicitly ignored.
IGNORE_INDEX = 255

#: The palette that matches the Dubai aerial masks (SOURCE.md), in the reference's class order.
DUBAI_CLASSES: tuple[tuple[str, str], ...] = (
    ("Building", "#3C1098"),
    ("Land", "#8429F6"),
    ("Road", "#6EC1E4"),
    ("Vegetation", "#FEDD3A"),
    ("Water", "#E2A929"),
    ("Unlabeled", "#9B9B9B"),
)


def parse_hex(value: str, *, where: str = "palette") -> tuple[int, int, int]:
    """Parse ``#RRGGBB`` into an RGB tuple."""
    text = str(value).strip().lstrip("#")
    if len(text) != 6:
        raise PaletteError(f"{where}: colour {value!r} is not of the form #RRGGBB; fix the classes file")
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        raise PaletteError(
            f"{where}: colour {value!r} is not of the form #RRGGBB; fix the classes file"
        ) from None


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def _pack(rgb: np.ndarray) -> np.ndarray:
    """Pack an (..., 3) uint8 array into one int32 key per pixel."""
    rgb = rgb.astype(np.int32, copy=False)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(key: int) -> tuple[int, int, int]:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


@dataclass(frozen=True)
class Palette:
    """An ordered list of classes, each with one mask colour.

    Class ids are the positions in ``names``. ``ignore_index`` marks pixels that loss and metrics skip.
    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors) or not self.names:
            raise PaletteError("palette: needs at least one class and one colour per class")
        if len(set(self.colors)) != len(self.colors):
            raise PaletteError("palette: two classes share one colour; give each class its own colour")
        if len(set(self.names)) != len(self.names):
            raise PaletteError("palette: two classes share one name; give each class its own name")
        if len(self.names) >= self.ignore_index:
            raise PaletteError(f"palette: at most {self.ignore_index - 1} classes are supported")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def hex_colors(self) -> list[str]:
        return [to_hex(c) for c in self.colors]

    def to_dict(self) -> dict[str, str]:
        """Name -> hex colour, in class order (the classes-file format)."""
        return dict(zip(self.names, self.hex_colors))

    @classmethod
    def from_dict(cls, mapping: dict[str, str], *, where: str = "palette") -> Palette:
        names = tuple(str(k) for k in mapping)
        colors = tuple(parse_hex(v, where=f"{where}: class {k!r}") for k, v in mapping.items())
        return cls(names=names, colors=colors)

    @classmethod
    def dubai(cls) -> Palette:
        return cls.from_dict(dict(DUBAI_CLASSES))

    def encode(self, rgb: np.ndarray) -> tuple[np.ndarray, dict[tuple[int, int, int], int]]:
        """Turn an (H, W, 3) uint8 colour mask into class ids.

        Returns the id map (uint8; unknown colours get ``ignore_index``) and the unknown colours with
        their pixel counts. The caller decides whether unknown colours are an error.
        """
        keys = _pack(rgb)
        known = _pack(np.asarray(self.colors, dtype=np.uint8))
        order = np.argsort(known)
        sorted_keys = known[order]
        pos = np.searchsorted(sorted_keys, keys)
        pos_clipped = np.minimum(pos, len(sorted_keys) - 1)
        hit = sorted_keys[pos_clipped] == keys
        ids = np.where(hit, order[pos_clipped], self.ignore_index).astype(np.uint8)
        unknown: dict[tuple[int, int, int], int] = {}
        if not hit.all():
            values, counts = np.unique(keys[~hit], return_counts=True)
            unknown = {_unpack(int(v)): int(c) for v, c in zip(values, counts)}
        return ids, unknown

    def decode(self, ids: np.ndarray, *, ignore_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Turn class ids back into an (H, W, 3) colour mask (ignored pixels get ``ignore_color``)."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[:] = ignore_color
        lut[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return lut[ids]


def count_colors(rgb: np.ndarray) -> dict[tuple[int, int, int], int]:
    """Every colour in an (H, W, 3) mask with its pixel count."""
    values, counts = np.unique(_pack(rgb).ravel(), return_counts=True)
    return {_unpack(int(v)): int(c) for v, c in zip(values, counts)}


def load_palette(path: str | Path | None) -> Palette:
    """Load a classes file (JSON or TOML: name -> hex colour), or the built-in Dubai palette for ``None``.

    The JSON export format with ``{"classes": [{"title": ..., "color": ...}]}`` is read too.
    """
    if path is None:
        return Palette.dubai()
    path = Path(path)
    if not path.is_file():
        raise PaletteError(f"{path}: classes file not found; pass an existing JSON or TOML file to --classes")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is bad input
        raise PaletteError(
            f"{path}: cannot parse classes file ({first_line(exc)}); write it as name = \"#RRGGBB\" pairs"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("classes"), list):
        try:
            data = {str(c["title"]): str(c["color"]) for c in data["classes"]}
        except (KeyError, TypeError):
            raise PaletteError(f"{path}: each entry of 'classes' needs 'title' and 'color'") from None
    elif isinstance(data, dict) and isinstance(data.get("classes"), dict):
        data = data["classes"]
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
        raise PaletteError(f"{path}: expected a mapping of class name to hex colour, like Building = \"#3C1098\"")
    return Palette.from_dict(data, where=str(path))
