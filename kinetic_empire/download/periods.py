"""UTC time ranges: parsing CLI dates, cutting ranges into archive months and days, range arithmetic.

Ranges are half-open ``(start_ms, end_ms)`` pairs. Archive files cover calendar months and days, so a
download is planned by cutting the missing ranges at month and day boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from kinetic_empire.core.errors import KineticError
from kinetic_empire.data._util import period_origin_ms

DAY_MS = 86_400_000
Range = tuple[int, int]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_time(text: str, *, what: str, end: bool = False) -> int:
    """Epoch ms from ``YYYY-MM-DD`` or an ISO date-time (UTC unless it says otherwise).

    An end given as a bare date is inclusive of that whole day (``--end 2023-11-30`` downloads
    November 30th too); an end with a time is exclusive.
    """
    try:
        ts = pd.Timestamp(text.strip())
    except (ValueError, TypeError) as exc:
        raise KineticError(f"{what} {text!r} is not a date (expected YYYY-MM-DD or an ISO date-time)") from exc
    if ts is pd.NaT:
        raise KineticError(f"{what} {text!r} is not a date")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    ms = int(ts.value // 1_000_000)
    if end and _DATE_ONLY.match(text.strip()):
        ms += DAY_MS
    return ms


def month_start(ms: int) -> int:
    return int(np.datetime64(int(ms), "ms").astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64))


def next_month(ms: int) -> int:
    m = np.datetime64(int(ms), "ms").astype("datetime64[M]") + 1
    return int(m.astype("datetime64[ms]").astype(np.int64))


def day_start(ms: int) -> int:
    return ms - ms % DAY_MS


def month_label(ms: int) -> str:
    """``YYYY-MM`` of the month holding `ms` (archive and store file names use it)."""
    return str(np.datetime64(int(ms), "ms").astype("datetime64[M]"))


def day_label(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[D]"))


def split(start: int, end: int, *, by: str) -> list[Range]:
    """`[start, end)` cut at every month (``by="month"``) or day (``by="day"``) boundary."""
    out: list[Range] = []
    t = start
    while t < end:
        nxt = next_month(t) if by == "month" else day_start(t) + DAY_MS
        out.append((t, min(nxt, end)))
        t = nxt
    return out


def align_up(ms: int, interval: int, timeframe: str) -> int:
    """First open_time of `timeframe` at or after `ms`."""
    origin = period_origin_ms(timeframe)
    return ms + (-(ms - origin)) % interval


def union(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, merged (overlapping or touching) ranges; empty ranges dropped."""
    out: list[Range] = []
    for s, e in sorted(r for r in ranges if r[1] > r[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def subtract(wanted: Iterable[Range], have: Iterable[Range]) -> list[Range]:
    """Parts of `wanted` not covered by `have`."""
    have_u = union(have)
    out: list[Range] = []
    for s, e in union(wanted):
        t = s
        for hs, he in have_u:
            if he <= t or hs >= e:
                continue
            if hs > t:
                out.append((t, hs))
            t = max(t, he)
            if t >= e:
                break
        if t < e:
            out.append((t, e))
    return out
