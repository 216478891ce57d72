"""Reports: metrics from an equity curve and trades, a chart, an HTML page and an atomic results folder."""

from .charts import render_equity_png
from .html import render_html
from .metrics import Metrics, MetricValue, compute_metrics, daily_equity, drawdown_pct, format_duration
from .table import format_summary
from .writer import FILES, render_results, write_results

__all__ = [
    "FILES",
    "MetricValue",
    "Metrics",
    "compute_metrics",
    "daily_equity",
    "drawdown_pct",
    "format_duration",
    "format_summary",
    "render_equity_png",
    "render_html",
    "render_results",
    "write_results",
]
