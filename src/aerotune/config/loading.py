"""Loading a run config: a TOML, JSON or YAML settings file over a preset, then ``--set key=value`` overrides."""

from __future__ import annotations

from pathlib import Path

from aerotune.config.keys import Value
from aerotune.config.run import RunConfig
from aerotune.errors import ConfigError, first_line
from aerotune.records import JSONDict


def load_config(path: str | Path | None, overrides: list[str] | None = None, *, preset: str | None = None) -> RunConfig:
    """Read a run config from TOML, JSON or YAML over a preset (``preset``, else the file's own ``preset`` key,
    else the default recipe), then apply ``key=value`` overrides."""
    config = RunConfig.from_dict({}, where="--preset", preset=preset)
    if path is not None:
        config = RunConfig.from_dict(read_table(path), where=str(path), preset=preset)
    parsed: dict[str, Value] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, for example --set train.epochs=5")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value
    return config.with_overrides(parsed) if parsed else config


def read_table(
    path: str | Path, *, expected: str = "a table of settings at the top level, like [train] epochs = 5"
) -> JSONDict:
    """Read a TOML, JSON or YAML file into a dict (an empty file: an empty dict), with a one-line error on any
    problem (``expected``: what the top level should be, for the message when it is not a table)."""
    from aerotune.reading import load_json, load_yaml, read_text, show, toml_parser

    path = Path(path)
    where = show(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise ConfigError(f"{where}: unknown file type {suffix!r}; use .toml, .json or .yaml")
    text = read_text(path, what="file", fix="give the path of an existing TOML, JSON or YAML file")
    try:
        if suffix == ".toml":
            data = toml_parser().loads(text)
        elif suffix == ".json":
            data = load_json(text, where=where)
        else:
            data = load_yaml(text, where=where)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser error is bad input
        raise ConfigError(f"{where}: cannot parse ({first_line(exc)}); fix the syntax") from None
    if data is None:  # an empty YAML file, as an empty TOML file, holds no settings
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected {expected}")
    return data
