"""The base of the typed records stages write for each other (``train/records.py``, ``tune/records.py``, ...).

A record is a frozen dataclass written as one JSON object with a ``version``. ``from_json`` is tolerant of
files written before a field existed (fields with a default may be missing; unknown keys are ignored), and
refuses a file without a required field, or one from a newer version, with a one-line ``RunError``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from aerotune.errors import RunError, first_line
from aerotune.files import write_json

R = TypeVar("R", bound="Record")

#: A JSON object whose keys and values are free-form (a parsed settings file, a search space, a record's JSON).
JSONDict = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Record:
    """A versioned JSON record; subclasses are frozen dataclasses and set ``VERSION`` and ``FILE``."""

    #: The newest version this code writes (and the newest it reads).
    VERSION: ClassVar[int] = 1
    #: The file name the record is usually written to (for messages).
    FILE: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The record as a plain JSON object, with its version."""
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, "version": self.VERSION}

    @classmethod
    def from_json(cls: type[R], data: Any, *, where: str | None = None) -> R:
        """Read a record written by this or an older version; raise ``RunError`` naming ``where`` otherwise."""
        where = where or cls.FILE or cls.__name__
        if not isinstance(data, dict):
            raise RunError(f"{where}: expected a JSON object, found {type(data).__name__}; the file is damaged")
        version = data.get("version", 1)
        if not isinstance(version, int) or version > cls.VERSION:
            raise RunError(f"{where}: written by a newer aerotune (record version {version!r}); upgrade aerotune")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise RunError(f"{where}: field {missing[0]!r} is missing; the file is damaged or not aerotune's")
        return cls(**{k: v for k, v in data.items() if k in names})

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
