"""From a finished backtest to numbers and files: metrics, the results folder, the terminal summary."""

from __future__ import annotations

from pathlib import Path

from ..report import Metrics, compute_metrics, format_summary, write_results
from .engine import BacktestResult


def metrics_of(result: BacktestResult) -> Metrics:
    p = result.portfolio
    metrics = compute_metrics(
        result.timestamps,
        result.equity,
        p.trades,
        p.initial_balance,
        p.fees_total,
        p.funding_total,
        p.liquidation_count,
        p.exposure_fraction(result.timestamps),
    )
    metrics["open_positions_at_end"] = len(p.positions())
    metrics["risk_denials"] = sum(p.denials_by_code.values())
    metrics["klines_replayed"] = result.klines_processed
    if result.gaps:
        metrics["klines_missing_in_data"] = sum(result.gaps.values())
    return metrics


def save_results(result: BacktestResult, results_root: Path, run_id: str, *, overwrite: bool = False) -> Path:
    """Write ``results_root/<run_id>/`` atomically; nothing half-written is left on failure."""
    p = result.portfolio
    names = " + ".join(dict.fromkeys(s.name for s in result.config.strategies))
    symbols = ", ".join(result.config.symbols)
    end = int(result.timestamps[-1]) if len(result.timestamps) else 0
    return write_results(
        results_root,
        run_id,
        trades=[*p.trades, *p.open_trades(end)],  # still-open trades last, marked at the final close
        orders=p.orders,
        equity=(result.timestamps, result.equity, None),
        metrics=metrics_of(result),
        config=result.config.to_dict(),
        denials=p.denials_by_code,
        title=f"{names} on {symbols}",
        overwrite=overwrite,
    )


def summary_text(result: BacktestResult) -> str:
    return format_summary(metrics_of(result))
