"""The equity chart: valid PNG, byte-identical across renders, also on a year of 1m bars.

How fast a year renders is measured by benchmarks/bench_report.py, not asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from kinetic_empire.report import drawdown_pct, render_equity_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def curve(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000 + 59_999
    eq = 10_000 + np.cumsum(np.sin(np.arange(n) / 37.0) * 3 + np.cos(np.arange(n) / 11.0))
    return ts, eq, drawdown_pct(eq, 10_000)


def test_two_renders_are_byte_identical() -> None:
    ts, eq, dd = curve(3_000)
    a = render_equity_png(ts, eq, dd, title="EMA cross BTCUSDT 1m")
    b = render_equity_png(ts, eq, dd, title="EMA cross BTCUSDT 1m")
    assert a.startswith(PNG_MAGIC)
    assert a == b
    assert b"Software" not in a and b"tIME" not in a


def test_other_input_gives_other_bytes() -> None:
    ts, eq, dd = curve(500)
    assert render_equity_png(ts, eq, dd) != render_equity_png(ts, eq * 1.01, dd)


def test_empty_curve_renders_a_placeholder() -> None:
    empty = np.array([], dtype=float)
    assert render_equity_png(empty.astype(np.int64), empty, empty).startswith(PNG_MAGIC)


def test_shape_mismatch_is_an_error() -> None:
    ts, eq, dd = curve(10)
    with pytest.raises(ValueError, match="shapes differ"):
        render_equity_png(ts, eq[:-1], dd)


def test_a_year_of_minutes_renders_deterministically() -> None:
    ts, eq, dd = curve(525_600)
    a = render_equity_png(ts, eq, dd)
    assert a.startswith(PNG_MAGIC)
    assert a == render_equity_png(ts, eq, dd)
