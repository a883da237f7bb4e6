"""Frozen, typed configs per stage, composed into one run config.

A run config is validated on load, saved into every run folder and every checkpoint, and can be
rebuilt from that saved copy alone. Keys are addressed as ``section.field`` (``train.batch_size``);
bare field names and the reference's NNI names (``activation_type``) are accepted where unambiguous.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from aerotune.errors import ConfigError

ACTIVATIONS = ("relu", "tanh", "swish", "none")


@dataclass(frozen=True)
class DataConfig:
    """How images and masks become patches, and how patches are split and fed to the model."""

    patch_size: int = 256
    scale: float = 1.0
    mode: str = "reference"  # reference: crop to a multiple of patch_size; full: keep every labelled pixel
    unknown_colors: str = "error"  # error | ignore
    classes_file: str | None = None  # None: the built-in Dubai palette
    normalization: str = "minmax"  # minmax: per patch and channel (the reference); meanstd: dataset statistics
    augment: bool = False  # random flips and 90-degree rotations of training patches
    split: str = "random"  # random (the reference: 80/20, seed 42) | image | tile
    val_fraction: float = 0.2
    split_seed: int = 42

    def validate(self) -> None:
        _check(self.patch_size >= 16 and self.patch_size % 16 == 0, "data.patch_size", self.patch_size,
               "a multiple of 16, at least 16")
        _check(0.01 <= self.scale <= 16, "data.scale", self.scale, "a number between 0.01 and 16")
        _check(self.mode in ("reference", "full"), "data.mode", self.mode, "reference or full")
        _check(self.unknown_colors in ("error", "ignore"), "data.unknown_colors", self.unknown_colors,
               "error or ignore")
        _check(self.normalization in ("minmax", "meanstd"), "data.normalization", self.normalization,
               "minmax or meanstd")
        _check(self.split in ("random", "image", "tile"), "data.split", self.split, "random, image or tile")
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "between 0 and 1")


@dataclass(frozen=True)
class ModelConfig:
    """The U-Net. The defaults are the reference network exactly."""

    base_filters: int = 16
    depth: int = 5  # levels, the deepest being the bottleneck (16, 32, 64, 128, 256 filters)
    activation: str = "relu"  # relu | tanh | swish | none (NNI's null)
    dropout: float = 0.2
    dropout_bottom: float = 0.3

    def validate(self) -> None:
        _check(1 <= self.base_filters <= 512, "model.base_filters", self.base_filters, "between 1 and 512")
        _check(2 <= self.depth <= 7, "model.depth", self.depth, "between 2 and 7")
        _check(self.activation in ACTIVATIONS, "model.activation", self.activation, ", ".join(ACTIVATIONS))
        _check(0.0 <= self.dropout < 1.0, "model.dropout", self.dropout, "in [0, 1)")
        _check(0.0 <= self.dropout_bottom < 1.0, "model.dropout_bottom", self.dropout_bottom, "in [0, 1)")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. Batch 16, learning rate 0.007 and 50 epochs are the reference's initial values."""

    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 0.007
    loss: str = "dice_focal"  # dice_focal (the reference) | cross_entropy
    dice_weight: float = 1.0
    focal_weight: float = 1.0
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    shuffle: bool = True  # the reference did not shuffle; shuffling is the sound default
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: on CUDA bf16 where supported, else fp16; on CPU bf16 where native, else fp32 | fp32 | bf16 | fp16
    precision: str = "auto"
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    progress: bool = True
    # Speed switches (docs/benchmarks.md measures each): auto picks what measured faster on that device.
    channels_last: str = "auto"  # auto (CUDA only: no gain measured on CPU) | on | off
    fused_adam: str = "auto"  # auto (fused kernels where available) | on | off (torch's per-tensor loop)
    compile: str = "off"  # off (measured slower on CPU) | on: torch.compile the model once per process and shape
    fast_dropout: str = "auto"  # auto (on CPU: masks from 64-bit random words) | on | off (nn.Dropout's own)

    def validate(self) -> None:
        _check(1 <= self.epochs <= 100_000, "train.epochs", self.epochs, "a positive whole number")
        _check(1 <= self.batch_size <= 4096, "train.batch_size", self.batch_size, "between 1 and 4096")
        _check(0.0 < self.learning_rate < 10.0, "train.learning_rate", self.learning_rate, "between 0 and 10")
        _check(self.loss in ("dice_focal", "cross_entropy"), "train.loss", self.loss,
               "dice_focal or cross_entropy")
        _check(self.dice_weight >= 0 and self.focal_weight >= 0, "train.dice_weight/focal_weight",
               (self.dice_weight, self.focal_weight), "non-negative numbers")
        _check(self.focal_gamma >= 0, "train.focal_gamma", self.focal_gamma, "a non-negative number")
        _check(0 <= self.focal_alpha <= 1, "train.focal_alpha", self.focal_alpha, "between 0 and 1")
        _check(self.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision", self.precision,
               "auto, fp32, bf16 or fp16")
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               "train.device", self.device, "auto, cpu, cuda or cuda:N")
        _check(self.threads >= 0, "train.threads", self.threads, "0 (default) or a positive number")
        for key in ("channels_last", "fused_adam", "fast_dropout"):
            _check(getattr(self, key) in ("auto", "on", "off"), f"train.{key}", getattr(self, key), "auto, on or off")
        _check(self.compile in ("off", "on"), "train.compile", self.compile, "off or on")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs besides the data location."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> RunConfig:
        self.data.validate()
        self.model.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "config") -> RunConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table with sections data, model and train")
        sections = {}
        for name, klass in SECTIONS.items():
            values = raw.get(name, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: section '{name}' must be a table of key = value")
            sections[name] = _build(klass, values, where=f"{where}: {name}")
        unknown = set(raw) - set(SECTIONS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown section {sorted(unknown)[0]!r}; the sections are data, model and train"
            )
        return cls(**sections).validate()

    def with_overrides(self, overrides: dict[str, Any], *, where: str = "--set") -> RunConfig:
        """Return a copy with ``{"section.field" or alias: value}`` applied and validated."""
        raw = self.to_dict()
        for key, value in overrides.items():
            section, name = resolve_key(key, where=where)
            raw[section][name] = value
        return RunConfig.from_dict(raw, where=where)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}

