"""Checking a search space and the baseline's values against the run config every trial starts from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aerotune.config import RunConfig, Value, coerce, field_type, resolve_key
from aerotune.errors import AerotuneError, SearchSpaceError
from aerotune.tune.space import SearchSpace, config_values, to_config


def check_space(space: SearchSpace, base: RunConfig, *, where: str = "search space") -> None:
    """Check every parameter against the config's types and ranges, before anything runs.

    Numeric ranges are checked at both ends (and at the centre of normal distributions); every choice
    is checked. A value the config rejects is a ``SearchSpaceError`` naming ``where`` (the file) and the parameter.
    """
    for key, p in space.params.items():
        section, name = key.split(".")
        kind = field_type(section, name)
        if kind is bool and p.kind != "categorical":
            raise SearchSpaceError(f"{where}: {key} is true/false; use a choice of [true, false]")
        if kind is int and p.kind != "categorical":
            ends = p.low is None or (float(p.low).is_integer() and float(p.high).is_integer())
            whole = p.kind == "int" or (p.q is not None and float(p.q).is_integer() and ends)
            if not whole:
                raise SearchSpaceError(
                    f"{where}: {key} is a whole number; use randint, an int range or a "
                    f"q-type with a whole-number q (found {p.nni or p.kind})"
                )
        if kind is str and p.kind != "categorical":
            raise SearchSpaceError(f"{where}: {key} is text; use a choice")
        if p.kind == "categorical":
            probes = list(p.choices)
        elif p.kind in ("normal", "lognormal"):
            probes = [p.value(0.5)]
        else:
            probes = [p.value(p.low), p.value(p.high)]
        for v in probes:
            check_value(key, v, base, what=where)


def check_value(key: str, value: Any, base: RunConfig, *, what: str = "search space") -> None:
    section, name = key.split(".")
    try:
        coerce(value, field_type(section, name), key=key)
        base.with_overrides({key: to_config(value, field_type(section, name))}, where=what)
    except AerotuneError as exc:
        raise SearchSpaceError(f"{what}: {key} = {value!r} is not allowed ({exc})") from None


def resolve_baseline(baseline: Mapping[str, Value], space: SearchSpace, base: RunConfig) -> dict[str, Value]:
    """Turn baseline settings (any key spelling) into ``{config key: value}`` checked against the config.

    Settings the baseline does not name but the space searches take the base config's value (which may lie
    outside the space: the trial trains with it, Optuna is not told). A categorical parameter must list a value
    the baseline names among its choices.
    """
    out: dict[str, Value] = {}
    for name, value in baseline.items():
        try:
            section, field_name = resolve_key(name, where="baseline")
        except AerotuneError as exc:
            raise SearchSpaceError(str(exc)) from None
        out[f"{section}.{field_name}"] = value
    named = set(out)
    for key in space.params:
        if key not in out:
            section, name = key.split(".")
            out[key] = getattr(getattr(base, section), name)
    for key, value in out.items():
        p = space.params.get(key)
        if p is not None and p.kind == "categorical" and key in named:
            canon = {json.dumps(c) for c in p.choices}
            alt = (
                {json.dumps(value)}
                | ({json.dumps(None)} if value == "none" else set())
                | ({json.dumps("none")} if value is None else set())
            )
            if not canon & alt:
                raise SearchSpaceError(
                    f"baseline: {key} = {value!r} is not among the space's choices "
                    f"{list(p.choices)}; change the baseline or the space"
                )
            if json.dumps(value) not in canon:
                value = None if value == "none" else "none"
                out[key] = value
    together = {k: to_config(v, field_type(*k.split("."))) for k, v in out.items()}
    try:  # checked together: a recipe's settings depend on each other (Adam and weight decay)
        base.with_overrides(together, where="baseline")
    except AerotuneError as exc:
        raise SearchSpaceError(f"baseline: {exc}") from None
    return config_values(space, out)
