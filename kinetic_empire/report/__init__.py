"""Reports: metrics from an equity curve and trades, an interactive HTML page (plotly.js, offline), CSVs
for quants, a static chart and an atomic results folder."""

from .charts import render_equity_png
from .csvfiles import iso_duration, iso_time, orders_csv, trades_csv
from .figures import PriceChart
from .html import render_html
from .metrics import Metrics, MetricValue, compute_metrics, daily_equity, drawdown_pct, format_duration
from .table import format_summary
from .writer import FILES, render_results, write_results

__all__ = [
    "FILES",
    "MetricValue",
    "Metrics",
    "PriceChart",
    "compute_metrics",
    "daily_equity",
    "drawdown_pct",
    "format_duration",
    "format_summary",
    "iso_duration",
    "iso_time",
    "orders_csv",
    "render_equity_png",
    "render_html",
    "render_results",
    "trades_csv",
    "write_results",
]
