"""Performance figures from an equity curve and a list of round-trip trades.

Conventions (say them once, so numbers are comparable across runs):
- The equity curve is marked at each kline's close; ``timestamps_ms`` are those close times.
- Drawdown is measured against the running peak, seeded with the initial balance; ``max_drawdown_pct``
  is negative (-12.5 means the equity fell 12.5 % below its peak).
- Sharpe and Sortino use daily returns: equity at the end of each UTC day (forward-filled across days
  without a kline, the first return starting from the initial balance), annualised with 365 days
  (crypto trades every day) and a risk-free rate of 0. Sortino's downside deviation is the root mean
  square of the negative daily returns over all days.
- A trade wins when its net PnL (after fees and funding) is above zero and loses when below.
- CAGR needs at least a day of curve; annualising minutes gives numbers that mean nothing.
- A figure that is undefined or infinite (no trades, flat equity, no losing trade) is ``None`` — JSON
  ``null`` — and ``notes`` says why, so the output is always valid JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import numpy as np

DAY_MS = 86_400_000
YEAR_DAYS = 365
YEAR_MS = YEAR_DAYS * DAY_MS

MetricValue = float | int | str | list[str] | None
Metrics = dict[str, MetricValue]


class HasNetPnl(Protocol):
    """What metrics need from a trade record (``TradeRecord`` fits)."""

    @property
    def net_pnl(self) -> Decimal | float: ...


def drawdown_pct(equity: np.ndarray, initial_balance: float | Decimal | None = None) -> np.ndarray:
    """Percent below the running peak at each point (0 at a new high, negative below it)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return eq.copy()
    peak = np.maximum.accumulate(eq)
    if initial_balance is not None:
        peak = np.maximum(peak, float(initial_balance))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (eq / peak - 1.0) * 100.0, 0.0)
    return dd


def _underwater_ms(ts: np.ndarray, eq: np.ndarray, peak: np.ndarray) -> int:
    """Longest time from a peak until equity is back at it (or the end of the curve if it never is)."""
    under = eq < peak
    if not under.any():
        return 0
    starts = np.flatnonzero(under & ~np.r_[False, under[:-1]])
    ends = np.flatnonzero(under & ~np.r_[under[1:], False])
    peak_idx = np.maximum(starts - 1, 0)
    back_idx = np.minimum(ends + 1, len(eq) - 1)
    return int((ts[back_idx] - ts[peak_idx]).max())


