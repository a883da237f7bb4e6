"""The recipes a config starts from (``--preset``): aerotune's default and the reference's."""

from __future__ import annotations

from aerotune.errors import ConfigError
from aerotune.records import JSONDict

PRESETS = ("default", "reference")


def saved_before_recipes(raw: JSONDict) -> str:
    """``reference`` for a config saved whole before the recipes existed (in a run folder, a checkpoint or a
    study): its missing settings are the reference's, which was then the only recipe. Hand-written tables
    start from the default recipe."""
    train, model = raw.get("train"), raw.get("model")
    saved_whole = isinstance(train, dict) and "fast_dropout" in train and "optimizer" not in train
    return "reference" if saved_whole and isinstance(model, dict) and "norm" not in model else "default"


#: Settings added after configs were first saved whole, with the value a saved config that lacks them trained with.
ADDED_LATER: dict[str, object] = {"data.channel_gamma": 0.0}


def saved_without(raw: JSONDict) -> dict[str, JSONDict]:
    """For a config saved whole (in a run folder, a checkpoint or a study), the settings of :data:`ADDED_LATER` it
    lacks, at the value it trained with, so that a resumed run trains as it began; a hand-written table: none."""
    train = raw.get("train")
    if not (isinstance(train, dict) and "fast_dropout" in train):
        return {}
    out: dict[str, JSONDict] = {}
    for key, value in ADDED_LATER.items():
        section, name = key.split(".", 1)
        if isinstance(raw.get(section), dict) and name not in raw[section]:
            out.setdefault(section, {})[name] = value
    return out


def preset_values(name: object, *, where: str = "--preset") -> dict[str, JSONDict]:
    """The settings a preset changes from the default recipe, as ``{section: {key: value}}``.

    ``default`` is aerotune's recipe (the dataclass defaults); ``reference`` is the reference's recipe exactly
    (``aerotune.reference.REFERENCE_RECIPE``).
    """
    from aerotune.reference import REFERENCE_RECIPE

    if name not in PRESETS:
        raise ConfigError(f"{where}: preset = {name!r} is invalid; use {' or '.join(PRESETS)}")
    out: dict[str, JSONDict] = {}
    for key, value in (REFERENCE_RECIPE if name == "reference" else {}).items():
        section, field_name = key.split(".", 1)
        out.setdefault(section, {})[field_name] = value
    return out
