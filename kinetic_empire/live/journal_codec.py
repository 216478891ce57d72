"""Events to and from the journal's JSON payloads: Decimals as plain strings, enums as their values.

:func:`payload` writes the same text as ``json`` did over :func:`encode`'s dict (compact separators, ASCII
escapes), field by field with the formatting decided per value type, without building the dict first: a
kline's intent and order rows are written before the order may leave, so this is on the order path.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring_ascii
from typing import Any

_compact = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(..., separators=...) builds one per call
_NAMES: dict[type, tuple[str, ...]] = {}
_SIMPLE = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def encode(event: Any) -> dict[str, Any]:
    """The event's fields as JSON-ready values."""
    out = {}
    for name in _names(type(event)):
        value = getattr(event, name)
        out[name] = value if type(value) in _SIMPLE else plain(value)
    return out


def _float(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


def _strings(v: tuple[Any, ...] | list[Any]) -> str:
    """A tuple or list as ``json`` wrote it; of strings only (an order's adjustment notes), without the encoder:
    its C encoder and the Python around it are code the order path touches nowhere else, so on a kline after an
    idle wait they were fetched from memory for this one field (about 40 µs measured, cold, against 2 µs hot)."""
    if not v:
        return "[]"
    for item in v:
        if type(item) is not str:
            return str(_compact(plain(v)))
    return "[" + ",".join(map(encode_basestring_ascii, v)) + "]"


_WRITERS: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _float,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
    Decimal: lambda v: f'"{v:f}"',  # digits, sign, point: nothing to escape
    tuple: _strings,
    list: _strings,
}
_PREFIXES: dict[type, tuple[tuple[str, str], ...]] = {}


def _value(v: Any) -> str:
    """Any other value, as ``json`` wrote it after :func:`plain` (dicts, odd numbers); an enum type whose values
    are strings or ints gets a writer of its own on first sight (2-3 µs a field saved)."""
    cls = type(v)
    if isinstance(v, Enum) and type(v.value) in (str, int):
        base = _WRITERS[type(v.value)]
        _WRITERS[cls] = lambda e: base(e._value_)
        return base(v.value)
    return str(_compact(plain(v)))


def payload(event: Any) -> str:
    """``_compact(encode(event))``, the same text, faster."""
    cls = type(event)
    prefixes = _PREFIXES.get(cls)
    if prefixes is None:
        prefixes = _PREFIXES[cls] = tuple((name, ("{" if i == 0 else ",") + encode_basestring_ascii(name) + ":")
                                          for i, name in enumerate(_names(cls)))
    if not prefixes:
        return "{}"
    writers = _WRITERS
    parts = []
    for name, prefix in prefixes:
        v = getattr(event, name)
        write = writers.get(type(v))
        parts.append(prefix + (write(v) if write is not None else _value(v)))
    parts.append("}")
    return "".join(parts)


def _converter(hint: Any) -> Callable[[Any], Any]:
    """How to turn a JSON value back into a field of type ``hint``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and args:
        inner = _converter(args[0])
        return lambda v: None if v is None else inner(v)
    if hint is Decimal:
        return Decimal
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    if typing.get_origin(hint) is tuple:
        return tuple
    return lambda v: v


_DECODERS: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}


def decode_as(cls: type, payload: dict[str, Any]) -> Any:
    """The ``cls`` event a decoded payload describes."""
    conv = _DECODERS.get(cls)
    if conv is None:
        hints = typing.get_type_hints(cls)
        conv = _DECODERS[cls] = [(f.name, _converter(hints[f.name])) for f in fields(cls)]
    return cls(**{name: c(payload[name]) for name, c in conv if name in payload})
