"""A self-contained HTML report: one file, chart embedded as base64, inline CSS, no scripts.

It opens anywhere (a mail attachment, an air-gapped box) and is deterministic: nothing in it depends
on when or where it was rendered.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from ._rows import cell, columns, dumps
from .metrics import MetricValue, format_duration
from .table import format_time_ms, summary_rows

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;white-space:nowrap}
th{background:#f3f5f7}td.l,th.l{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
.scroll{overflow-x:auto}.muted{color:#777;font-size:.85em}
img{max-width:100%;height:auto;border:1px solid #eee}
pre{background:#f6f8fa;padding:1em;overflow-x:auto;font-size:.8em}
.pos{color:#17803d}.neg{color:#b42318}
"""


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    left: int = 1,
    tone: Callable[[int, int], str] | None = None,
) -> str:
    """An HTML table; the first ``left`` columns are left-aligned (labels), the rest right (numbers).

    ``tone(row, col)`` may add a CSS class to a cell (e.g. ``pos``/``neg`` for PnL).
    """
    head = "".join(f"<th{_cls('l' if i < left else '')}>{escape(h)}</th>" for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f"<td{_cls('l' if i < left else '', tone(r, i) if tone else '')}>{escape(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _cls(*names: str) -> str:
    joined = " ".join(n for n in names if n)
    return f' class="{joined}"' if joined else ""


def _trade_cell(name: str, value: Any) -> str:
    if name in ("entry_time", "exit_time", "ts") and isinstance(value, int):
        return format_time_ms(value)
    if name == "duration_ms" and isinstance(value, int):
        return format_duration(value)
    return cell(value)


def _counts(rows: Sequence[Any], attr: str) -> list[list[str]]:
    counter = Counter(str(getattr(r, attr, "")) or "-" for r in rows)
    return [[key, str(counter[key])] for key in sorted(counter)]


def render_html(
    *,
    title: str,
    metrics: Mapping[str, MetricValue],
    trades: Sequence[Any],
    orders: Sequence[Any],
    denials: Mapping[str, int],
    config: Mapping[str, Any],
    png: bytes,
    max_trade_rows: int = 1000,
) -> str:
    """The whole report as one HTML string. Trades beyond ``max_trade_rows`` are left to trades.csv."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<img alt="equity and drawdown" src="data:image/png;base64,'
        + base64.b64encode(png).decode("ascii")
        + '">',
        "<h2>Metrics</h2>",
        _table(["metric", "value"], summary_rows(metrics)),
    ]
    notes = metrics.get("notes")
    if isinstance(notes, list) and notes:
        parts.append('<p class="muted">' + "<br>".join(escape(n) for n in notes) + "</p>")
    parts.append(
        '<p class="muted">Equity is marked at each kline close; Sharpe/Sortino from daily returns, '
        "365 days a year, risk-free 0; n/a marks an undefined figure (see notes).</p>"
    )

    parts.append(f"<h2>Trades ({len(trades)})</h2>")
    if trades:
        names = columns(trades)
        shown = trades[:max_trade_rows]
        rows = [[_trade_cell(n, getattr(t, n)) for n in names] for t in shown]
        pnl_col = names.index("net_pnl") if "net_pnl" in names else -1

        def tone(r: int, i: int) -> str:
            if i != pnl_col:
                return ""
            value = getattr(shown[r], "net_pnl", 0)
            return "pos" if value > 0 else "neg" if value < 0 else ""

        parts.append(_table(names, rows, left=0, tone=tone))
        if len(trades) > max_trade_rows:
            parts.append(f'<p class="muted">First {max_trade_rows} shown; all are in trades.csv.</p>')
    else:
        parts.append('<p class="muted">No trades.</p>')

    parts.append(f"<h2>Orders ({len(orders)} events)</h2>")
    if orders:
        parts.append("<h3>By status</h3>" + _table(["status", "count"], _counts(orders, "status")))
        parts.append("<h3>By type</h3>" + _table(["type", "count"], _counts(orders, "order_type")))
        parts.append("<h3>By reason</h3>" + _table(["reason", "count"], _counts(orders, "reason")))
    else:
        parts.append('<p class="muted">No order events.</p>')

    total = sum(denials.values())
    parts.append(f"<h2>Risk denials ({total})</h2>")
    if denials:
        parts.append(_table(["code", "count"], [[k, str(denials[k])] for k in sorted(denials)]))
    else:
        parts.append('<p class="muted">None.</p>')

    parts.append("<h2>Run configuration</h2>")
    parts.append(f"<pre>{escape(dumps(config))}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
