"""Class names <-> colours (or mask ids) <-> class indices. Mask-to-class conversion never invents a class.

A palette is either a *colour* palette (masks are RGB images, each class one colour) or an *index* palette
(masks hold class ids: L, P, 1-bit or 16-bit images whose pixel values are the ids of the classes file).
Index palettes still carry display colours, for predicted masks and reports: :data:`DISPLAY_COLORS` in class
order (the order of the classes file), unless the classes file gives a colour with the id.
"""

from __future__ import annotations

import colorsys
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aerotune.errors import PaletteError, first_line
from aerotune.reading import load_json, load_yaml, read_text, show, toml_parser

#: Label written for pixels whose colour is unknown when they are explicitly ignored.
IGNORE_INDEX = 255
#: Largest id an index mask can hold (16-bit PNG/TIFF).
MAX_MASK_ID = 65535

#: The palette that matches the Dubai aerial masks (SOURCE.md), in the reference's class order.
DUBAI_CLASSES: tuple[tuple[str, str], ...] = (
    ("Building", "#3C1098"),
    ("Land", "#8429F6"),
    ("Road", "#6EC1E4"),
    ("Vegetation", "#FEDD3A"),
    ("Water", "#E2A929"),
    ("Unlabeled", "#9B9B9B"),
)

#: Display colours of index-palette classes, by position in the classes file (20 distinct colours after
#: Sasha Trubetskoy's list); classes beyond these get evenly spread hues.
DISPLAY_COLORS: tuple[str, ...] = (
    "#E6194B",
    "#3CB44B",
    "#FFE119",
    "#4363D8",
    "#F58231",
    "#911EB4",
    "#42D4F4",
    "#F032E6",
    "#BFEF45",
    "#FABED4",
    "#469990",
    "#DCBEFF",
    "#9A6324",
    "#FFFAC8",
    "#800000",
    "#AAFFC3",
    "#808000",
    "#FFD8B1",
    "#000075",
    "#A9A9A9",
)


def parse_hex(value: str, *, where: str = "palette") -> tuple[int, int, int]:
    """Parse ``#RRGGBB`` into an RGB tuple."""
    text = str(value).strip().lstrip("#")
    try:
        if len(text) != 6:
            raise ValueError
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        raise PaletteError(
            f"{where}: colour {value!r} is not of the form #RRGGBB (or a whole-number mask id); fix the classes file"
        ) from None


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def key_text(key: tuple[int, int, int] | int) -> str:
    """A mask value as people read it: ``#RRGGBB`` for a colour, ``id N`` for a class id."""
    return f"id {key}" if isinstance(key, int) else to_hex(key)


