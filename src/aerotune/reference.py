"""The reference system this project reproduces and improves on: its search space, initial values and budget.

Kept in one place so that the tuning stage, the report and the command line quote the same numbers.
"""

from __future__ import annotations

from aerotune.config.keys import Value
from aerotune.records import JSONDict

#: Epochs the reference's NNI study spent in total (its published run).
REFERENCE_EPOCHS = 3455

#: The reference system's NNI search space, verbatim.
REFERENCE_SPACE: JSONDict = {
    "batch_size": {"_type": "randint", "_value": [1, 32]},
    "learning_rate": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "activation_type": {"_type": "choice", "_value": ["relu", "tanh", "swish", None]},
}

#: The reference's initial parameters: trial 0 of a study (the baseline).
REFERENCE_BASELINE: dict[str, Value] = {"batch_size": 16, "learning_rate": 0.007, "activation_type": "relu"}


#: The reference's training recipe, as the settings that differ from aerotune's default recipe
#: (``--preset reference``): no normalisation layers but dropout, Adam at a constant rate, no weight decay,
#: no augmentation, fixed grid patches scaled per patch.
REFERENCE_RECIPE: dict[str, Value] = {
    "data.normalization": "minmax",
    "data.augment": False,
    "data.jitter": 0.0,
    "data.channel_gamma": 0.0,
    "data.window": 1.0,
    "model.norm": "none",
    "model.dropout": 0.2,
    "model.dropout_bottom": 0.3,
    "train.learning_rate": 0.007,
    "train.optimizer": "adam",
    "train.weight_decay": 0.0,
    "train.schedule": "constant",
}


#: aerotune's default search space (native form): the levers that limit a small aerial dataset trained from
#: scratch. Ranges and why: docs/recipe.md#the-default-search-space.
DEFAULT_SPACE: JSONDict = {
    "train.learning_rate": {"type": "float", "low": 3e-4, "high": 1e-2, "log": True},
    "train.weight_decay": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
    "train.batch_size": {"type": "categorical", "choices": [8, 16, 32]},
    "data.jitter": {"type": "float", "low": 0.0, "high": 0.4},
    "data.window": {"type": "categorical", "choices": [0.5, 1.0]},
    "model.norm": {"type": "categorical", "choices": ["none", "batch", "group"]},
    "model.base_filters": {"type": "categorical", "choices": [8, 16, 24]},
    "model.depth": {"type": "categorical", "choices": [4, 5]},
    "train.dice_weight": {"type": "float", "low": 0.25, "high": 2.0, "log": True},
    "train.focal_weight": {"type": "float", "low": 0.25, "high": 4.0, "log": True},
}


def baseline_text() -> str:
    """The baseline in words, for help texts: ``batch 16, lr 0.007, relu``."""
    b = REFERENCE_BASELINE
    return f"batch {b['batch_size']}, lr {b['learning_rate']:g}, {b['activation_type']}"


def reference_trial() -> dict[str, Value]:
    """Trial 0 of a study: the reference's initial parameters under the reference's recipe."""
    return {**REFERENCE_RECIPE, **REFERENCE_BASELINE}
