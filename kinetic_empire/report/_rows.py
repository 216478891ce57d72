"""Turning record dataclasses (trades, orders, denials) into text cells, the same way everywhere."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any


def cell(value: Any) -> str:
    """Plain, lossless text: Decimals without exponent, enums by value, None as empty."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        if not value:
            return "0"
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def columns(rows: Sequence[Any]) -> list[str]:
    """Field names of the (dataclass) rows; empty when there are none."""
    if not rows:
        return []
    return [f.name for f in dataclasses.fields(rows[0])]


def json_default(value: Any) -> Any:
    """JSON for the odd types a config carries: Decimal and Path as strings, enums by value."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal | Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(obj: Any) -> str:
    """Stable JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, default=json_default, allow_nan=False) + "\n"
