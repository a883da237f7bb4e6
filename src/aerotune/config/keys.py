"""Settings by name: ``section.field`` keys, their aliases and roles, and values converted to a field's type."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, get_type_hints

from aerotune.config.sections import DataConfig, ModelConfig, TrainConfig
from aerotune.errors import ConfigError
from aerotune.records import JSONDict

#: One setting's value as a settings file or the command line gives it.
Value = bool | int | float | str | None

SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

#: Names used by the reference (NNI) search space and other common spellings.
ALIASES = {
    "activation_type": "model.activation",
    "lr": "train.learning_rate",
    "batch": "train.batch_size",
}


def keys_with_role(*roles: str) -> tuple[str, ...]:
    """``section.field`` of every setting with one of ``roles``, in declaration order."""
    return tuple(
        f"{section}.{f.name}"
        for section, klass in SECTIONS.items()
        for f in dataclasses.fields(klass)
        if f.metadata.get("role") in roles
    )


def role_of(key: str) -> str | None:
    """The role of a ``section.field`` setting, or None for one that describes the experiment."""
    section, name = key.split(".", 1)
    return next((f.metadata.get("role") for f in dataclasses.fields(SECTIONS[section]) if f.name == name), None)


def resolve_key(key: str, *, where: str = "config") -> tuple[str, str]:
    """Map ``section.field``, a bare unique field name or an alias to ``(section, field)``."""
    key = ALIASES.get(key, key)
    if "." in key:
        section, name = key.split(".", 1)
        if section in SECTIONS and name in field_names(SECTIONS[section]):
            return section, name
    else:
        owners = [s for s, k in SECTIONS.items() if key in field_names(k)]
        if len(owners) == 1:
            return owners[0], key
    known = ", ".join(f"{s}.{n}" for s, k in SECTIONS.items() for n in field_names(k))
    raise ConfigError(f"{where}: unknown setting {key!r}; known settings are {known}")


def field_type(section: str, name: str) -> type:
    """The annotated type of ``section.name`` (``int``, ``str | None``, ...)."""
    return get_type_hints(SECTIONS[section])[name]


def field_names(klass: type) -> list[str]:
    """The field names of a config section, in declaration order."""
    return [f.name for f in dataclasses.fields(klass)]


def coerce(value: Any, kind: Any, *, key: str, example: Any = None) -> Any:
    """Convert a value (possibly a string from the command line) to a field's type."""
    try:
        return _convert(value, kind)
    except (TypeError, ValueError):
        pass
    expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
    fix = f"; write it as {expected}" + (f", like {key} = {json.dumps(example)}" if example is not None else "")
    raise ConfigError(f"{key} = {value!r} is not {expected}{fix}")


def _convert(value: Any, kind: Any) -> Any:
    """``value`` as ``kind``; ``ValueError`` (or ``TypeError``) when it is not one."""
    text = value.strip() if isinstance(value, str) else None
    if kind is bool or kind == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in ("true", "1", "yes", "on"):
            return True
        if text is not None and text.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        if isinstance(value, float):
            return int(value)
        return int(text) if text is not None else int(value)
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        return float(text) if text is not None else float(value)
    if kind is str:
        return "none" if value is None else str(value)
    if kind == (str | None):
        if value is None or (text is not None and text.lower() in ("", "none", "null")):
            return None
        return str(value)
    return value


def build_section(klass: type, values: JSONDict, *, where: str) -> Any:
    """A config section from ``{field: value}``, each value converted to its field's type."""
    hints = get_type_hints(klass)
    names = field_names(klass)
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys are {', '.join(names)}")
        section = klass.__name__.replace("Config", "").lower()
        try:
            kwargs[key] = coerce(value, hints[key], key=f"{section}.{key}", example=getattr(klass(), key))
        except ConfigError as exc:
            raise ConfigError(f"{where.rsplit(': ', 1)[0]}: {exc}") from None
    if klass is ModelConfig and kwargs.get("activation") is None and "activation" in kwargs:
        kwargs["activation"] = "none"
    return klass(**kwargs)
