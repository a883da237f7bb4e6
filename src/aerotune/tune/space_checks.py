"""Checking a search space and the baseline's values against the run config every trial starts from."""

from __future__ import annotations

import json
from typing import Any

from aerotune.config import RunConfig, coerce, field_type, resolve_key
from aerotune.errors import AerotuneError, SearchSpaceError
from aerotune.tune.space import SearchSpace, config_values, to_config


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
                raise SearchSpaceError(
                    f"search space: {key} is a whole number; use randint, an int range or a "
                    f"q-type with a whole-number q (found {p.nni or p.kind})"
                )
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
        base.with_overrides({key: to_config(value, field_type(section, name))}, where=what)
    except AerotuneError as exc:
        raise SearchSpaceError(f"{what}: {key} = {value!r} is not allowed ({exc})") from None


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
    together = _applied(base, out)
    for key, value in out.items():
        check_value(key, value, together, what="baseline")
    return config_values(space, out)


def _applied(base: RunConfig, values: dict[str, Any]) -> RunConfig:
    """``base`` with every baseline value applied: the baseline is one config, so each value is checked beside
    the others (Adam beside the baseline's weight decay 0, not beside the base config's AdamW decay). When they do
    not fit together, ``base`` itself, so the check of each value names the one at fault."""
    try:
        return base.with_overrides(
            {k: to_config(v, field_type(*k.split("."))) for k, v in values.items()}, where="baseline"
        )
    except (AerotuneError, TypeError, ValueError):
        return base