#: Names used by the reference (NNI) search space and other common spellings.
ALIASES = {
    "activation_type": "model.activation",
    "lr": "train.learning_rate",
    "batch": "train.batch_size",
}


def resolve_key(key: str, *, where: str = "config") -> tuple[str, str]:
    """Map ``section.field``, a bare unique field name or an alias to ``(section, field)``."""
    key = ALIASES.get(key, key)
    if "." in key:
        section, name = key.split(".", 1)
        if section in SECTIONS and name in _field_names(SECTIONS[section]):
            return section, name
    else:
        owners = [s for s, k in SECTIONS.items() if key in _field_names(k)]
        if len(owners) == 1:
            return owners[0], key
    known = ", ".join(f"{s}.{n}" for s, k in SECTIONS.items() for n in _field_names(k))
    raise ConfigError(f"{where}: unknown setting {key!r}; known settings are {known}")


def field_type(section: str, name: str) -> type:
    return get_type_hints(SECTIONS[section])[name]


def _field_names(klass: type) -> list[str]:
    return [f.name for f in dataclasses.fields(klass)]


def _check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is invalid; use {expected}")


def coerce(value: Any, kind: Any, *, key: str) -> Any:
    """Convert a value (possibly a string from the command line) to a field's type."""
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind is bool or kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "1", "yes", "on"):
                return True
            if text is not None and text.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(text) if text is not None else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(text) if text is not None else float(value)
        if kind is str:
            if value is None:
                return "none"
            return str(value)
        if kind == (str | None):
            if value is None or (text is not None and text.lower() in ("", "none", "null")):
                return None
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "text")
    raise ConfigError(f"{key} = {value!r} is not {expected}")


def _build(klass: type, values: dict[str, Any], *, where: str) -> Any:
    hints = get_type_hints(klass)
    names = _field_names(klass)
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; known keys are {', '.join(names)}")
        kwargs[key] = coerce(value, hints[key], key=f"{klass.__name__.replace('Config', '').lower()}.{key}")
    if klass is ModelConfig and kwargs.get("activation") is None and "activation" in kwargs:
        kwargs["activation"] = "none"
    return klass(**kwargs)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config from TOML, JSON or YAML, then apply ``key=value`` overrides."""
    config = RunConfig()
    if path is not None:
        config = RunConfig.from_dict(read_table(path), where=str(path))
    parsed: dict[str, Any] = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, for example --set train.epochs=5")
        key, value = item.split("=", 1)
        parsed[key.strip()] = value
    return config.with_overrides(parsed) if parsed else config


def read_table(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML file into a dict, with a one-line error on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found; give the path of an existing TOML, JSON or YAML file")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"{path}: unknown file type {suffix!r}; use .toml, .json or .yaml")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser error is bad input
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{path}: cannot parse ({first}); fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings at the top level")
    return data
