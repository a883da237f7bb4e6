"""``RunConfig``: the three sections composed into one run config, built from a table and changed by key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from aerotune.config.keys import SECTIONS, Value, build_section, resolve_key
from aerotune.config.presets import preset_values, saved_before_recipes, saved_without
from aerotune.config.sections import DataConfig, ModelConfig, TrainConfig
from aerotune.errors import ConfigError
from aerotune.records import JSONDict


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs besides the data location."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        """Check every section, then that a patch passes through the U-Net; return self."""
        self.data.validate()
        self.model.validate()
        self.train.validate()
        stride = 2 ** (self.model.depth - 1)
        if self.data.patch_size % stride:
            raise ConfigError(
                f"data.patch_size = {self.data.patch_size} cannot pass through a U-Net of depth "
                f"{self.model.depth} (it halves the patch {self.model.depth - 1} times); use a "
                f"multiple of {stride}, or a smaller model.depth"
            )
        return self

    def to_dict(self) -> JSONDict:
        """``{section: {field: value}}``, as saved in run folders and checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: JSONDict, *, where: str = "config", preset: str | None = None) -> RunConfig:
        """Build from ``{section: {key: value}}`` over a preset's values (``preset``, else the table's own
        ``preset = "..."`` key, else the default recipe)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table with sections data, model and train")
        base = preset_values(preset or raw.get("preset") or saved_before_recipes(raw), where=where)
        for name, values in saved_without(raw).items():
            base[name] = {**base.get(name, {}), **values}
        sections = {}
        for name, klass in SECTIONS.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: section '{name}' must be a table of key = value")
            sections[name] = build_section(klass, {**base.get(name, {}), **values}, where=f"{where}: {name}")
        unknown = set(raw) - set(SECTIONS) - {"preset"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown section {sorted(unknown)[0]!r}; the sections are data, model and train "
                "(and a preset key)"
            )
        try:
            return cls(**sections).validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def with_overrides(self, overrides: Mapping[str, Value], *, where: str = "--set") -> RunConfig:
        """Return a copy with ``{"section.field" or alias: value}`` applied and validated."""
        raw = self.to_dict()
        for key, value in overrides.items():
            section, name = resolve_key(key, where=where)
            raw[section][name] = value
        return RunConfig.from_dict(raw, where=where)
