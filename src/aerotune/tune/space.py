"""Search spaces: NNI's JSON format (verbatim) and a native TOML/YAML/JSON form, resolved to config keys.

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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from aerotune.config import RunConfig, coerce, field_type, read_table, resolve_key
from aerotune.errors import AerotuneError, SearchSpaceError

#: The reference system's NNI search space, verbatim.
REFERENCE_SPACE: dict[str, Any] = {
    "batch_size": {"_type": "randint", "_value": [1, 32]},
    "learning_rate": {"_type": "loguniform", "_value": [0.0001, 0.1]},
    "activation_type": {"_type": "choice", "_value": ["relu", "tanh", "swish", None]},
}

#: The reference's initial parameters: trial 0 of a study (the baseline).
REFERENCE_BASELINE: dict[str, Any] = {"batch_size": 16, "learning_rate": 0.007, "activation_type": "relu"}

NNI_TYPES = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal",
             "lognormal", "qlognormal")
NATIVE_TYPES = ("float", "int", "categorical", "normal", "lognormal")

#: Settings a study cannot search: the patch cache and the split are shared by all trials, the epoch
#: count is HyperBand's resource, and the rest only say where and how to run.
FIXED_KEYS = {
    "data.patch_size": "it changes the patch cache, which every trial shares",
    "data.scale": "it changes the patch cache, which every trial shares",
    "data.mode": "it changes the patch cache, which every trial shares",
    "data.unknown_colors": "it changes the patch cache, which every trial shares",
    "data.classes_file": "it changes the patch cache, which every trial shares",
    "data.split": "every trial uses the same train/validation split",
    "data.val_fraction": "every trial uses the same train/validation split",
    "data.split_seed": "every trial uses the same train/validation split",
    "train.epochs": "it is HyperBand's resource (set it with --epochs)",
    "train.device": "it says where to run, not what to train",
    "train.threads": "it says how to run, not what to train",
    "train.progress": "it says how to run, not what to train",
}

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

    def to_dict(self) -> dict[str, Any]:
        """The native form of this parameter."""
        d: dict[str, Any] = {"type": self.kind}
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

    def to_dict(self) -> dict[str, Any]:
        return {key: p.to_dict() for key, p in self.params.items()}

    def suggest(self, trial) -> dict[str, Any]:
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

    def fixed_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Optuna's raw parameters for given settings (for ``enqueue_trial``)."""
        return {p.optuna_name: p.raw(values[key]) for key, p in self.params.items() if key in values}

    def apply(self, config: RunConfig, values: dict[str, Any]) -> RunConfig:
        return config.with_overrides(values, where="search space") if values else config


