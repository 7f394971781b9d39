"""Settings as small dataclasses: one per panel (and the export dialog), defaults and bounds
written once, next to the session they configure.

Declare fields with :func:`setting`::

    @dataclass
    class ReverseSettings:
        steps: int = setting(50, lo=1, hi=1000)
        sampler: str = setting("ddpm", choices=("ddpm", "ddim"))

:func:`from_raw` builds one from raw stored values (strings from an INI file, anything at all
from a corrupt one): a missing or unreadable value gives the default, a number outside its bounds
is clamped, a string outside its choices gives the default. :func:`to_raw` is the inverse. The
Qt side (``diffusion_gui.gui.settings_io``) only moves these dicts in and out of QSettings.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, TypeVar

__all__ = ["setting", "from_raw", "to_raw", "coerce", "keys"]

S = TypeVar("S")
_MISSING = object()


def setting(default, *, lo=None, hi=None, choices=None, key: str | None = None):
    """A dataclass field with its default, bounds (``lo``/``hi``, inclusive), allowed
    ``choices`` and the stored ``key`` (default: the field name)."""
    return dataclasses.field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices,
                                                        "key": key})


def _as_bool(v) -> bool:
    """True for 1 / true / yes / on (any case); any other stored value is False (the rule the
    panels' settings readers always had)."""
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def coerce(raw, default, *, lo=None, hi=None, choices=None):
    """``raw`` as the type of ``default``, clamped to ``[lo, hi]`` and checked against
    ``choices``; ``default`` when it is missing (None) or cannot be read as that type.
    A ``None`` default accepts any string (or None)."""
    if raw is None or raw is _MISSING:
        return default
    try:
        if default is None:
            v = raw if isinstance(raw, str) else None
        elif isinstance(default, bool):
            v = _as_bool(raw)
        elif isinstance(default, int):
            v = int(float(raw)) if isinstance(raw, str) and "." in raw else int(raw)
        elif isinstance(default, float):
            v = float(raw)
            if not math.isfinite(v):
                return default
        elif isinstance(default, str):
            v = str(raw)
        else:
            v = type(default)(raw)
    except (TypeError, ValueError, OverflowError):
        return default
    if choices is not None and v not in choices:
        return default
    if lo is not None and v < lo:
        v = lo
    if hi is not None and v > hi:
        v = hi
    return v


def _fields(cls):
    return [f for f in dataclasses.fields(cls) if f.init]


def keys(cls) -> dict[str, str]:
    """Field name -> stored key, for a settings dataclass (or an instance of one)."""
    return {f.name: f.metadata.get("key") or f.name for f in _fields(cls)}


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def from_raw(cls: type[S], raw: Mapping[str, Any] | Callable[[str], Any]) -> S:
    """An instance of ``cls`` from stored values: a mapping key -> raw value, or a function
    ``get(key)`` returning the raw value or None. Never raises for a bad value."""
    get = raw.get if isinstance(raw, Mapping) else raw
    kw = {}
    for f in _fields(cls):
        m = f.metadata
        key = m.get("key") or f.name
        try:
            value = get(key)
        except Exception:  # noqa: BLE001 - a corrupt store gives the default
            value = None
        kw[f.name] = coerce(value, _default(f), lo=m.get("lo"), hi=m.get("hi"),
                            choices=m.get("choices"))
    return cls(**kw)


def to_raw(obj) -> dict[str, Any]:
    """Stored key -> value of a settings instance (None values are left out)."""
    k = keys(obj)
    return {k[name]: v for name, v in dataclasses.asdict(obj).items()
            if name in k and v is not None}
