"""Events and engine values as JSON: Decimals as strings (exact), enums as their Binance strings."""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal
from enum import Enum
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


def plain(value: Any) -> Any:
    """A JSON-safe copy: Decimal -> str, Enum -> value, tuples -> lists."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def event_dict(event: Any) -> dict[str, Any]:
    """Every field of a bus event, JSON-safe."""
    names = _NAMES.get(type(event))
    if names is None:
        names = _NAMES[type(event)] = tuple(f.name for f in fields(event))
    return {name: plain(getattr(event, name)) for name in names}


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def dec_str(value: Decimal | float | None) -> str | None:
    if value is None:
        return None
    return format(value, "f") if isinstance(value, Decimal) else repr(float(value))
