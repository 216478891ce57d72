"""Each metric against hand-computed values, and the edge cases that must not crash."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal as D

import numpy as np
import pytest

from kinetic_empire.report.metrics import (
    DAY_MS,
    YEAR_MS,
    compute_metrics,
    daily_equity,
    drawdown_pct,
    format_duration,
)


@dataclass(frozen=True)
class T:
    net_pnl: D


def day_ends(n: int, start_day: int = 0) -> np.ndarray:
    return (np.arange(start_day, start_day + n, dtype=np.int64) + 1) * DAY_MS - 1


def metrics(ts, eq, trades=(), initial=100.0, **kw):  # type: ignore[no-untyped-def]
    args = {"fees": 0, "funding": 0, "liquidations": 0, "exposure_fraction": 0.0} | kw
    return compute_metrics(np.asarray(ts), np.asarray(eq, dtype=float), list(trades), initial, **args)


def test_returns_drawdown_and_daily_ratios() -> None:
    # daily closes 100, 110, 99, 121 from an initial balance of 100
    m = metrics(day_ends(4), [100, 110, 99, 121])
    assert m["total_return_pct"] == pytest.approx(21.0)
    assert m["final_equity"] == 121.0
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)  # 110 -> 99
    assert m["max_drawdown_duration_ms"] == 2 * DAY_MS  # peak on day 1, back above it on day 3
    assert m["max_drawdown_duration"] == "2d 0h 0m"
    # daily returns 0, +10 %, -10 %, +2/9: mean 1/18, sample std 0.137885...
    assert m["sharpe"] == pytest.approx(7.697613, rel=1e-6)
    # downside deviation sqrt((0 + 0 + 0.01 + 0) / 4) = 0.05
    assert m["sortino"] == pytest.approx((1 / 18) / 0.05 * math.sqrt(365), rel=1e-12)
    # 3 days span: (1.21)^(365/3) - 1
    assert m["cagr_pct"] == pytest.approx((1.21 ** (365 / 3) - 1) * 100)
    assert m["calmar"] == pytest.approx(m["cagr_pct"] / 10.0)
    assert m["bars"] == 4 and m["start_ms"] == DAY_MS - 1


@pytest.mark.parametrize(("years", "final", "cagr"), [(1, 121.0, 21.0), (2, 121.0, 10.0), (1, 0.0, -100.0)])
def test_cagr(years: int, final: float, cagr: float) -> None:
    m = metrics([0, years * YEAR_MS], [100.0, final])
    assert m["cagr_pct"] == pytest.approx(cagr)


def test_trade_statistics() -> None:
    trades = [T(D(10)), T(D(-5)), T(D(20)), T(D(-5)), T(D(0))]
    m = metrics(day_ends(2), [100, 120], trades)
    assert m["trade_count"] == 5
    assert m["win_rate_pct"] == pytest.approx(40.0)
    assert m["profit_factor"] == pytest.approx(3.0)  # 30 / 10
    assert m["expectancy"] == pytest.approx(4.0)  # 20 / 5
    assert m["avg_win"] == pytest.approx(15.0)
    assert m["avg_loss"] == pytest.approx(-5.0)


def test_costs_exposure_and_counts_pass_through() -> None:
    m = metrics(
        day_ends(2), [100, 100], fees=D("1.25"), funding=D("-0.5"), liquidations=2, exposure_fraction=0.25
    )
    assert (m["fees"], m["funding"], m["liquidations"], m["exposure_pct"]) == (1.25, -0.5, 2, 25.0)


def test_no_trades_and_flat_equity_are_json_safe() -> None:
    m = metrics(day_ends(5), [100.0] * 5)
    for key in ("sharpe", "sortino", "calmar", "win_rate_pct", "profit_factor", "expectancy", "avg_win"):
        assert m[key] is None, key
    assert m["max_drawdown_pct"] == 0.0 and m["max_drawdown_duration_ms"] == 0
    assert m["total_return_pct"] == 0.0 and m["cagr_pct"] == 0.0
    notes = " | ".join(m["notes"])  # type: ignore[arg-type]
    assert "no trades" in notes and "no variance" in notes and "no drawdown" in notes
    json.dumps(m, allow_nan=False)


def test_no_losing_trade_gives_null_profit_factor_with_note() -> None:
    m = metrics(day_ends(3), [100, 101, 103], [T(D(1)), T(D(2))])
    assert m["profit_factor"] is None and m["avg_loss"] is None
    assert any("infinite" in n for n in m["notes"])  # type: ignore[union-attr]
    assert m["sortino"] is None  # no losing day either
    json.dumps(m, allow_nan=False)


def test_empty_and_single_point_curves() -> None:
    for ts, eq in (([], []), ([5], [100.0])):
        m = metrics(ts, eq)
        assert m["final_equity"] == 100.0 and m["cagr_pct"] is None and m["sharpe"] is None
        json.dumps(m, allow_nan=False)
    with pytest.raises(ValueError, match="shape"):
        metrics([1, 2], [100.0])


def test_unrecovered_drawdown_runs_to_the_end_and_counts_initial_peak() -> None:
    ts = np.array([0, 10, 20, 30, 45], dtype=np.int64)
    m = metrics(ts, [99, 98, 100, 90, 95])  # below the initial 100 at once, then again from ts 20
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    assert m["max_drawdown_duration_ms"] == 25  # 20 -> end (45) beats 0 -> 20
    np.testing.assert_allclose(drawdown_pct(np.array([99.0, 98, 100, 90]), 100), [-1, -2, 0, -10])
    np.testing.assert_allclose(drawdown_pct(np.array([99.0, 98, 100])), [0, -100 / 99, 0])


def test_daily_equity_forward_fills_missing_days() -> None:
    ts = np.array([DAY_MS - 1, 2 * DAY_MS + 5, 2 * DAY_MS + 7], dtype=np.int64)  # day 1 has no bar
    np.testing.assert_array_equal(
        daily_equity(ts, np.array([101.0, 105.0, 107.0]), 100.0), [100, 101, 101, 107]
    )


def test_cagr_over_less_than_a_day_is_null_with_note() -> None:
    m = metrics([0, DAY_MS - 1], [100.0, 1e6])
    assert m["cagr_pct"] is None and m["calmar"] is None and any("cagr" in n for n in m["notes"])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (999, "0s"),
        (90_000, "1m 30s"),
        (3_600_000 * 5, "5h 0m"),
        (DAY_MS * 12 + 3_660_000, "12d 1h 1m"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text
