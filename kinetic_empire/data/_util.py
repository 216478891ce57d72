"""Small helpers shared by the data modules: period origins, time bounds, month keys, first-hit search."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias

import numpy as np
import pandas as pd

from kinetic_empire.core.timeframes import period_origin_ms as period_origin_ms  # re-exported for data modules
from kinetic_empire.core.timeframes import timeframe_ms

TimeLike: TypeAlias = int | str | datetime | date | pd.Timestamp | np.datetime64


def interval_ms(timeframe: str) -> int:
    """Interval length in ms (re-exported from core so data callers have one import)."""
    return timeframe_ms(timeframe)


def to_ms(value: TimeLike | None) -> int | None:
    """Epoch ms from an int (ms), an ISO string, a datetime/date or a Timestamp; naive means UTC."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a time bound cannot be a bool")
    if isinstance(value, int | np.integer):
        return int(value)
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def month_keys(open_time: np.ndarray) -> np.ndarray:
    """UTC calendar month of each open_time as ``datetime64[M]`` (the store partitions by these)."""
    return open_time.astype("datetime64[ms]").astype("datetime64[M]")


def format_ms(ms: int) -> str:
    """Human-readable UTC time for messages."""
    return str(np.datetime64(int(ms), "ms")).replace("T", " ")[:19] + "Z"


def first_true(mask: np.ndarray) -> int | None:
    """Index of the first True in a boolean array, or None (argmax stops at the first hit)."""
    if mask.size == 0:
        return None
    i = int(np.argmax(mask))
    return i if mask[i] else None
