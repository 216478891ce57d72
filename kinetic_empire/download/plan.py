"""Which ranges to fetch, and from where: archive months, archive days, or REST.

Pure functions of the request, what is already held and the current time, so the choice of source
is tested without a network. The archive publishes a month's file only after the month ends and a
day's file only after the day ends; everything newer comes from REST (``auto``) or is reported as
not available yet (``archive``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinetic_empire.data import Gap, find_gaps
from kinetic_empire.data._util import interval_ms
from kinetic_empire.download.periods import (
    DAY_MS,
    Range,
    align_up,
    day_label,
    month_label,
    month_start,
    next_month,
    split,
)

SOURCES: tuple[str, ...] = ("auto", "archive", "rest")
MONTHLY, DAILY, REST, NONE = "monthly", "daily", "rest", "none"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One unit of work: ``[start, end)`` fetched by `method`; `label` names the archive month or day."""

    start: int
    end: int
    method: str
    label: str = ""


def plan_chunks(missing: list[Range], source: str, today_start: int, *, daily: bool = True) -> list[Chunk]:
    """Chunks covering `missing`, at most one month each.

    `today_start` is 00:00 UTC of the current day. `daily` is False for series the archive only
    publishes monthly (funding rates).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    chunks: list[Chunk] = []
    for s0, e0 in missing:
        for s, e in split(s0, e0, by="month"):
            if source == "rest":
                chunks.append(Chunk(s, e, REST))
            elif s == month_start(s) and e == next_month(s) and e <= today_start:
                chunks.append(Chunk(s, e, MONTHLY, month_label(s)))
            else:
                chunks.extend(day_chunks(s, e, source, today_start, daily=daily))
    return chunks


def day_chunks(start: int, end: int, source: str, today_start: int, *, daily: bool = True) -> list[Chunk]:
    """Daily archive files for the past days in ``[start, end)``; REST (auto) or nothing for the rest.

    Adjacent REST or unavailable days are merged into one chunk.
    """
    out: list[Chunk] = []
    for s, e in split(start, end, by="day"):
        complete = s - s % DAY_MS + DAY_MS <= today_start
        if daily and complete and source != "rest":
            out.append(Chunk(s, e, DAILY, day_label(s)))
            continue
        method = REST if source in ("auto", "rest") else NONE
        if out and out[-1].method == method and out[-1].end == s:
            out[-1] = Chunk(out[-1].start, e, method)
        else:
            out.append(Chunk(s, e, method))
    return out


def fallback(chunk: Chunk, source: str, today_start: int, *, daily: bool = True) -> list[Chunk]:
    """What to try when the archive has no file for `chunk` (HTTP 404)."""
    if chunk.method == MONTHLY:
        if daily:
            return day_chunks(chunk.start, chunk.end, source, today_start, daily=True)
        return [Chunk(chunk.start, chunk.end, REST if source == "auto" else NONE)]
    if chunk.method == DAILY:
        return [Chunk(chunk.start, chunk.end, REST if source == "auto" else NONE)]
    return []


def source_gaps(open_time: np.ndarray, start: int, end: int, timeframe: str) -> list[Gap]:
    """Klines missing from a fetched ``[start, end)``, including at either end of it."""
    interval = interval_ms(timeframe)
    first = align_up(start, interval, timeframe)
    last = align_up(end, interval, timeframe) - interval
    if first > last:
        return []
    t = np.concatenate(([first - interval], np.asarray(open_time, dtype=np.int64), [last + interval]))
    return list(find_gaps(t, interval))

