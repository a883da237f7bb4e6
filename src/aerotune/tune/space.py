"""Search spaces, resolved to config keys: the model (``Param``, ``SearchSpace``). ``space_parse.py`` reads
NNI's JSON format (verbatim) and a native TOML/YAML/JSON form; ``space_checks.py`` checks them against a config.

A space maps settings of the run config (``train.learning_rate``, ``model.activation``, bare unique
names and the reference's NNI names such as ``activation_type``) to distributions.

Native form (TOML shown; YAML and JSON have the same structure)::

    [train.learning_rate]
    type = "float"          # float | int | categorical | normal | lognormal
    low = 1e-4
    high = 0.1
    log = true              # optional; step = ... for a grid, q = ... for NNI-style rounding

    [model.activation]
    type = "categorical"
    choices = ["relu", "tanh", "swish", "none"]

NNI entries (``{"_type": ..., "_value": [...]}``) may appear in either form and keep NNI's meaning:
``randint [a, b)`` excludes ``b``; ``q*`` types round to a multiple of ``q`` and clip to the range;
``normal`` family draws are unbounded. Optuna has no normal distributions, so those are sampled as
a quantile ``u`` in (0, 1) and mapped through the inverse normal CDF: random sampling reproduces NNI's
prior exactly and TPE models the quantile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from aerotune.config import ROLES, RunConfig, Value, coerce, field_type, keys_with_role, role_of
from aerotune.records import JSONDict

NNI_TYPES = (
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
)
NATIVE_TYPES = ("float", "int", "categorical", "normal", "lognormal")

#: Settings a study cannot search, and why: the patch cache and the split are shared by all trials, the epoch
#: count is HyperBand's resource, and the rest only say where and how to run (their roles in config.py).
FIXED_KEYS = {key: ROLES[role_of(key)] for key in keys_with_role("cache", "palette", "split", "resource", "runtime")}

_EPS = 1e-6  # quantiles are drawn from [_EPS, 1 - _EPS]: about +-4.75 sigma


@dataclass(frozen=True)
class Param:
    """One searched setting.

    ``kind`` is float, int, categorical, normal or lognormal. ``q`` (NNI's quantisation) rounds a draw
    to a multiple of ``q`` and, for float, clips it to ``[low, high]``. ``nni`` keeps the NNI type the
    parameter came from, if any.
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    choices: tuple[Any, ...] = ()
    nni: str | None = None

    @property
    def transformed(self) -> bool:
        """True when Optuna samples a raw value that maps to the setting (quantiles, NNI rounding)."""
        return self.kind in ("normal", "lognormal") or self.q is not None

    @property
    def optuna_name(self) -> str:
        return f"{self.key}:raw" if self.transformed else self.key

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("normal", "lognormal"):
            return FloatDistribution(_EPS, 1 - _EPS)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.q is not None:
            return FloatDistribution(self.low, self.high, log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def value(self, raw: Any) -> Any:
        """The setting's value for Optuna's raw draw (NNI semantics for q and normal types)."""
        if self.kind in ("categorical", "int"):
            return raw
        if self.kind in ("normal", "lognormal"):
            x = NormalDist(self.mu, self.sigma).inv_cdf(float(raw))
            if self.kind == "lognormal":
                x = math.exp(x)
            return _round_q(x, self.q) if self.q is not None else x
        if self.q is not None:
            return min(max(_round_q(float(raw), self.q), self.low), self.high)
        return raw

    def raw(self, value: Any) -> Any:
        """The inverse of ``value``: Optuna's raw value for a setting (used to enqueue the baseline)."""
        if self.kind == "categorical":
            if value not in self.choices and value in ("none", None):
                return None if value == "none" else "none"  # NNI's null is the config's "none"
            return value
        if self.kind in ("normal", "lognormal"):
            x = math.log(value) if self.kind == "lognormal" else float(value)
            return min(max(NormalDist(self.mu, self.sigma).cdf(x), _EPS), 1 - _EPS)
        return value

    def holds(self, raw: Any) -> bool:
        """Whether Optuna's raw value ``raw`` lies in this parameter's distribution."""
        if self.kind == "categorical":
            return any(type(raw) is type(c) and raw == c for c in self.choices)
        if self.kind in ("normal", "lognormal"):
            return True  # quantiles are clamped into (0, 1) by raw()
        return raw is not None and self.low <= raw <= self.high

    def to_dict(self) -> JSONDict:
        """The native form of this parameter."""
        d: JSONDict = {"type": self.kind}
        if self.kind == "categorical":
            d["choices"] = list(self.choices)
        elif self.kind in ("normal", "lognormal"):
            d.update(mu=self.mu, sigma=self.sigma)
        else:
            d.update(low=self.low, high=self.high)
            if self.log:
                d["log"] = True
            if self.step is not None:
                d["step"] = self.step
        if self.q is not None:
            d["q"] = self.q
        if self.nni:
            d["nni"] = self.nni
        return d


def _round_q(x: float, q: float) -> float:
    return round(x / q) * q


@dataclass(frozen=True)
class SearchSpace:
    """Resolved parameters, keyed by the config key they set (``section.field``)."""

    params: dict[str, Param] = field(default_factory=dict)
    source: str = "reference"

    def to_dict(self) -> JSONDict:
        """The native form of the space, ``{config key: parameter}``."""
        return {key: p.to_dict() for key, p in self.params.items()}

    def suggest(self, trial) -> dict[str, Value]:
        """Draw every parameter on an Optuna trial; return ``{config key: value}``."""
        values = {}
        for key, p in self.params.items():
            d = p.distribution()
            if p.kind == "categorical":
                raw = trial.suggest_categorical(p.optuna_name, d.choices)
            elif p.kind == "int":
                raw = trial.suggest_int(p.optuna_name, d.low, d.high, step=d.step, log=d.log)
            else:
                raw = trial.suggest_float(p.optuna_name, d.low, d.high, step=d.step, log=d.log)
            values[key] = _native(p.value(raw))
        return config_values(self, values)

    def fixed_params(self, values: dict[str, Value]) -> dict[str, Value]:
        """Optuna's raw parameters for given settings (for ``enqueue_trial``)."""
        out = {}
        for key, p in self.params.items():
            if key in values:
                raw = p.raw(values[key])
                # a value outside the range (the reference trial's weight decay 0 on a log scale) is not given to
                # Optuna: the sampler draws the parameter and the trial overlays the value it trains with
                if p.holds(raw):
                    out[p.optuna_name] = raw
        return out

    def apply(self, config: RunConfig, values: dict[str, Value]) -> RunConfig:
        """``config`` with ``values`` applied (itself when there are none)."""
        return config.with_overrides(values, where="search space") if values else config


def _native(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def to_config(value: Any, kind: Any) -> Any:
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_values(space: SearchSpace, values: dict[str, Value]) -> dict[str, Value]:
    """Values as the config stores them (whole numbers for int settings)."""
    out = {}
    for key, v in values.items():
        section, name = key.split(".")
        kind = field_type(section, name)
        out[key] = coerce(to_config(v, kind), kind, key=key) if v is not None or kind is str else v
    return out
