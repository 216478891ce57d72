"""The HTML report: one page with interactive charts (plotly.js read from ``plotly.min.js`` next to it,
nothing from the network), breakdown tables and the trade list.

Deterministic: nothing in it depends on when or where it was rendered, so identical runs give
identical bytes. Without the equity series (an old caller) the static PNG is embedded instead.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from ..core.rules import SymbolRules
from . import figures
from ._html import CSS, SCRIPT, cards, chart, sign_class, table
from ._rows import cell, dumps
from .breakdown import HEADER, KEYS, closed, exit_label, group_by, group_cells
from .csvfiles import Precision, rounded
from .metrics import MetricValue, format_duration
from .plotlyjs import FILE_NAME as PLOTLY_FILE
from .table import format_time_ms, format_value, summary_rows

TRADE_HEADER = ("#", "strategy", "symbol", "side", "entry tag", "entry (UTC)", "exit (UTC)", "held", "qty",
                "entry", "exit", "net PnL", "return %", "exit reason")  # fmt: skip
_TAG_COLUMNS = (4, 13)


def _counts(rows: Sequence[Any], attr: str) -> list[list[str]]:
    counter = Counter(str(getattr(r, attr, "")) or "-" for r in rows)
    return [[key, str(counter[key])] for key in sorted(counter)]


def _num(value: MetricValue) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _strategy_lines(config: Mapping[str, Any]) -> list[str]:
    out = []
    for s in config.get("strategies") or []:
        if not isinstance(s, Mapping):
            continue
        params = ", ".join(f"{k}={v}" for k, v in sorted((s.get("params") or {}).items()))
        tf = s.get("timeframe") or "its own timeframe"
        out.append(f"{s.get('name', '?')} {tf} on {', '.join(s.get('symbols') or [])}"
                   + (f" ({params})" if params else ""))  # fmt: skip
    return out


def _header(title: str, metrics: Mapping[str, MetricValue], config: Mapping[str, Any]) -> str:
    meta = []
    lines = _strategy_lines(config)
    if lines:
        meta.append("<b>Strategies</b> " + escape("; ".join(lines)))
    start, end = metrics.get("start_ms"), metrics.get("end_ms")
    if isinstance(start, int) and isinstance(end, int) and end:
        meta.append(f"<b>Period</b> {escape(format_time_ms(start))} to {escape(format_time_ms(end))} UTC")
    initial = _num(metrics.get("initial_balance"))
    if initial is not None:
        meta.append(f"<b>Initial balance</b> {initial:,.2f}")
    return (f'<header><div class="inner"><h1>{escape(title)}</h1><div class="meta">'
            + " &nbsp;·&nbsp; ".join(meta) + "</div></div></header>")  # fmt: skip


def _cards(metrics: Mapping[str, MetricValue], benchmark_pct: float | None) -> str:
    def pct(key: str) -> tuple[str, str]:
        v = _num(metrics.get(key))
        return format_value(v, "pct"), sign_class(v or 0.0)

    items = [("Total return", *pct("total_return_pct"))]
    if benchmark_pct is not None:
        items.append(("Buy and hold", format_value(benchmark_pct, "pct"), sign_class(benchmark_pct)))
    items += [
        ("CAGR", *pct("cagr_pct")),
        ("Max drawdown", *pct("max_drawdown_pct")),
        ("Sharpe", format_value(_num(metrics.get("sharpe")), "ratio"), ""),
        ("Sortino", format_value(_num(metrics.get("sortino")), "ratio"), ""),
        ("Closed trades", format_value(_num(metrics.get("trade_count")), "int"), ""),
        ("Win rate", format_value(_num(metrics.get("win_rate_pct")), "pct"), ""),
        ("Profit factor", format_value(_num(metrics.get("profit_factor")), "ratio"), ""),
        ("Open at end", format_value(_num(metrics.get("open_positions_at_end")) or 0, "int"), ""),
        ("Fees", format_value(_num(metrics.get("fees")), "money"), ""),
        ("Risk denials", format_value(_num(metrics.get("risk_denials")) or 0, "int"), ""),
    ]
    return cards(items)


def _trade_rows(trades: Sequence[Any], precision: Precision) -> list[list[str]]:
    rows = []
    for t in trades:
        sym = t.symbol
        rows.append([
            str(t.trade_id), str(t.strategy_id), sym, cell(t.side), getattr(t, "entry_tag", ""),
            format_time_ms(t.entry_time), format_time_ms(t.exit_time) if t.exit_reason != "open" else "open",
            format_duration(t.duration_ms), cell(rounded(t.quantity, precision.quantity(sym))),
            cell(rounded(t.entry_price, precision.average_price(sym))),
            cell(rounded(t.exit_price, precision.average_price(sym))),
            f"{float(t.net_pnl):+,.2f}", f"{float(t.return_pct):+.2f}", exit_label(t),
        ])  # fmt: skip
    return rows


def _trades_section(trades: Sequence[Any], precision: Precision, max_rows: int) -> list[str]:
    done = closed(trades)
    still_open = len(trades) - len(done)
    extra = f", {still_open} still open at the end" if still_open else ""
    parts = [f"<h2>Trades ({len(done)} closed{extra})</h2>"]
    if not trades:
        return [*parts, '<p class="muted">No trades.</p>']
    shown = sorted(trades, key=lambda t: t.trade_id)[:max_rows]  # in the order they were entered
    pnl_col = TRADE_HEADER.index("net PnL")

    def tone(r: int, i: int) -> str:
        return sign_class(float(shown[r].net_pnl)) if i in (pnl_col, pnl_col + 1) else ""

    parts.append('<div class="panel tall">'
                 + table(TRADE_HEADER, _trade_rows(shown, precision), left=4, tone=tone, wrap=_TAG_COLUMNS)
                 + "</div>")  # fmt: skip
    if len(trades) > max_rows:
        parts.append(f'<p class="muted">First {max_rows} shown; all are in trades.csv.</p>')
    return parts


def _breakdowns(trades: Sequence[Any]) -> list[str]:
    done = closed(trades)
    if not done:
        return []
    panels = []
    for heading, key in KEYS.items():
        rows = [group_cells(g) for g in group_by(done, key)]

        def tone(r: int, i: int, rows: list[list[str]] = rows) -> str:
            return sign_class(float(rows[r][3].replace(",", ""))) if i == 3 else ""

        panels.append(f'<div class="panel"><h3>By {escape(heading)}</h3>'
                      + table((heading, *HEADER), rows, left=1, tone=tone, wrap=(0,)) + "</div>")  # fmt: skip
    note = ' <span class="muted">(closed trades; net of fees and funding)</span>'
    return [f"<h2>Breakdown{note}</h2>", '<div class="grid2">' + "".join(panels) + "</div>"]


def _charts(
    equity: tuple[np.ndarray, np.ndarray, np.ndarray],
    metrics: Mapping[str, MetricValue],
    trades: Sequence[Any],
    closes: Mapping[str, np.ndarray] | None,
    price_charts: Sequence[figures.PriceChart],
) -> tuple[list[str], float | None]:
    ts, eq, dd = equity
    initial = _num(metrics.get("initial_balance")) or (float(eq[0]) if len(eq) else 0.0)
    bench = figures.buy_and_hold(closes, initial) if closes else None
    bench_pct = float((bench[-1] / initial - 1) * 100) if bench is not None and len(bench) and initial else None
    what = "Equity against buy and hold" if bench is not None else "Equity"
    parts = [f"<h2>{what}, drawdown</h2>", '<div class="panel">' + chart("equity", figures.equity_figure(
        ts, eq, dd, bench)) + "</div>"]  # fmt: skip
    done = closed(trades)
    parts.append("<h2>Returns by month, trade outcomes</h2>")
    parts.append('<div class="panel">' + chart("monthly", figures.monthly_figure(ts, eq, initial)) + "</div>")
    if done:
        pnl = [float(t.net_pnl) for t in done]
        parts.append('<div class="grid2">'
                     + '<div class="panel"><h3>Net PnL per trade</h3>' + chart("pnl", figures.pnl_histogram(pnl))
                     + "</div>"
                     + '<div class="panel"><h3>Time in trade</h3>'
                     + chart("duration", figures.duration_histogram([t.duration_ms for t in done], pnl))
                     + "</div></div>")  # fmt: skip
    for k, pc in enumerate(price_charts):
        mine = [t for t in trades if t.symbol == pc.symbol]
        parts.append(f"<h2>{escape(pc.symbol)} {escape(pc.timeframe)} · {escape(pc.strategy_id)}</h2>")
        parts.append('<div class="panel">' + chart(f"price{k}", figures.price_figure(pc, mine)) + "</div>")
    return parts, bench_pct


def render_html(
    *,
    title: str,
    metrics: Mapping[str, MetricValue],
    trades: Sequence[Any],
    orders: Sequence[Any],
    denials: Mapping[str, int],
    config: Mapping[str, Any],
    png: bytes = b"",
    max_trade_rows: int = 1000,
    equity: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    closes: Mapping[str, np.ndarray] | None = None,
    price_charts: Sequence[figures.PriceChart] = (),
    warnings: Sequence[str] = (),
    rules: Mapping[str, SymbolRules] | None = None,
) -> str:
    """The whole report as one HTML string. Trades beyond ``max_trade_rows`` are left to trades.csv.

    With ``equity`` (timestamps, equity, drawdown) the charts are interactive (plotly.min.js next to
    the page); ``closes`` adds buy-and-hold, ``price_charts`` a candle chart per symbol with its trades.
    """
    precision = Precision(rules)
    body: list[str] = []
    bench_pct = None
    if equity is not None:
        chart_parts, bench_pct = _charts(equity, metrics, trades, closes, price_charts)
    elif png:
        chart_parts = ['<div class="panel"><img style="max-width:100%" alt="equity and drawdown" '
                       'src="data:image/png;base64,' + base64.b64encode(png).decode("ascii") + '"></div>']
    else:
        chart_parts = []
    body.append(_cards(metrics, bench_pct))
    for w in warnings:
        body.append(f'<div class="warn">{escape(w)}</div>')
    body += chart_parts
    body += _breakdowns(trades)
    body += _trades_section(trades, precision, max_trade_rows)

    notes = metrics.get("notes")
    note_html = ""
    if isinstance(notes, list) and notes:
        note_html = '<p class="muted">' + "<br>".join(escape(n) for n in notes) + "</p>"
    metrics_panel = ('<div class="panel"><h3>Metrics</h3>' + table(["metric", "value"], summary_rows(metrics))
                     + note_html + '<p class="muted">Equity is marked at each kline close; Sharpe/Sortino from '
                     "daily returns, 365 days a year, risk-free 0; n/a marks an undefined figure (see notes)."
                     "</p></div>")  # fmt: skip
    order_parts = [f"<h3>Orders ({len(orders)} events)</h3>"]
    if orders:
        order_parts += [table(["status", "count"], _counts(orders, "status")),
                        table(["type", "count"], _counts(orders, "order_type")),
                        table(["reason", "count"], _counts(orders, "reason"))]  # fmt: skip
    total = sum(denials.values())
    order_parts.append(f"<h3>Risk denials ({total})</h3>")
    order_parts.append(table(["code", "count"], [[k, str(denials[k])] for k in sorted(denials)])
                       if denials else '<p class="muted">None.</p>')  # fmt: skip
    body.append("<h2>Figures, orders, denials</h2>")
    body.append(f'<div class="grid2">{metrics_panel}<div class="panel">{"".join(order_parts)}</div></div>')
    body.append(f"<h2>Run configuration</h2><div class=\"panel\"><details><summary>config.json</summary>"
                f"<pre>{escape(dumps(config))}</pre></details></div>")  # fmt: skip

    scripts = ""
    if equity is not None:
        scripts = f'<script src="{PLOTLY_FILE}"></script><script>{SCRIPT}</script>'
        body.append('<noscript><p class="nojs">Charts need JavaScript; equity.png has the static equity '
                    "chart.</p></noscript>")  # fmt: skip
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        _header(title, metrics, config),
        "<main>", *body, "</main>", scripts, "</body></html>\n",
    ])  # fmt: skip
