"""The metrics as an aligned text table for the terminal; the same labels feed the HTML report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from .metrics import MetricValue

# (label, key, kind); kinds decide the number format
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Start", "start_ms", "time"),
    ("End", "end_ms", "time"),
    ("Bars", "bars", "int"),
    ("Initial balance", "initial_balance", "money"),
    ("Final equity", "final_equity", "money"),
    ("Total return", "total_return_pct", "pct"),
    ("CAGR", "cagr_pct", "pct"),
    ("Max drawdown", "max_drawdown_pct", "pct"),
    ("Max drawdown duration", "max_drawdown_duration", "text"),
    ("Sharpe (daily, 365)", "sharpe", "ratio"),
    ("Sortino (daily, 365)", "sortino", "ratio"),
    ("Calmar", "calmar", "ratio"),
    ("Exposure", "exposure_pct", "pct"),
    ("Trades", "trade_count", "int"),
    ("Win rate", "win_rate_pct", "pct"),
    ("Profit factor", "profit_factor", "ratio"),
    ("Expectancy (net / trade)", "expectancy", "money"),
    ("Average win", "avg_win", "money"),
    ("Average loss", "avg_loss", "money"),
    ("Fees", "fees", "money"),
    ("Funding", "funding", "money"),
    ("Funding received", "funding_received", "money"),
    ("Funding paid", "funding_paid", "money"),
    ("Liquidations", "liquidations", "int"),
    ("Open positions at end", "open_positions_at_end", "int"),
    ("Risk denials", "risk_denials", "int"),
    ("Entries ignored (already held)", "entries_ignored", "int"),
)


def format_time_ms(ms: int) -> str:
    """Epoch ms as ``YYYY-MM-DD HH:MM`` UTC."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def format_value(value: MetricValue, kind: str) -> str:
    """One metric as text; ``n/a`` for an undefined figure (see the notes for why)."""
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return "; ".join(value)
    if kind == "text" or isinstance(value, str):
        return str(value)
    if kind == "time":
        return format_time_ms(int(value)) if value else "-"
    if kind != "time" and abs(value) >= 1e9:
        return f"{value:.3e}" + (" %" if kind == "pct" else "")  # a short run's CAGR can be astronomical
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{value:,.2f} %"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:,.3f}"


def summary_rows(metrics: Mapping[str, MetricValue]) -> list[tuple[str, str]]:
    """(label, formatted value) for each known metric present, in reading order."""
    return [(label, format_value(metrics[key], kind)) for label, key, kind in METRIC_ROWS if key in metrics]


def format_summary(metrics: Mapping[str, MetricValue]) -> str:
    """Aligned two-column table; labels left, values right-aligned, notes listed underneath."""
    rows = summary_rows(metrics)
    if not rows:
        return "(no metrics)"
    lw = max(len(label) for label, _ in rows)
    vw = max(len(value) for _, value in rows)
    rule = "-" * (lw + vw + 3)
    lines = [rule, *(f"{label:<{lw}}   {value:>{vw}}" for label, value in rows), rule]
    notes = metrics.get("notes") or []
    if isinstance(notes, list) and notes:
        lines += ["Notes:", *(f"  - {note}" for note in notes)]
    return "\n".join(lines)
