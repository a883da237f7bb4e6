"""Frozen, typed configs per stage, composed into one run config.

A run config is validated on load, saved into every run folder and every checkpoint, and can be
rebuilt from that saved copy alone. Keys are addressed as ``section.field`` (``train.batch_size``);
bare field names and the reference's NNI names (``activation_type``) are accepted where unambiguous.

By job: ``sections`` (the data, model and train dataclasses, their roles and checks), ``checks`` (value
parsers), ``keys`` (settings by name, type conversion), ``presets`` (the recipes), ``run`` (``RunConfig``),
``loading`` (settings files and ``--set``).
"""

from aerotune.config.checks import parse_bands, test_tile_names
from aerotune.config.keys import (
    ALIASES,
    SECTIONS,
    Value,
    coerce,
    field_type,
    keys_with_role,
    resolve_key,
    role_of,
)
from aerotune.config.loading import load_config, read_table
from aerotune.config.presets import PRESETS, preset_values
from aerotune.config.run import RunConfig
from aerotune.config.sections import (
    ACTIVATIONS,
    MAX_JITTER,
    MAX_TOLERANCE,
    NORMS,
    OPTIMIZERS,
    ROLES,
    SCHEDULES,
    DataConfig,
    ModelConfig,
    TrainConfig,
    role,
)

__all__ = [
    "ACTIVATIONS",
    "ALIASES",
    "MAX_JITTER",
    "MAX_TOLERANCE",
    "NORMS",
    "OPTIMIZERS",
    "PRESETS",
    "ROLES",
    "SCHEDULES",
    "SECTIONS",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "Value",
    "coerce",
    "field_type",
    "keys_with_role",
    "load_config",
    "parse_bands",
    "preset_values",
    "read_table",
    "resolve_key",
    "role",
    "role_of",
    "test_tile_names",
]
