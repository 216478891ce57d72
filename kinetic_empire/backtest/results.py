"""From a finished backtest to numbers and files: metrics, the results folder, the terminal summary."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..core.rules import SymbolRules
from ..core.timeframes import timeframe_ms
from ..report import Metrics, compute_metrics, format_summary, write_results
from ..report.figures import PriceChart
from ..report.table import format_time_ms
from ..resources import default_symbol_rules
from ..strategy.group import GroupRunner
from ..strategy.series import engine_array
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
        funding_split=(p.funding_received, p.funding_paid),
    )
    metrics["open_positions_at_end"] = len(p.positions())
    metrics["risk_denials"] = sum(p.denials_by_code.values())
    metrics["entries_ignored"] = sum(r.entries_ignored for r in result.runners)
    metrics["klines_replayed"] = result.klines_processed
    if result.gaps:
        metrics["klines_missing_in_data"] = sum(result.gaps.values())
    skipped = group_skips(result)
    if skipped:
        metrics["group_times_skipped"] = sum(skipped.values())
    if result.mark_price:
        metrics["notes"] = [*(metrics.get("notes") or []), result.mark_price]  # type: ignore[misc]
    return metrics


# ------------------------------------------------------------------------------------ what ran


def strategy_lines(result: BacktestResult) -> list[str]:
    """``ema_cross 1h on FILUSDT, NEARUSDT (fast=20, slow=50)``: each strategy as it actually ran
    (its resolved timeframe and every parameter, defaults included)."""
    seen: dict[str, tuple[str, list[str], dict[str, object]]] = {}
    for r in result.runners:
        entry = seen.setdefault(r.strategy_id, (r.timeframe, [], r.strategy.params))
        entry[1].extend(r.symbols)
    lines = []
    for sid, (tf, symbols, params) in seen.items():
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"{sid} {tf} on {', '.join(symbols)}" + (f" ({shown})" if shown else ""))
    return lines


def date_warnings(result: BacktestResult) -> list[str]:
    """Where the asked-for window is wider than the data: the run was cut, and the user should know."""
    cfg, ts = result.config, result.timestamps
    if not len(ts):
        return ["no klines in the asked-for window: nothing was replayed"]
    step = min((timeframe_ms(r.timeframe) for r in result.runners), default=60_000)
    if cfg.execution_timeframe != "auto":
        step = min(step, timeframe_ms(cfg.execution_timeframe))
    first_open, data_end = int(ts[0]) + 1 - step, int(ts[-1]) + 1
    out = []
    if cfg.start is not None and cfg.start < first_open:
        out.append(f"start {format_time_ms(cfg.start)} is before the data: the run starts at its first kline, "
                   f"{format_time_ms(first_open)} UTC")  # fmt: skip
    if cfg.end is not None and cfg.end > data_end:
        out.append(f"end {format_time_ms(cfg.end)} is after the data: the run ends with its last kline, "
                   f"{format_time_ms(data_end)} UTC")  # fmt: skip
    return out


def open_position_lines(result: BacktestResult) -> list[str]:
    """Positions still open at the end, marked at the last close (their PnL is not in the trade figures)."""
    p = result.portfolio
    end = int(result.timestamps[-1]) if len(result.timestamps) else 0
    lines = []
    for t in p.open_trades(end):
        side = getattr(t.side, "value", t.side)
        lines.append(f"{t.symbol} {side} {t.quantity} @ {t.entry_price:f} since {format_time_ms(t.entry_time)}, "
                     f"last {t.exit_price:f}, unrealized {float(t.gross_pnl):+,.2f} "
                     f"(net of fees and funding so far {float(t.net_pnl):+,.2f})")  # fmt: skip
    return lines


def denial_line(result: BacktestResult) -> str:
    by_code = result.portfolio.denials_by_code
    if not by_code:
        return "Risk denials: none"
    ranked = sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"Risk denials: {sum(by_code.values())} (" + ", ".join(f"{c} {n}" for c, n in ranked) + ")"


# ------------------------------------------------------------------------------------ the files


def price_charts(result: BacktestResult) -> list[PriceChart]:
    """One candle chart per runner: its strategy's klines and indicators from the backtest's start."""
    charts = []
    start = result.config.start
    for r in result.runners:
        s = r.strategy
        times = r.history_open_time
        if not len(times):
            continue
        first = 0 if start is None else int(np.searchsorted(times, start, side="left"))
        indicators = {series.name: engine_array(series)[first:] for series in s._indicators}
        for sym, d in s.data.items():  # a multi-symbol strategy: a chart per leg, its indicators on the first
            charts.append(PriceChart(
                symbol=sym, timeframe=r.timeframe, strategy_id=r.strategy_id, open_time=times[first:],
                open=engine_array(d.open)[first:], high=engine_array(d.high)[first:], low=engine_array(d.low)[first:],
                close=engine_array(d.close)[first:],
                indicators=indicators if sym == r.symbol else {},
            ))  # fmt: skip
    return charts


def group_skips(result: BacktestResult) -> dict[str, int]:
    """Per multi-symbol strategy (``id on A+B``): kline times skipped because some symbol had no kline of that
    time (no ``on_kline``, no row in its history; see :mod:`kinetic_empire.strategy.group`). Only non-zero."""
    return {f"{r.strategy_id} on {'+'.join(r.symbols)}": r.skipped for r in result.runners
            if isinstance(r, GroupRunner) and r.skipped}


def group_skip_line(result: BacktestResult) -> str:
    """One line for the summary and the report, or "" when no multi-symbol strategy skipped a time."""
    skipped = group_skips(result)
    if not skipped:
        return ""
    shown = ", ".join(f"{k} {v}" for k, v in skipped.items())
    return (f"Kline times skipped by multi-symbol strategies, some symbol had no kline: {sum(skipped.values())} "
            f"({shown})")


def _rules(symbols: list[str]) -> dict[str, SymbolRules]:
    every = default_symbol_rules(full=True)
    return {s: every[s] for s in symbols if s in every}


def report_warnings(result: BacktestResult) -> list[str]:
    out = date_warnings(result)
    opened = open_position_lines(result)
    if opened:
        out.append("Still open at the end (marked at the last close; not in the trade figures): " + "; ".join(opened))
    ignored = sum(r.entries_ignored for r in result.runners)
    if ignored:
        out.append(f"{ignored} entries in the direction already held were ignored (Strategy.add_to_position "
                   "is off)")  # fmt: skip
    skips = group_skip_line(result)
    if skips:
        out.append(skips)
    return out


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
        closes=result.closes,
        price_charts=price_charts(result),
        warnings=report_warnings(result),
        rules=_rules(result.config.symbols),
    )


def summary_text(result: BacktestResult) -> str:
    """What ran, the metrics, what was still open at the end, denials by code, ignored entries, and kline times
    a multi-symbol strategy skipped."""
    ran = strategy_lines(result)
    lines = ["Strategies: " + ran[0], *(" " * 12 + line for line in ran[1:])] if ran else ["Strategies: none"]
    lines.append(format_summary(metrics_of(result)))
    opened = open_position_lines(result)
    if opened:
        lines.append("Open at the end (marked at the last close; not counted in Trades):")
        lines += [f"  {line}" for line in opened]
    lines.append(denial_line(result))
    ignored = sum(r.entries_ignored for r in result.runners)
    if ignored:
        by: dict[str, int] = defaultdict(int)
        for r in result.runners:
            by[r.strategy_id] += r.entries_ignored
        shown = ", ".join(f"{k} {v}" for k, v in by.items() if v)
        lines.append(f"Entries ignored, position already held in that direction: {ignored} ({shown}; "
                     "set add_to_position = True in the strategy to scale in)")  # fmt: skip
    skips = group_skip_line(result)
    if skips:
        lines.append(skips)
    return "\n".join(lines)