def _native(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


def default_space() -> SearchSpace:
    return parse_space(REFERENCE_SPACE, where="the reference space")


def load_space(path: str | Path | None, base: RunConfig | None = None) -> SearchSpace:
    """Read a search space file (NNI JSON, or native TOML/YAML/JSON) and check it against ``base``.

    Raises:
        SearchSpaceError: on an unknown setting, a bad type or a range the config would reject.
    """
    if path is None:
        space = default_space()
    else:
        try:
            raw = read_table(path)
        except AerotuneError as exc:
            raise SearchSpaceError(str(exc)) from None
        space = parse_space(raw, where=str(path))
    check_space(space, base or RunConfig())
    return space


def parse_space(raw: dict[str, Any], *, where: str = "search space") -> SearchSpace:
    """Parse a space from a dict; top-level keys are settings, or sections holding settings."""
    if not isinstance(raw, dict) or not raw:
        raise SearchSpaceError(f"{where}: expected a table of setting -> distribution, found {type(raw).__name__}")
    flat: list[tuple[str, Any]] = []
    for key, spec in raw.items():
        if isinstance(spec, dict) and not _is_spec(spec) and key in ("data", "model", "train"):
            flat.extend((f"{key}.{name}", sub) for name, sub in spec.items())
        else:
            flat.append((str(key), spec))
    params: dict[str, Param] = {}
    for name, spec in flat:
        try:
            section, field_name = resolve_key(name, where=where)
        except AerotuneError as exc:
            raise SearchSpaceError(str(exc)) from None
        key = f"{section}.{field_name}"
        if key in FIXED_KEYS:
            raise SearchSpaceError(f"{where}: {name!r} cannot be searched: {FIXED_KEYS[key]}")
        if key in params:
            raise SearchSpaceError(f"{where}: {key} appears twice (as {name!r}); keep one entry")
        params[key] = _parse_param(key, name, spec, where=where)
    return SearchSpace(params, source=where)


def _is_spec(spec: dict[str, Any]) -> bool:
    return "_type" in spec or "type" in spec


def _parse_param(key: str, name: str, spec: Any, *, where: str) -> Param:
    at = f"{where}: {name}"
    if not isinstance(spec, dict) or not _is_spec(spec):
        raise SearchSpaceError(f"{at}: expected a distribution such as {{\"_type\": \"uniform\", \"_value\": [0, 1]}} "
                               f"or {{type = \"float\", low = 0, high = 1}}, found {spec!r}")
    if "_type" in spec:
        return _parse_nni(key, spec, at)
    return _parse_native(key, spec, at)


def _numbers(values: Any, n: int, at: str, names: str) -> list[float]:
    if not isinstance(values, list) or len(values) != n:
        raise SearchSpaceError(f"{at}: _value must be a list [{names}], found {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SearchSpaceError(f"{at}: _value must hold {n} finite numbers [{names}], found {values!r}")
    return [float(v) for v in values]


def _pair_and_q(kind: str, value: Any, at: str, names: str) -> tuple[float, float, float | None]:
    """The two numbers of an NNI entry, and q (positive) for the q-types, None otherwise."""
    if not kind.startswith("q"):
        a, b = _numbers(value, 2, at, names)
        return a, b, None
    a, b, q = _numbers(value, 3, at, f"{names}, q")
    if q <= 0:
        raise SearchSpaceError(f"{at}: q must be positive, found {q}")
    return a, b, q


def _parse_nni(key: str, spec: dict[str, Any], at: str) -> Param:
    unknown = set(spec) - {"_type", "_value"}
    if unknown:
        raise SearchSpaceError(f"{at}: unknown field {sorted(unknown)[0]!r}; NNI entries have _type and _value")
    kind, value = spec["_type"], spec.get("_value")
    if kind not in NNI_TYPES:
        raise SearchSpaceError(f"{at}: unknown _type {kind!r}; use one of {', '.join(NNI_TYPES)}")
    if kind == "choice":
        return Param(key, "categorical", choices=_choices(value, at), nni=kind)
    if kind == "randint":
        lo, hi = _numbers(value, 2, at, "lower, upper")
        if not (lo.is_integer() and hi.is_integer()) or hi - lo < 1:
            raise SearchSpaceError(f"{at}: randint needs whole numbers lower < upper (upper excluded), found {value!r}")
        return Param(key, "int", low=int(lo), high=int(hi) - 1, nni=kind)
    if kind in ("uniform", "loguniform", "quniform", "qloguniform"):
        lo, hi, q = _pair_and_q(kind, value, at, "low, high")
        log = "log" in kind
        _check_range(lo, hi, log, at)
        return Param(key, "float", low=lo, high=hi, log=log, q=q, nni=kind)
    mu, sigma, q = _pair_and_q(kind, value, at, "mu, sigma")
    if sigma <= 0:
        raise SearchSpaceError(f"{at}: sigma must be positive, found {sigma}")
    return Param(key, "lognormal" if "lognormal" in kind else "normal", mu=mu, sigma=sigma, q=q, nni=kind)


def _check_range(lo: float, hi: float, log: bool, at: str) -> None:
    if not lo < hi:
        raise SearchSpaceError(f"{at}: low must be below high, found low={lo}, high={hi}")
    if log and lo <= 0:
        raise SearchSpaceError(f"{at}: a log-scale range needs low > 0, found low={lo}")


def _choices(value: Any, at: str) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise SearchSpaceError(f"{at}: choices must be a non-empty list, found {value!r}")
    for v in value:
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise SearchSpaceError(f"{at}: choice {v!r} is not a number, text, true/false or null; "
                                   "nested search spaces are not supported")
    if len({json.dumps(v) for v in value}) != len(value):
        raise SearchSpaceError(f"{at}: choices must be distinct, found {value!r}")
    return tuple(value)


_NATIVE_FIELDS = {
    "float": {"low", "high", "log", "step", "q"},
    "int": {"low", "high", "log", "step"},
    "categorical": {"choices"},
    "normal": {"mu", "sigma", "q"},
    "lognormal": {"mu", "sigma", "q"},
}


def _parse_native(key: str, spec: dict[str, Any], at: str) -> Param:
    kind = spec["type"]
    if kind not in NATIVE_TYPES:
        raise SearchSpaceError(f"{at}: unknown type {kind!r}; use one of {', '.join(NATIVE_TYPES)}")
    allowed = _NATIVE_FIELDS[kind] | {"type", "nni"}
    unknown = set(spec) - allowed
    if unknown:
        raise SearchSpaceError(f"{at}: unknown field {sorted(unknown)[0]!r} for type {kind}; "
                               f"use {', '.join(sorted(allowed - {'nni'}))}")

    def num(name: str, required: bool = True) -> float | None:
        v = spec.get(name)
        if v is None:
            if required:
                raise SearchSpaceError(f"{at}: type {kind} needs {name}")
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SearchSpaceError(f"{at}: {name} must be a finite number, found {v!r}")
        return float(v)

    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{at}: log must be true or false, found {log!r}")
    nni = spec.get("nni")
    if kind == "categorical":
        return Param(key, kind, choices=_choices(spec.get("choices"), at), nni=nni)
    q = num("q", required=False)
    if q is not None and q <= 0:
        raise SearchSpaceError(f"{at}: q must be positive, found {q}")
    if kind in ("normal", "lognormal"):
        mu, sigma = num("mu"), num("sigma")
        if sigma <= 0:
            raise SearchSpaceError(f"{at}: sigma must be positive, found {sigma}")
        return Param(key, kind, mu=mu, sigma=sigma, q=q, nni=nni)
    lo, hi, step = num("low"), num("high"), num("step", required=False)
    _check_range(lo, hi, log, at) if kind == "float" else None
    if step is not None:
        if step <= 0:
            raise SearchSpaceError(f"{at}: step must be positive, found {step}")
        if log:
            raise SearchSpaceError(f"{at}: step cannot be combined with log = true")
        if q is not None:
            raise SearchSpaceError(f"{at}: give step or q, not both")
    if kind == "int":
        if not (lo.is_integer() and hi.is_integer()) or lo > hi:
            raise SearchSpaceError(f"{at}: int needs whole numbers low <= high (both included), found {lo}, {hi}")
        if log and lo < 1:
            raise SearchSpaceError(f"{at}: a log-scale int range needs low >= 1, found {lo}")
        if step is not None and not step.is_integer():
            raise SearchSpaceError(f"{at}: an int step must be a whole number, found {step}")
        return Param(key, kind, low=int(lo), high=int(hi), log=log, step=int(step) if step else None, nni=nni)
    return Param(key, kind, low=lo, high=hi, log=log, step=step, q=q, nni=nni)


def check_space(space: SearchSpace, base: RunConfig) -> None:
    """Check every parameter against the config's types and ranges, before anything runs.

    Numeric ranges are checked at both ends (and at the centre of normal distributions); every choice
    is checked. A value the config rejects is a ``SearchSpaceError`` naming the parameter.
    """
    for key, p in space.params.items():
        section, name = key.split(".")
        kind = field_type(section, name)
        if kind is bool and p.kind != "categorical":
            raise SearchSpaceError(f"search space: {key} is true/false; use a choice of [true, false]")
        if kind is int and p.kind != "categorical":
            ends = p.low is None or (float(p.low).is_integer() and float(p.high).is_integer())
            whole = p.kind == "int" or (p.q is not None and float(p.q).is_integer() and ends)
            if not whole:
                raise SearchSpaceError(f"search space: {key} is a whole number; use randint, an int range or a "
                                       f"q-type with a whole-number q (found {p.nni or p.kind})")
        if kind is str and p.kind != "categorical":
            raise SearchSpaceError(f"search space: {key} is text; use a choice")
        if p.kind == "categorical":
            probes = list(p.choices)
        elif p.kind in ("normal", "lognormal"):
            probes = [p.value(0.5)]
        else:
            probes = [p.value(p.low), p.value(p.high)]
        for v in probes:
            check_value(key, v, base)


def check_value(key: str, value: Any, base: RunConfig, *, what: str = "search space") -> None:
    section, name = key.split(".")
    try:
        coerce(value, field_type(section, name), key=key)
        base.with_overrides({key: _to_config(value, field_type(section, name))}, where=what)
    except AerotuneError as exc:
        raise SearchSpaceError(f"{what}: {key} = {value!r} is not allowed ({exc})") from None


def _to_config(value: Any, kind: Any) -> Any:
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def config_values(space: SearchSpace, values: dict[str, Any]) -> dict[str, Any]:
    """Values as the config stores them (whole numbers for int settings)."""
    out = {}
    for key, v in values.items():
        section, name = key.split(".")
        kind = field_type(section, name)
        out[key] = coerce(_to_config(v, kind), kind, key=key) if v is not None or kind is str else v
    return out


def resolve_baseline(baseline: dict[str, Any], space: SearchSpace, base: RunConfig) -> dict[str, Any]:
    """Turn baseline settings (any key spelling) into ``{config key: value}`` checked against the config.

    Settings the baseline does not name but the space searches take the base config's value. A
    categorical parameter must list the baseline's value among its choices.
    """
    out: dict[str, Any] = {}
    for name, value in baseline.items():
        try:
            section, field_name = resolve_key(name, where="baseline")
        except AerotuneError as exc:
            raise SearchSpaceError(str(exc)) from None
        out[f"{section}.{field_name}"] = value
    for key in space.params:
        if key not in out:
            section, name = key.split(".")
            out[key] = getattr(getattr(base, section), name)
    for key, value in out.items():
        p = space.params.get(key)
        if p is not None and p.kind == "categorical":
            canon = {json.dumps(c) for c in p.choices}
            alt = {json.dumps(value)} | ({json.dumps(None)} if value == "none" else set()) \
                | ({json.dumps("none")} if value is None else set())
            if not canon & alt:
                raise SearchSpaceError(f"baseline: {key} = {value!r} is not among the space's choices "
                                       f"{list(p.choices)}; change the baseline or the space")
            if json.dumps(value) not in canon:
                value = None if value == "none" else "none"
                out[key] = value
        check_value(key, value, base, what="baseline")
    return config_values(space, out)
