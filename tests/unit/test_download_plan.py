"""Choosing sources and ranges without a network: months, days, REST tail, fallbacks, gaps at the edges."""

from __future__ import annotations

import numpy as np
import pytest

from kinetic_empire.core.errors import KineticError
from kinetic_empire.download.periods import parse_time, split, subtract, union
from kinetic_empire.download.plan import DAILY, MONTHLY, NONE, REST, Chunk, fallback, plan_chunks, source_gaps
from kinetic_empire.download.rest import kline_weight
from tests.support.download import ms

TODAY = ms("2023-09-10")


def test_end_dates_are_inclusive_of_the_day_and_times_exclusive() -> None:
    assert parse_time("2023-11-30", what="--end", end=True) == ms("2023-12-01")
    assert parse_time("2023-11-30T12:00", what="--end", end=True) == ms("2023-11-30 12:00")
    assert parse_time("2023-08-01", what="--start") == ms("2023-08-01")
    with pytest.raises(KineticError, match="--start 'yesterday' is not a date"):
        parse_time("yesterday", what="--start")


def test_range_arithmetic() -> None:
    assert union([(5, 7), (1, 3), (3, 4)]) == [(1, 4), (5, 7)]
    assert subtract([(0, 10)], [(2, 3), (5, 12)]) == [(0, 2), (3, 5)]
    assert subtract([(0, 10)], []) == [(0, 10)]
    assert subtract([(0, 10)], [(0, 10)]) == []
    assert split(ms("2023-08-30"), ms("2023-09-02"), by="month") == [(ms("2023-08-30"), ms("2023-09-01")),
                                                                     (ms("2023-09-01"), ms("2023-09-02"))]


def test_whole_past_months_monthly_current_month_daily_today_rest() -> None:
    chunks = plan_chunks([(ms("2023-07-15"), ms("2023-09-10 06:00"))], "auto", TODAY)
    assert [c.method for c in chunks] == [DAILY] * 17 + [MONTHLY] + [DAILY] * 9 + [REST]
    assert chunks[0] == Chunk(ms("2023-07-15"), ms("2023-07-16"), DAILY, "2023-07-15")
    assert chunks[17] == Chunk(ms("2023-08-01"), ms("2023-09-01"), MONTHLY, "2023-08")
    assert chunks[-1] == Chunk(ms("2023-09-10"), ms("2023-09-10 06:00"), REST)


def test_archive_only_reports_today_and_rest_only_goes_month_by_month() -> None:
    assert plan_chunks([(ms("2023-09-09"), ms("2023-09-10 06:00"))], "archive", TODAY) == [
        Chunk(ms("2023-09-09"), ms("2023-09-10"), DAILY, "2023-09-09"),
        Chunk(ms("2023-09-10"), ms("2023-09-10 06:00"), NONE)]
    assert plan_chunks([(ms("2023-08-20"), ms("2023-09-05"))], "rest", TODAY) == [
        Chunk(ms("2023-08-20"), ms("2023-09-01"), REST), Chunk(ms("2023-09-01"), ms("2023-09-05"), REST)]


def test_funding_has_no_daily_files_so_the_current_month_is_one_rest_chunk() -> None:
    chunks = plan_chunks([(ms("2023-08-01"), ms("2023-09-10 06:00"))], "auto", TODAY, daily=False)
    assert chunks == [Chunk(ms("2023-08-01"), ms("2023-09-01"), MONTHLY, "2023-08"),
                      Chunk(ms("2023-09-01"), ms("2023-09-10 06:00"), REST)]


def test_fallbacks() -> None:
    month = Chunk(ms("2023-08-01"), ms("2023-09-01"), MONTHLY, "2023-08")
    assert [c.method for c in fallback(month, "auto", TODAY)] == [DAILY] * 31
    assert fallback(month, "auto", TODAY, daily=False) == [Chunk(month.start, month.end, REST)]
    day = Chunk(ms("2023-08-01"), ms("2023-08-02"), DAILY, "2023-08-01")
    assert fallback(day, "auto", TODAY) == [Chunk(day.start, day.end, REST)]
    assert fallback(day, "archive", TODAY) == [Chunk(day.start, day.end, NONE)]


def test_source_gaps_include_both_ends_of_the_chunk() -> None:
    hour = 3_600_000
    t = np.array([ms("2023-08-01 02:00"), ms("2023-08-01 03:00"), ms("2023-08-01 06:00")])
    gaps = source_gaps(t, ms("2023-08-01"), ms("2023-08-01 08:00"), "1h")
    assert [(g.start_ms, g.end_ms, g.missing) for g in gaps] == [
        (ms("2023-08-01"), ms("2023-08-01 01:00"), 2), (ms("2023-08-01 04:00"), ms("2023-08-01 05:00"), 2),
        (ms("2023-08-01 07:00"), ms("2023-08-01 07:00"), 1)]
    assert source_gaps(np.array([], dtype=np.int64), 0, 3 * hour, "1h")[0].missing == 3
    assert source_gaps(np.array([0, hour]), 0, 2 * hour, "1h") == []


def test_request_weight_by_limit() -> None:
    assert [kline_weight(n) for n in (99, 100, 499, 500, 1000, 1001, 1500)] == [1, 2, 2, 5, 5, 10, 10]
