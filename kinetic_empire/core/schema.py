"""Strict, declarative readers for configuration sections: the one mechanism every config uses.

A section is declared as a mapping of allowed keys to :class:`Key` (how the value is checked, whether it
is required, which attribute it fills). :func:`section` rejects unknown keys and API keys, checks every
value and names the dotted path of the first bad one (``risk.guards.loss_streak.losses: must be >= 1,
got 0``). A check is a plain function ``(value, path) -> parsed`` that raises :class:`ConfigError`, so
a section needing a rule of its own writes one small function instead of a validator class.

Kept here (not in the YAML loader) so every layer, risk included, can declare its section without
importing file loading. No library: pydantic/msgspec messages would have to be translated back into
these paths, and their import would cost the command line start-up.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeVar

from .errors import ConfigError
from .timeframes import TIMEFRAME_MS

Check = Callable[[Any, str], Any]
"""``(value, path) -> parsed value``; raises ConfigError(path, ...) when the value is not acceptable."""

T = TypeVar("T")

_SECRET_KEYS = frozenset({"api_key", "api_secret", "key", "secret", "apikey", "apisecret"})


@dataclass(frozen=True, slots=True)
class Key:
    """One allowed key of a section. Absent keys are left out of the result (the dataclass default
    applies) unless ``required``; a required key given as null counts as absent."""

    check: Check
    required: bool = False
    to: str | None = None  # the attribute it fills, when it differs from the key


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def section(data: Any, path: str, keys: Mapping[str, Key]) -> dict[str, Any]:
    """Check ``data`` against ``keys``; return the parsed values of the keys present, by attribute.

    ``path`` is the section's dotted path ("" for the file's root); None is an empty section.
    """
    given = mapping(data, path)
    for name in given:
        where = join(path, name)
        if not isinstance(name, str):
            raise ConfigError(where, "keys must be strings")
        if name.lower() in _SECRET_KEYS:
            raise ConfigError(
                where,
                "API keys are never read from YAML; set KINETIC_BINANCE_API_KEY and KINETIC_BINANCE_API_SECRET "
                "in the environment or a .env file",
            )
        if name not in keys:
            raise ConfigError(where, f"unknown key; allowed: {', '.join(sorted(keys))}")
    out: dict[str, Any] = {}
    for name, key in keys.items():
        value = given.get(name)
        if key.required and value is None:
            raise ConfigError(join(path, name), "required")
        if name in given:
            out[key.to or name] = key.check(value, join(path, name))
    return out


def nested(keys: Mapping[str, Key]) -> Callable[[Any, str], dict[str, Any]]:
    """A check reading a sub-section into a dict of its present keys."""

    def check(value: Any, path: str) -> dict[str, Any]:
        return section(value, path, keys)

    return check


def record(cls: Callable[..., T], keys: Mapping[str, Key]) -> Callable[[Any, str], T]:
    """A check building ``cls`` from a section (None builds it from defaults)."""

    def check(value: Any, path: str) -> T:
        return cls(**section(value, path, keys))

    return check


@contextmanager
def reading(source: str | None) -> Iterator[None]:
    """Name the file in every ConfigError raised inside the block (checks do not carry it)."""
    try:
        yield
    except ConfigError as exc:
        if exc.source is not None or source is None:
            raise
        raise ConfigError(exc.path, str(exc).removeprefix(f"{exc.path}: "), source) from None


# ------------------------------------------------------------------------------------------ checks


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def mapping(value: Any, path: str) -> Mapping[Any, Any]:
    """A mapping; None is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path or "<root>", f"expected a mapping, got {type(value).__name__}")
    return value


def mapping_of(key: Check, value: Check) -> Callable[[Any, str], Mapping[Any, Any]]:
    """A read-only mapping whose keys and values are checked; each is named ``path.<key>``."""

    def check(data: Any, path: str) -> Mapping[Any, Any]:
        out = {}
        for k, v in mapping(data, path).items():
            where = join(path, k)
            checked = key(k, where)
            out[checked] = value(v, where)
        return MappingProxyType(out)

    return check