def format_duration(ms: int) -> str:
    """Human form of a duration: ``12d 3h 7m``, ``5h 0m``, ``7m 30s``, ``0s``."""
    secs = int(ms) // 1000
    d, rem = divmod(secs, 86_400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    if d:
        return f"{d}d {h}h {m}m"
    if h:
        return f"{h}h {m}m"
    if m:
        return f"{m}m {s}s"
    return f"{s}s"


def daily_equity(timestamps_ms: np.ndarray, equity: np.ndarray, initial_balance: float) -> np.ndarray:
    """Initial balance followed by the equity at the end of each UTC day from the first to the last."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.size == 0:
        return np.array([initial_balance], dtype=np.float64)
    first_day, last_day = ts[0] // DAY_MS, ts[-1] // DAY_MS
    day_ends = (np.arange(first_day, last_day + 1, dtype=np.int64) + 1) * DAY_MS - 1
    idx = np.searchsorted(ts, day_ends, side="right") - 1  # >= 0: every day end is >= ts[0]
    return np.r_[initial_balance, eq[idx]]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 and math.isfinite(num / den) else None


def compute_metrics(
    timestamps_ms: np.ndarray,
    equity: np.ndarray,
    trades: Sequence[HasNetPnl],
    initial_balance: float | Decimal,
    fees: float | Decimal,
    funding: float | Decimal,
    liquidations: int,
    exposure_fraction: float,
    *,
    funding_split: tuple[float | Decimal, float | Decimal] | None = None,
) -> Metrics:
    """Every headline figure of a run as a JSON-safe dict (see the module docstring for conventions)."""
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.shape != eq.shape:
        raise ValueError(f"timestamps {ts.shape} and equity {eq.shape} differ in shape")
    initial = float(initial_balance)
    notes: list[str] = []
    out: Metrics = {}
    final = float(eq[-1]) if eq.size else initial

    # -- returns
    out["initial_balance"] = initial
    out["final_equity"] = final
    out["bars"] = int(eq.size)
    out["start_ms"] = int(ts[0]) if ts.size else 0
    out["end_ms"] = int(ts[-1]) if ts.size else 0
    out["total_return_pct"] = (final / initial - 1.0) * 100.0 if initial > 0 else None
    span_years = (int(ts[-1]) - int(ts[0])) / YEAR_MS if ts.size else 0.0
    cagr: float | None = None
    if span_years * YEAR_DAYS < 1 or initial <= 0:
        notes.append("cagr_pct: the curve spans less than a day; not annualised")
    elif final <= 0:
        cagr = -100.0
    else:
        try:
            cagr = ((final / initial) ** (1.0 / span_years) - 1.0) * 100.0
        except OverflowError:
            cagr = None
        if cagr is None or not math.isfinite(cagr):
            cagr = None
            notes.append("cagr_pct: too large to annualise over so short a period")
    out["cagr_pct"] = cagr

    # -- drawdown
    if eq.size:
        peak = np.maximum(np.maximum.accumulate(eq), initial)
        max_dd = float(drawdown_pct(eq, initial).min())
        dd_ms = _underwater_ms(ts, eq, peak)
    else:
        max_dd, dd_ms = 0.0, 0
    out["max_drawdown_pct"] = max_dd
    out["max_drawdown_duration_ms"] = dd_ms
    out["max_drawdown_duration"] = format_duration(dd_ms)
    if cagr is not None and max_dd < 0:
        out["calmar"] = cagr / abs(max_dd)
    else:
        out["calmar"] = None
        notes.append("calmar: " + ("no drawdown" if max_dd >= 0 else "no CAGR"))

    # -- daily risk-adjusted returns
    daily = daily_equity(ts, eq, initial)
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(daily) / daily[:-1]
    rets = rets[np.isfinite(rets)]
    sharpe = sortino = None
    if rets.size < 2:
        notes.append("sharpe, sortino: fewer than two daily returns")
    else:
        mean = float(rets.mean())
        std = float(rets.std(ddof=1))
        downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
        sharpe = _ratio(mean * math.sqrt(YEAR_DAYS), std)
        sortino = _ratio(mean * math.sqrt(YEAR_DAYS), downside)
        if sharpe is None:
            notes.append("sharpe: daily returns have no variance")
        if sortino is None:
            notes.append("sortino: no losing day (infinite or undefined)")
    out["sharpe"] = sharpe
    out["sortino"] = sortino

    # -- trades
    pnl = np.array([float(t.net_pnl) for t in trades], dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    n = int(pnl.size)
    out["trade_count"] = n
    out["win_rate_pct"] = len(wins) / n * 100.0 if n else None
    out["expectancy"] = float(pnl.mean()) if n else None
    out["avg_win"] = float(wins.mean()) if wins.size else None
    out["avg_loss"] = float(losses.mean()) if losses.size else None
    out["profit_factor"] = float(wins.sum() / -losses.sum()) if losses.size else None
    if not n:
        notes.append("win_rate_pct, expectancy, profit_factor: no trades")
    elif not losses.size:
        notes.append("profit_factor: no losing trade (infinite)" if wins.size else "profit_factor: no PnL")

    # -- costs and exposure
    out["fees"] = float(fees)
    out["funding"] = float(funding)
    if funding_split is not None:  # (received, paid): a hedge's carry is both, the net alone hides it
        out["funding_received"] = float(funding_split[0])
        out["funding_paid"] = float(funding_split[1])
    out["liquidations"] = int(liquidations)
    out["exposure_pct"] = float(exposure_fraction) * 100.0
    out["notes"] = notes
    return out
