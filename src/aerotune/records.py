"""The base of the typed records stages write for each other (``train/records.py``, ``tune/records.py``, ...).

A record is a frozen dataclass written as one JSON object with a ``version``. ``from_json`` is tolerant of
files written before a field existed (fields with a default may be missing; unknown keys are ignored), and
refuses a file without a required field, a field of the wrong JSON type, or one from a newer version, with a
one-line ``RunError``.

Records nest: a field annotated with a :class:`Part` (a record section without a version of its own), a list of
them, a dict of them, or ``... | None`` of them, is read and written as its JSON object; a field's JSON key is its
name unless its metadata says ``key``. Field types are checked
as JSON sees them (``float`` takes an int, and ``null``: strict JSON writes NaN as ``null``; ``Any`` is not
checked).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from aerotune.errors import RunError, first_line
from aerotune.files import write_json

R = TypeVar("R", bound="Record")
P = TypeVar("P", bound="Part")

#: A JSON object whose keys and values are free-form (a parsed settings file, a search space, a record's JSON).
JSONDict = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Part:
    """A frozen dataclass read from and written as one JSON object, nested in a record (no version of its own)."""

    #: Fields left out of the JSON while they are None (sections a run may not have).
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        """The part as a plain JSON object; nested parts as theirs."""
        return {
            json_key(f): to_plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not (f.name in self.OMIT_NONE and getattr(self, f.name) is None)
        }

    @classmethod
    def from_json(cls: type[P], data: Any, *, where: str | None = None) -> P:
        """Read the part (missing defaulted fields and unknown keys are fine); else ``RunError`` naming ``where``."""
        where = where or getattr(cls, "FILE", "") or cls.__name__
        if not isinstance(data, dict):
            raise RunError(f"{where}: expected a JSON object, found {type(data).__name__}; the file is damaged")
        missing = [
            json_key(f)
            for f in dataclasses.fields(cls)
            if json_key(f) not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise RunError(f"{where}: field {missing[0]!r} is missing; the file is damaged or not aerotune's")
        hints = _hints(cls)
        return cls(
            **{
                f.name: _read(hints[f.name], data[json_key(f)], f"{where}: field {json_key(f)!r}")
                for f in dataclasses.fields(cls)
                if json_key(f) in data
            }
        )


@dataclasses.dataclass(frozen=True)
class Record(Part):
    """A versioned JSON record; subclasses are frozen dataclasses and set ``VERSION`` and ``FILE``."""

    #: The newest version this code writes (and the newest it reads).
    VERSION: ClassVar[int] = 1
    #: The file name the record is usually written to (for messages).
    FILE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The record as a plain JSON object, with its version."""
        return {**super().to_json(), "version": self.VERSION}

    @classmethod
    def from_json(cls: type[R], data: Any, *, where: str | None = None) -> R:
        """Read a record written by this or an older version; raise ``RunError`` naming ``where`` otherwise."""
        where = where or cls.FILE or cls.__name__
        version = data.get("version", 1) if isinstance(data, dict) else 1
        if not isinstance(version, int) or version > cls.VERSION:
            raise RunError(f"{where}: written by a newer aerotune (record version {version!r}); upgrade aerotune")
        return super().from_json(data, where=where)

    @classmethod
    def read(cls: type[R], path: Path, *, fix: str) -> R:
        """Read the record in ``path``; a missing or unreadable file is a ``RunError`` that ends with ``fix``."""
        return cls.from_json(read_json(path, fix=fix), where=str(path))

    def write(self, path: Path) -> None:
        """Write the record atomically as strict JSON."""
        write_json(path, self.to_json(), default=str)


def read_records(cls: type[R], path: Path, *, fix: str) -> list[R]:
    """A JSON list of records (e.g. ``trials.json``)."""
    data = read_json(path, fix=fix)
    if not isinstance(data, list):
        raise RunError(f"{path}: expected a JSON list; {fix}")
    return [cls.from_json(row, where=f"{path} item {i}") for i, row in enumerate(data)]


def read_json(path: Path, *, fix: str) -> Any:
    """The JSON in ``path``; a missing or unreadable file is a ``RunError`` that ends with ``fix``."""
    if not path.is_file():
        raise RunError(f"{path}: file not found; {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{path}: cannot read ({first_line(exc)}); {fix}") from None


def json_key(f: dataclasses.Field) -> str:
    """A field's key in JSON: its name, or ``metadata["key"]`` (a key that is a Python keyword, e.g. ``class``)."""
    return f.metadata.get("key", f.name)


def to_plain(value: Any) -> Any:
    """Parts as their JSON objects, inside lists, tuples and dicts too; anything else as it is."""
    if isinstance(value, Part):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    """The resolved field annotations of a part class (cached)."""
    return typing.get_type_hints(cls)


def _read(hint: Any, value: Any, where: str) -> Any:
    """``value`` read as ``hint``: nested parts built, JSON types checked; ``RunError`` naming ``where`` if wrong."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # ``X | None``: X's own message
            return _read(others[0], value, where)
        for arg in others:
            try:
                return _read(arg, value, where)
            except RunError:
                continue
        raise _wrong(hint, value, where)
    if isinstance(hint, type) and issubclass(hint, Part):
        return hint.from_json(value, where=where)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list):
            raise _wrong(hint, value, where)
        inner = args[0] if args and origin is list else Any
        items = [_read(inner, v, f"{where} item {i}") for i, v in enumerate(value)]
        return items if origin is list or hint is list else tuple(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _wrong(hint, value, where)
        inner = args[1] if args else Any
        return {k: _read(inner, v, f"{where}[{k!r}]") for k, v in value.items()}
    if hint is float:
        ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = not isinstance(hint, type) or isinstance(value, hint)
    if not ok:
        raise _wrong(hint, value, where)
    return value


def _wrong(hint: Any, value: Any, where: str) -> RunError:
    name = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    return RunError(f"{where} is a {type(value).__name__}, not {name}; the file is damaged or not aerotune's")