def nullable(inner: Check) -> Check:
    """``inner``, or None when the value is null."""

    def check(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return check


def text(value: Any, path: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(path, f"expected a non-empty string, got {_shown(value)}")
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"expected true or false, got {_shown(value)}")
    return value


def choice(options: Iterable[str], *, normalise: Callable[[str], str] = str) -> Check:
    """One of ``options`` (after ``normalise``, e.g. ``str.upper``)."""
    allowed = tuple(options)

    def check(value: Any, path: str) -> str:
        picked = normalise(value) if isinstance(value, str) else value
        if picked not in allowed:
            raise ConfigError(path, f"{picked!r} is not one of {', '.join(allowed)}")
        return str(picked)

    return check


def member(enum: type[Enum], what: str) -> Check:
    """A value of ``enum``, named ``what`` in the message."""

    def check(value: Any, path: str) -> Any:
        try:
            return enum(value)
        except ValueError:
            one_of = ", ".join(str(m.value) for m in enum)
            raise ConfigError(path, f"unknown {what} {value!r}; one of {one_of}") from None

    return check


def timeframe(value: Any, path: str) -> str:
    if not isinstance(value, str) or value not in TIMEFRAME_MS:  # a list (mixed timeframes) is not hashable
        raise ConfigError(path, f"unknown timeframe {value!r}; one of {', '.join(TIMEFRAME_MS)}")
    return str(value)


def paths(value: Any, path: str) -> tuple[str, ...]:
    """One path or a non-empty list of paths."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) and p for p in items):
        raise ConfigError(path, "expected a path or a list of paths")
    return tuple(items)


def time_ms(value: Any, path: str) -> int:
    """A UTC date or datetime (YAML date, ISO string, ``YYYYMMDD`` or epoch ms) -> epoch ms.

    A bare number reads as the command line reads it: 8 digits are ``YYYYMMDD`` (``20230915``), and only
    a number too large to be a date (>= 1e11, after 1973 in ms) is epoch milliseconds; anything else
    is refused rather than guessed."""
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a date, got {value!r}")
    if isinstance(value, int):
        if value >= 10**11:
            return value
        if 10**7 <= value < 10**8:
            return time_ms(str(value), path)
        raise ConfigError(path, f"a bare number {value} is not a date: write it as YYYY-MM-DD (e.g. 2023-09-15)")
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(path, f"not a date: {value!r} (use YYYY-MM-DD or an ISO datetime)") from None
        return time_ms(dt, path)
    raise ConfigError(path, f"expected a date, got {type(value).__name__}")


_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def _bounded(number: Any, value: Any, path: str, bounds: Mapping[str, Any]) -> None:
    """Raise naming the first bound ``number`` breaks (both inclusive bounds: "between lo and hi")."""
    lo, hi = bounds.get(">="), bounds.get("<=")
    if lo is not None and hi is not None and not lo <= number <= hi:
        raise ConfigError(path, f"must be between {lo} and {hi}, got {value!r}")
    for op, bound in bounds.items():
        if bound is not None and not _COMPARE[op](number, bound):
            raise ConfigError(path, f"must be {op} {bound}, got {value!r}")


def decimal(*, ge: Any = None, gt: Any = None, le: Any = None, lt: Any = None) -> Callable[[Any, str], Decimal]:
    """A finite number (not a string, not a bool) as an exact Decimal, within the given bounds."""

    def check(value: Any, path: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ConfigError(path, f"expected a number, got {_shown(value)}")
        number = Decimal(str(value))
        if not number.is_finite():
            raise ConfigError(path, f"expected a finite number, got {value!r}")
        _bounded(number, value, path, {">=": ge, ">": gt, "<=": le, "<": lt})
        return number

    return check


def real(*, ge: float | None = None, gt: float | None = None) -> Callable[[Any, str], float]:
    """A number as a float (durations, speeds; infinity allowed), within the given bounds."""

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ConfigError(path, f"expected a number, got {_shown(value)}")
        number = float(value)
        if number != number:
            raise ConfigError(path, f"expected a number, got {value!r}")
        _bounded(number, value, path, {">=": ge, ">": gt})
        return number

    return check


def integer(*, ge: int | None = None, le: int | None = None) -> Callable[[Any, str], int]:
    """An integer (not a float, not a bool), within the given bounds."""

    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_shown(value)}")
        _bounded(value, value, path, {">=": ge, "<=": le})
        return value

    return check
