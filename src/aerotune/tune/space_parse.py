"""Reading search spaces: NNI's JSON format (verbatim) and the native TOML/YAML/JSON form (see ``space.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from aerotune.config import RunConfig, read_table, resolve_key
from aerotune.errors import AerotuneError, SearchSpaceError
from aerotune.records import JSONDict
from aerotune.reference import DEFAULT_SPACE, REFERENCE_SPACE
from aerotune.tune.space import FIXED_KEYS, NATIVE_TYPES, NNI_TYPES, Param, SearchSpace
from aerotune.tune.space_checks import check_space


def default_space() -> SearchSpace:
    """aerotune's default space (``reference.DEFAULT_SPACE``); the reference's own is ``reference_space()``."""
    return parse_space(DEFAULT_SPACE, where="the default space")


def reference_space() -> SearchSpace:
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
            raw = read_table(path, expected=f"a search space: a table of setting -> distribution; {SPACE_EXAMPLE}")
        except AerotuneError as exc:
            raise SearchSpaceError(str(exc)) from None
        space = parse_space(raw, where=str(path))
    check_space(space, base or RunConfig(), where=str(path) if path is not None else "search space")
    return space


#: What a search space looks like, for messages about one that is not.
SPACE_EXAMPLE = (
    "give each searched setting a distribution, e.g. in TOML: train.learning_rate = "
    '{type = "float", low = 1e-4, high = 1e-2, log = true}, or in NNI JSON: '
    '{"learning_rate": {"_type": "loguniform", "_value": [1e-4, 1e-2]}} (see docs/tuning.md), '
    "or leave out --space for the reference's space"
)


def fixed_fix(key: str) -> str:
    """How to vary a setting a study cannot search: fix it for the study and compare separate studies."""
    if key == "train.epochs":
        return "give the most epochs a trial may train with --epochs"
    section, name = key.split(".")
    option = {"patch_size": "--patch-size", "scale": "--scale", "mode": "--mode", "bands": "--bands"}.get(name)
    where = f"--set {key}=VALUE" + (f" (or {option} VALUE)" if option else "")
    if section == "data":
        return f"fix it for the whole study with {where} on the tune command, and run one study per value to compare"
    return f"set it for the whole study with {where} on the tune command"


def parse_space(raw: JSONDict, *, where: str = "search space") -> SearchSpace:
    """Parse a space from a dict; top-level keys are settings, or sections holding settings."""
    if isinstance(raw, dict) and not raw:
        raise SearchSpaceError(f"{where}: the search space is empty; {SPACE_EXAMPLE}")
    if not isinstance(raw, dict):
        raise SearchSpaceError(
            f"{where}: a search space is a table of setting -> distribution, not a {type(raw).__name__}; "
            f"{SPACE_EXAMPLE}"
        )
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
            raise SearchSpaceError(f"{where}: {name!r} cannot be searched: {FIXED_KEYS[key]}; {fixed_fix(key)}")
        if key in params:
            raise SearchSpaceError(f"{where}: {key} appears twice (as {name!r}); keep one entry")
        params[key] = _parse_param(key, name, spec, where=where)
    return SearchSpace(params, source=where)


def _is_spec(spec: JSONDict) -> bool:
    return "_type" in spec or "type" in spec


def _parse_param(key: str, name: str, spec: Any, *, where: str) -> Param:
    at = f"{where}: {name}"
    if not isinstance(spec, dict) or not _is_spec(spec):
        raise SearchSpaceError(
            f'{at}: expected a distribution such as {{"_type": "uniform", "_value": [0, 1]}} '
            f'or {{type = "float", low = 0, high = 1}}, found {spec!r}'
        )
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


def _parse_nni(key: str, spec: JSONDict, at: str) -> Param:
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
            raise SearchSpaceError(
                f"{at}: choice {v!r} is not a number, text, true/false or null; nested search spaces are not supported"
            )
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


def _parse_native(key: str, spec: JSONDict, at: str) -> Param:
    kind = spec["type"]
    if kind not in NATIVE_TYPES:
        raise SearchSpaceError(f"{at}: unknown type {kind!r}; use one of {', '.join(NATIVE_TYPES)}")
    allowed = _NATIVE_FIELDS[kind] | {"type", "nni"}
    unknown = set(spec) - allowed
    if unknown:
        raise SearchSpaceError(
            f"{at}: unknown field {sorted(unknown)[0]!r} for type {kind}; use {', '.join(sorted(allowed - {'nni'}))}"
        )

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