def display_colors(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct display colours: :data:`DISPLAY_COLORS`, then golden-ratio hues."""
    out = [parse_hex(c) for c in DISPLAY_COLORS[:n]]
    k = 0
    while len(out) < n:
        r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.55 + 0.4 * (k % 2), 0.95 - 0.3 * (k % 3) / 2)
        c = (round(r * 255), round(g * 255), round(b * 255))
        if c not in out:
            out.append(c)
        k += 1
    return out


def _pack(rgb: np.ndarray) -> np.ndarray:
    """Pack an (..., 3) uint8 array into one int32 key per pixel."""
    rgb = rgb.astype(np.int32, copy=False)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpack(key: int) -> tuple[int, int, int]:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


def _unpack_all(keys: np.ndarray) -> np.ndarray:
    """Packed keys back to a (K, 3) colour array."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1)


def _unique_colors(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct packed colours of ``keys``, each pixel's index among them, and their pixel counts."""
    if keys.size < 1 << 22:
        return np.unique(keys, return_inverse=True, return_counts=True)
    # Large masks: tables over all 2**24 colours take linear time, where np.unique sorts every pixel.
    counts = np.bincount(keys, minlength=1 << 24)
    values = np.flatnonzero(counts)
    index = np.zeros(1 << 24, dtype=np.int32)
    index[values] = np.arange(len(values), dtype=np.int32)
    return values, index[keys], counts[values]


def _check(names: tuple[str, ...], colors: tuple, ids: tuple[int, ...] | None, ignore_index: int, where: str) -> None:
    if not names or len(names) != len(colors) or (ids is not None and len(ids) != len(names)):
        raise PaletteError(f"{where}: needs at least one class, each with one colour or mask id")
    if len(names) >= ignore_index:
        raise PaletteError(
            f"{where}: {len(names)} classes, but at most {ignore_index - 1} are supported (class "
            f"indices are stored as uint8 and {ignore_index} marks ignored pixels); merge classes"
        )
    for label, values, show_value in (("name", names, repr), ("colour", colors, to_hex), ("mask id", ids, str)):
        seen: dict[Any, str] = {}
        for name, value in zip(names, values or ()):
            if value in seen:
                raise PaletteError(
                    f"{where}: classes {seen[value]!r} and {name!r} both have {label} "
                    f"{show_value(value)}; give each class its own {label}"
                )
            seen[value] = name


@dataclass(frozen=True)
class Palette:
    """An ordered list of classes, each with one mask colour, or (index palette) one mask id and a display colour.

    Class indices are the positions in ``names``. ``ignore_index`` marks pixels that loss and metrics skip.
    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    ids: tuple[int, ...] | None = None  # None: masks are colours; else the mask value of each class
    #: Index palettes: which colours the classes file gave (the others are display colours it may take from the
    #: masks' own PNG palette, :meth:`with_colors`); None: all of them.
    given: tuple[bool, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check(self.names, self.colors, self.ids, self.ignore_index, "palette")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def by_id(self) -> bool:
        """True when masks hold class ids rather than colours."""
        return self.ids is not None

    @property
    def hex_colors(self) -> list[str]:
        return [to_hex(c) for c in self.colors]

    @property
    def keys(self) -> list[tuple[int, int, int] | int]:
        """The mask value of every class: its colour, or its id."""
        return list(self.ids) if self.ids is not None else list(self.colors)

    def to_dict(self) -> dict[str, object]:
        """The classes-file format: name -> hex colour, or name -> {"id": N, "color": hex} for index palettes."""
        if self.ids is None:
            return dict(zip(self.names, self.hex_colors))
        return {n: {"id": i, "color": c} for n, i, c in zip(self.names, self.ids, self.hex_colors)}

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, where: str = "palette") -> Palette:
        """Build from name -> "#RRGGBB", name -> id, or name -> {"id": N, "color": "#RRGGBB"} (one kind only)."""
        names, colors, ids = [], [], []
        kinds: dict[str, str] = {}
        for key, value in mapping.items():
            name = str(key)
            at = f"{where}: class {name!r}"
            if not name.strip():
                raise PaletteError(f"{where}: a class has an empty name; give every class a name")
            color = None
            if isinstance(value, dict):
                unknown = set(value) - {"id", "color"}
                if unknown or "id" not in value:
                    raise PaletteError(
                        f'{at} = {value!r}: expected {{"id": N}} with an optional "color"; fix the classes file'
                    )
                color, value = value.get("color"), value["id"]
            if isinstance(value, int) and not isinstance(value, bool):
                if not 0 <= value <= MAX_MASK_ID:
                    raise PaletteError(
                        f"{at}: mask id {value} is outside 0..{MAX_MASK_ID}; use the pixel value "
                        "that marks this class in the masks"
                    )
                kinds.setdefault("id", name)
                ids.append(value)
                colors.append(None if color is None else parse_hex(color, where=at))
            elif isinstance(value, str):
                kinds.setdefault("colour", name)
                colors.append(parse_hex(value, where=at))
            else:
                raise PaletteError(
                    f'{at} = {value!r}: expected a colour "#RRGGBB" or a whole-number mask id; fix the classes file'
                )
            names.append(name)
        if len(kinds) > 1:
            raise PaletteError(
                f"{where}: class {kinds['colour']!r} has a colour but class {kinds['id']!r} a mask "
                "id; masks hold either colours or ids, so give every class the same kind"
            )
        if not ids:
            _check(tuple(names), tuple(colors), None, IGNORE_INDEX, where)
            return cls(names=tuple(names), colors=tuple(colors))
        free = iter(c for c in display_colors(len(names) + sum(1 for c in colors if c)) if c not in colors)
        filled = tuple(c if c is not None else next(free) for c in colors)
        _check(tuple(names), filled, tuple(ids), IGNORE_INDEX, where)
        return cls(names=tuple(names), colors=filled, ids=tuple(ids), given=tuple(c is not None for c in colors))

    def with_colors(self, colors: dict[str, str]) -> Palette:
        """The palette with these display colours (class name -> ``#RRGGBB``) in place of its own."""
        if not colors:
            return self
        new = tuple(parse_hex(colors[n]) if n in colors else c for n, c in zip(self.names, self.colors))
        return dataclasses.replace(self, colors=new)

    @classmethod
    def dubai(cls) -> Palette:
        return cls.from_dict(dict(DUBAI_CLASSES))

    def check_tolerance(self, tolerance: int) -> None:
        """Refuse a colour tolerance for an index palette: mask ids are exact values (the range is checked by
        ``DataConfig.validate``)."""
        if tolerance and self.by_id:
            raise PaletteError(
                f"--color-tolerance {tolerance} applies to colour masks, but the classes file maps names to mask "
                "ids, which must match exactly; drop --color-tolerance (data.color_tolerance = 0)"
            )

    def match(self, colors: np.ndarray, tolerance: int = 0) -> np.ndarray:
        """The class index of each of the (K, 3) ``colors``, or -1 for a colour no class takes.

        A colour takes the class whose palette colour is nearest (Euclidean RGB distance) when it differs from
        it by at most ``tolerance`` in every channel and no other palette colour is as near (a tie stays
        unknown). With ``tolerance`` 0 only exact palette colours match. Vectorised over colours: callers pass
        the unique colours of a mask, never its pixels.
        """
        colors = np.asarray(colors, dtype=np.int32).reshape(-1, 3)
        pal = np.asarray(self.colors, dtype=np.int32)
        out = np.full(len(colors), -1, dtype=np.int64)
        for start in range(0, len(colors), 1 << 16):  # bounded memory: (block, classes, 3) differences
            block = colors[start : start + (1 << 16)]
            diff = block[:, None, :] - pal[None, :, :]
            dist = (diff * diff).sum(axis=2)
            best = dist.argmin(axis=1)
            rows = np.arange(len(block))
            nearest = dist[rows, best]
            tie = (dist == nearest[:, None]).sum(axis=1) > 1
            close = np.abs(diff[rows, best]).max(axis=1) <= tolerance
            out[start : start + len(block)] = np.where(close & ~tie, best, -1)
        return out

    def encode(self, mask: np.ndarray, *, tolerance: int = 0) -> tuple[np.ndarray, dict[Any, int]]:
        """Turn a mask into class indices.

        ``mask`` is (H, W, 3) uint8 colours for a colour palette, (H, W) integer ids for an index palette.
        Returns the index map (uint8; unknown values get ``ignore_index``) and the unknown values (colour
        tuples or ids) with their pixel counts. The caller decides whether unknown values are an error.
        ``tolerance`` > 0 (colour palettes only) maps colours near a palette colour to its class, as
        :meth:`match` says.
        """
        self.check_tolerance(tolerance)
        if tolerance:  # per unique colour, never per pixel
            values, inverse, counts = _unique_colors(_pack(mask).ravel())
            classes = self.match(_unpack_all(values), tolerance)
            lut = np.where(classes >= 0, classes, self.ignore_index).astype(np.uint8)
            missing = classes < 0
            unknown = {_unpack(int(v)): int(n) for v, n in zip(values[missing], counts[missing])}
            return lut[inverse].reshape(mask.shape[:2]), unknown
        if self.ids is None:
            keys, known = _pack(mask), _pack(np.asarray(self.colors, dtype=np.uint8))
        else:
            keys, known = mask.astype(np.int64, copy=False), np.asarray(self.ids, dtype=np.int64)
        order = np.argsort(known)
        sorted_keys = known[order]
        pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        hit = sorted_keys[pos] == keys
        out = np.where(hit, order[pos], self.ignore_index).astype(np.uint8)
        unknown: dict[Any, int] = {}
        if not hit.all():
            values, counts = np.unique(keys[~hit], return_counts=True)
            unpack = int if self.ids is not None else (lambda v: _unpack(int(v)))
            unknown = {unpack(v): int(c) for v, c in zip(values, counts)}
        return out, unknown

    def decode(self, ids: np.ndarray, *, ignore_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Turn class indices into an (H, W, 3) colour mask (ignored pixels get ``ignore_color``)."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[:] = ignore_color
        lut[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return lut[ids]


def count_colors(mask: np.ndarray) -> dict[Any, int]:
    """Every value in a mask with its pixel count: colours of an (H, W, 3) mask, ids of an (H, W) one."""
    if mask.ndim == 2:
        values, counts = np.unique(mask.ravel(), return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}
    values, counts = np.unique(_pack(mask).ravel(), return_counts=True)
    return {_unpack(int(v)): int(c) for v, c in zip(values, counts)}


FORMAT_HINT = 'write it as name = "#RRGGBB" (or name = ID for masks of class ids) pairs'


def _check_yaml_values(data: Any, where: str) -> None:
    """In YAML an unquoted ``#3C1098`` starts a comment, leaving the class without a value: say so."""
    table = data.get("classes") if isinstance(data, dict) and isinstance(data.get("classes"), dict) else data
    if not isinstance(table, dict):
        return
    for name, value in table.items():
        if value is None:
            raise PaletteError(
                f"{where}: class {str(name)!r} has no value; in YAML quote colours, since # starts a comment: "
                f'{name}: "#3C1098" (or give a mask id: {name}: 1)'
            )


def load_palette(path: str | Path | None) -> Palette:
    """Load a classes file (JSON, TOML or YAML: name -> hex colour or mask id), or the built-in Dubai palette for
    ``None``.

    The JSON export format with ``{"classes": [{"title": ..., "color": ...}]}`` is read too, and a top-level
    ``classes`` table. A name given twice is an error, not a silent overwrite.
    """
    if path is None:
        return Palette.dubai()
    path = Path(path)
    where = show(path)
    text = read_text(
        path, what="classes file", fix="pass an existing JSON, TOML or YAML file to --classes", error=PaletteError
    )
    try:
        suffix = path.suffix.lower()
        if suffix == ".toml":
            data = toml_parser().loads(text)
        elif suffix in (".yaml", ".yml"):
            data = load_yaml(text, where=where, error=PaletteError)
            _check_yaml_values(data, where)
        else:
            data = load_json(text, where=where, error=PaletteError)
    except PaletteError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error is bad input
        raise PaletteError(f"{where}: cannot parse classes file ({first_line(exc)}); {FORMAT_HINT}") from None
    if isinstance(data, dict) and isinstance(data.get("classes"), list):
        try:
            entries = [
                (str(c["title"]), c["id"] if "id" in c and "color" not in c else c["color"]) for c in data["classes"]
            ]
        except (KeyError, TypeError):
            raise PaletteError(f"{where}: each entry of 'classes' needs 'title' and 'color' (or 'id')") from None
        data = {}
        for name, value in entries:
            if name in data:
                raise PaletteError(f"{where}: class {name!r} appears twice in 'classes'; keep one of them")
            data[name] = value
    elif isinstance(data, dict) and isinstance(data.get("classes"), dict):
        data = data["classes"]
    if not isinstance(data, dict) or not data:
        raise PaletteError(
            f"{where}: expected a mapping of class name to hex colour or mask id, like "
            'Building = "#3C1098" or Building = 1'
        )
    return Palette.from_dict(data, where=where)
