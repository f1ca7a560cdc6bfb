"""Declaring configuration sections: every field has a type, bounds and a description.

A component declares its own section as a frozen dataclass whose fields are made with
:func:`setting`; ``config.py`` assembles the sections and validates a TOML file
against them. Components receive only their own section.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def setting(
    default: T,
    description: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[object, ...] | None = None,
) -> T:
    """A config field with its bounds and a one-line description (typed as its default,
    as ``dataclasses.field`` is)."""
    meta = {"description": description, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple for sequence defaults; config values are immutable")
    values = default if isinstance(default, tuple) else (default,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise TypeError(f"a setting's default must be finite, got {default!r}")
    return dataclasses.field(default=default, metadata=meta)


def _field_type(section_cls: type, name: str) -> Any:
    return typing.get_type_hints(section_cls)[name]


def _coerce(value: Any, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        # TOML has nan and inf; NaN fails every comparison, so it would slip past the
        # bounds below and every threshold after them.
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value} is not a finite number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {kind!r} at {where}")


def _check_bounds(value: Any, meta: Mapping[str, Any], where: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if meta["choices"] is not None and v not in meta["choices"]:
            allowed = ", ".join(repr(c) for c in meta["choices"])
            raise ConfigError(f"{where}: {v!r} is not one of {allowed}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if meta["min"] is not None and not v >= meta["min"]:
                raise ConfigError(f"{where}: {v} is below the minimum {meta['min']}")
            if meta["max"] is not None and not v <= meta["max"]:
                raise ConfigError(f"{where}: {v} is above the maximum {meta['max']}")


def build_section(section_cls: type, values: dict[str, Any], prefix: str) -> Any:
    """Validate ``values`` against ``section_cls``; unknown keys are errors.

    A section may list keys it no longer has in a ``RETIRED_KEYS`` class attribute
    (key -> what to do instead), so an old config file gets a useful message.

    Raises ConfigError naming the offending key as ``prefix.key``; a caller that
    knows line numbers adds them (see ``config.py``).
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = sorted(set(values) - set(fields))
    retired: dict[str, str] = getattr(section_cls, "RETIRED_KEYS", {})
    for name in unknown:
        if name in retired:  # a key an older facegate knew: say what took its place
            raise ConfigError(f"{prefix}.{name}: no longer used; {retired[name]}")
    if unknown:
        valid = ", ".join(sorted(fields))
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (valid keys: {valid})")
    kwargs = {}
    for name, value in values.items():
        where = f"{prefix}.{name}"
        coerced = _coerce(value, _field_type(section_cls, name), where)
        _check_bounds(coerced, fields[name].metadata, where)
        kwargs[name] = coerced
    section = section_cls(**kwargs)
    validate = getattr(section, "validate", None)
    if validate is not None:
        validate()  # cross-field rules; raises ConfigError naming the key
    return section


def describe(section_cls: type) -> list[tuple[str, Any, str]]:
    """(name, default, description) for each field, for docs and ``check-config``."""
    return [
        (f.name, f.default, f.metadata.get("description", ""))
        for f in dataclasses.fields(section_cls)
    ]
