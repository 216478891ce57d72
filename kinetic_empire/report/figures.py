"""Plotly figures of a run as plain JSON-able dicts: equity against buy-and-hold, drawdown, monthly
returns, trade PnL and duration histograms, and price candles per symbol with trades and indicators.

Built by hand rather than through plotly's Python API: the dicts are small, deterministic (same input,
same bytes) and cost no import. The browser draws them with the plotly.js shipped next to the report.
Long series are thinned before they are written: an equity curve keeps each bucket's extremes (the
drawn shape is the same), candles are merged into coarser ones (open, max high, min low, close), so a
year of 1m klines still makes a report that opens at once. Times are epoch milliseconds, which
plotly's date axes read as UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .charts import _decimate

EQUITY_POINTS = 2000
MAX_CANDLES = 4000
EQUITY = "#1f5fa8"
BENCHMARK = "#8a94a6"
DRAWDOWN = "#c0392b"
WIN = "#17803d"
LOSS = "#b42318"
_PALETTE = ("#e67e22", "#8e44ad", "#16a085", "#2c3e50", "#d35400", "#7f8c8d", "#c0392b", "#27ae60")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#222"}

Figure = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PriceChart:
    """What one symbol's price panel shows: its strategy's klines and indicators (full history arrays)."""

    symbol: str
    timeframe: str
    strategy_id: str
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    indicators: Mapping[str, np.ndarray] = field(default_factory=dict)


def numbers(values: Any, digits: int = 8) -> list[float | None]:
    """Floats to ``digits`` significant digits (smaller JSON, same picture); NaN and inf become null."""
    out: list[float | None] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def _base_layout(height: int, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
        "font": _FONT,
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": 1.08},
    }
    layout.update(extra)
    return layout


def _axis(**extra: Any) -> dict[str, Any]:
    return {"gridcolor": "#eceff3", "zerolinecolor": "#d5dae1", "linecolor": "#d5dae1", **extra}


# ------------------------------------------------------------------------------- equity and drawdown


def buy_and_hold(closes: Mapping[str, np.ndarray], initial: float) -> np.ndarray | None:
    """Equal parts of ``initial`` in each symbol at its first close, held to the end (no fees, no leverage)."""
    parts = []
    for close in closes.values():
        c = np.asarray(close, dtype=np.float64)
        valid = np.flatnonzero(np.isfinite(c) & (c > 0))
        if valid.size == 0:
            continue
        filled = c.copy()
        filled[: valid[0]] = c[valid[0]]
        idx = np.maximum.accumulate(np.where(np.isfinite(filled), np.arange(c.size), 0))
        filled = filled[idx]  # carry the last close over holes
        parts.append(filled / c[valid[0]])
    if not parts:
        return None
    return initial * np.mean(parts, axis=0)


def equity_figure(
    ts: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, benchmark: np.ndarray | None = None
) -> Figure:
    """Equity (and buy-and-hold) on top, drawdown in percent below, one shared zoomable time axis."""
    ts = np.asarray(ts, dtype=np.int64)
    series = [np.asarray(equity, dtype=np.float64), np.asarray(drawdown, dtype=np.float64)]
    if benchmark is not None:
        series.append(np.asarray(benchmark, dtype=np.float64))
    keep = _decimate(ts.size, series, EQUITY_POINTS) if ts.size else np.arange(0)
    x = ts[keep].tolist()
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "equity", "x": x, "y": numbers(series[0][keep]),
         "line": {"color": EQUITY, "width": 1.6}, "hovertemplate": "%{y:,.2f}"},
    ]  # fmt: skip
    if benchmark is not None:
        data.append({"type": "scatter", "mode": "lines", "name": "buy and hold", "x": x,
                     "y": numbers(series[2][keep]), "line": {"color": BENCHMARK, "width": 1.2, "dash": "dot"},
                     "hovertemplate": "%{y:,.2f}"})  # fmt: skip
    data.append({"type": "scatter", "mode": "lines", "name": "drawdown %", "x": x, "y": numbers(series[1][keep], 5),
                 "xaxis": "x", "yaxis": "y2", "fill": "tozeroy", "line": {"color": DRAWDOWN, "width": 1},
                 "fillcolor": "rgba(192,57,43,0.25)", "hovertemplate": "%{y:.2f} %"})  # fmt: skip
    layout = _base_layout(
        480,
        xaxis=_axis(type="date", anchor="y2"),
        yaxis=_axis(title={"text": "equity"}, domain=[0.34, 1.0], tickformat=",.0f"),
        yaxis2=_axis(title={"text": "drawdown %"}, domain=[0.0, 0.26], ticksuffix=" %"),
    )
    return {"data": data, "layout": layout}


# ---------------------------------------------------------------------------------- monthly returns


def monthly_returns(ts: np.ndarray, equity: np.ndarray, initial: float) -> tuple[list[int], list[list[float | None]]]:
    """(years, rows of 12 monthly returns in percent): month-end equity against the previous month-end
    (the first month against the initial balance); None for months outside the run."""
    ts = np.asarray(ts, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.size == 0:
        return [], []
    months = ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    last = np.r_[months[1:] != months[:-1], True]
    month_ids, month_end = months[last], eq[last]
    prev = np.r_[initial, month_end[:-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(prev > 0, (month_end / prev - 1.0) * 100.0, np.nan)
    years = sorted({int(m // 12) + 1970 for m in month_ids.tolist()})
    grid: list[list[float | None]] = [[None] * 12 for _ in years]
    for m, r in zip(month_ids.tolist(), rets.tolist()):
        grid[years.index(m // 12 + 1970)][m % 12] = round(r, 4) if math.isfinite(r) else None
    return years, grid


def monthly_figure(ts: np.ndarray, equity: np.ndarray, initial: float) -> Figure:
    years, grid = monthly_returns(ts, equity, initial)
    text = [["" if v is None else f"{v:+.2f} %" for v in row] for row in grid]
    values = [v for row in grid for v in row if v is not None]
    bound = max((abs(v) for v in values), default=1.0) or 1.0
    data = [{
        "type": "heatmap", "x": list(_MONTHS), "y": [str(y) for y in years], "z": grid, "text": text,
        "texttemplate": "%{text}", "hovertemplate": "%{y} %{x}: %{z:+.2f} %<extra></extra>",
        "colorscale": [[0.0, LOSS], [0.5, "#f7f7f7"], [1.0, WIN]], "zmin": -bound, "zmax": bound,
        "showscale": False, "xgap": 2, "ygap": 2,
    }]  # fmt: skip
    layout = _base_layout(
        max(140, 70 + 44 * len(years)),
        hovermode="closest",
        xaxis=_axis(side="top", showgrid=False),
        yaxis=_axis(autorange="reversed", showgrid=False, type="category"),
        margin={"l": 50, "r": 10, "t": 40, "b": 10},
    )
    return {"data": data, "layout": layout, "config": {"displayModeBar": False}}


# ------------------------------------------------------------------------------------ histograms


def _bins(values: Sequence[float], count: int = 30) -> dict[str, float]:
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    size = (hi - lo) / count
    return {"start": lo, "end": hi + size * 0.001, "size": size}


def pnl_histogram(net_pnl: Sequence[float]) -> Figure:
    """Net PnL per closed trade: winners and losers in their colours on common bins."""
    values = [float(v) for v in net_pnl]
    bins = _bins(values)
    data = [
        {"type": "histogram", "name": name, "x": numbers([v for v in values if keep(v)]), "xbins": bins,
         "marker": {"color": color, "line": {"color": "white", "width": 0.5}}, "opacity": 0.85,
         "hovertemplate": "%{x}: %{y} trades<extra></extra>"}
        for name, color, keep in (("losing", LOSS, lambda v: v <= 0), ("winning", WIN, lambda v: v > 0))
    ]  # fmt: skip
    layout = _base_layout(300, barmode="stack", hovermode="closest",
                          xaxis=_axis(title={"text": "net PnL per trade"}), yaxis=_axis(title={"text": "trades"}))
    return {"data": data, "layout": layout}


def duration_histogram(duration_ms: Sequence[int], net_pnl: Sequence[float]) -> Figure:
    """How long trades were held, in hours, winners and losers stacked."""
    hours = [d / 3_600_000 for d in duration_ms]
    bins = _bins(hours)
    data = [
        {"type": "histogram", "name": name, "x": numbers([h for h, p in zip(hours, net_pnl) if keep(p)], 6),
         "xbins": bins, "marker": {"color": color, "line": {"color": "white", "width": 0.5}},
         "hovertemplate": "%{x} h: %{y} trades<extra></extra>"}
        for name, color, keep in (("losing", LOSS, lambda p: p <= 0), ("winning", WIN, lambda p: p > 0))
    ]  # fmt: skip
    layout = _base_layout(300, barmode="stack", hovermode="closest",
                          xaxis=_axis(title={"text": "hours held"}), yaxis=_axis(title={"text": "trades"}))
    return {"data": data, "layout": layout}


# ------------------------------------------------------------------------------------ price panels


def _coarsen(chart: PriceChart, limit: int) -> tuple[np.ndarray, ...]:
    """(open_time, open, high, low, close, step) with at most ``limit`` candles, plus each indicator."""
    n = len(chart.open_time)
    step = max(1, math.ceil(n / limit))
    if step == 1:
        return chart.open_time, chart.open, chart.high, chart.low, chart.close, np.arange(n)
    starts = np.arange(0, n, step)
    ends = np.minimum(starts + step, n) - 1
    high = np.maximum.reduceat(chart.high, starts)
    low = np.minimum.reduceat(chart.low, starts)
    return chart.open_time[starts], chart.open[starts], high, low, chart.close[ends], ends


def _overlays(chart: PriceChart) -> tuple[list[str], list[str]]:
    """Indicators drawn on the price (their values live in its range) and those drawn below it."""
    lo, hi = float(np.nanmin(chart.low)), float(np.nanmax(chart.high))
    on_price, below = [], []
    for name, values in chart.indicators.items():
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size and lo * 0.5 <= float(np.median(finite)) <= hi * 1.5:
            on_price.append(name)
        elif finite.size:
            below.append(name)
    return on_price, below


def price_figure(chart: PriceChart, trades: Sequence[Any]) -> Figure:
    """Candles with the strategy's indicators, entries (triangles) and exits (crosses) joined by a line
    green for a winning trade and red for a losing one; indicators off the price scale get a panel below."""
    t, o, h, lo, c, rows = _coarsen(chart, MAX_CANDLES)
    x = t.tolist()
    on_price, below = _overlays(chart)
    data: list[dict[str, Any]] = [{
        "type": "candlestick", "name": chart.symbol, "x": x, "open": numbers(o), "high": numbers(h),
        "low": numbers(lo), "close": numbers(c), "increasing": {"line": {"color": "#26a269", "width": 1}},
        "decreasing": {"line": {"color": "#c01c28", "width": 1}}, "showlegend": False,
    }]  # fmt: skip
    for k, name in enumerate(on_price + below):
        values = np.asarray(chart.indicators[name], dtype=np.float64)[rows]
        trace = {"type": "scatter", "mode": "lines", "name": name, "x": x, "y": numbers(values),
                 "line": {"color": _PALETTE[k % len(_PALETTE)], "width": 1.2}}  # fmt: skip
        if name in below:
            trace["yaxis"] = "y2"
        data.append(trace)
    data.extend(_trade_traces(trades))
    layout = _base_layout(
        560 if below else 460,
        hovermode="closest",
        xaxis=_axis(type="date", rangeslider={"visible": False}, anchor="y2" if below else "y"),
        yaxis=_axis(title={"text": "price"}, domain=[0.3, 1.0] if below else [0.0, 1.0]),
    )
    if below:
        layout["yaxis2"] = _axis(domain=[0.0, 0.24], title={"text": "indicators"})
    return {"data": data, "layout": layout}


def _trade_traces(trades: Sequence[Any]) -> list[dict[str, Any]]:
    traces: list[dict[str, Any]] = []
    for long in (True, False):
        mine = [tr for tr in trades if (str(getattr(tr.side, "value", tr.side)) == "LONG") == long]
        if not mine:
            continue
        traces.append({
            "type": "scatter", "mode": "markers", "name": "long entry" if long else "short entry",
            "x": [tr.entry_time for tr in mine], "y": numbers([float(tr.entry_price) for tr in mine]),
            "marker": {"symbol": "triangle-up" if long else "triangle-down", "size": 11,
                       "color": WIN if long else LOSS, "line": {"color": "white", "width": 1}},
            "text": [_entry_text(tr) for tr in mine], "hovertemplate": "%{text}<extra></extra>",
        })  # fmt: skip
    if trades:
        traces.append({
            "type": "scatter", "mode": "markers", "name": "exit",
            "x": [tr.exit_time for tr in trades], "y": numbers([float(tr.exit_price) for tr in trades]),
            "marker": {"symbol": "x-thin", "size": 10, "color": "#222", "line": {"color": "#222", "width": 2}},
            "text": [_exit_text(tr) for tr in trades], "hovertemplate": "%{text}<extra></extra>",
        })  # fmt: skip
    for winning in (True, False):
        xs: list[int | None] = []
        ys: list[float | None] = []
        for tr in trades:
            if (tr.net_pnl > 0) == winning:
                xs += [tr.entry_time, tr.exit_time, None]
                ys += [float(tr.entry_price), float(tr.exit_price), None]
        if xs:
            traces.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "hoverinfo": "skip",
                           "showlegend": False, "line": {"color": WIN if winning else LOSS, "width": 1.5,
                                                         "dash": "dot"}})  # fmt: skip
    return traces


def _side(tr: Any) -> str:
    return str(getattr(tr.side, "value", tr.side))


def _entry_text(tr: Any) -> str:
    tag = f" ({tr.entry_tag})" if getattr(tr, "entry_tag", "") else ""
    return f"#{tr.trade_id} {_side(tr)} entry{tag}<br>{float(tr.entry_price):.8g} x {tr.quantity}"


def _exit_text(tr: Any) -> str:
    tag = f" ({tr.exit_tag})" if getattr(tr, "exit_tag", "") else ""
    return (f"#{tr.trade_id} {_side(tr)} exit: {tr.exit_reason}{tag}<br>{float(tr.exit_price):.8g}, "
            f"net {float(tr.net_pnl):+,.2f} ({float(tr.return_pct):+.2f} %)")  # fmt: skip
