"""``kinetic backtest``: options at module level (argparse only), the backtest itself imported in ``run``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import KineticError, StrategyError
from ..core.names import safe_name, to_safe_name
from .options import add_strategy_path

DEFAULT_CONFIG = "config/backtest.example.yaml"

DESCRIPTION = """\
Backtest strategies on historical klines. The run uses the same bus, strategy runner, risk manager
and futures exchange model as live trading; market orders fill at the next kline's open. Results go
to backtests/results/<run-id>/: trades, orders, equity, metrics, a chart and an HTML report."""

EXAMPLES = """\
  kinetic backtest                                    # the example config on the bundled klines
  kinetic backtest --strategy rsi_reversion           # only that entry of the config (its symbols, timeframe)
  kinetic backtest --param fast=12 --param rsi_reversion.period=10   # NAME: every strategy having it; S.NAME: S
  kinetic backtest --check-lookahead --act-mask verify   # fail on a peek at future klines or a wrong act mask"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})")
    p.add_argument("--strategy", help="run only this strategy: the config's entry of that name, or else this "
                   "strategy on the config's symbols at its own timeframe (name or package.module:Class)")
    p.add_argument("--symbols", help="comma-separated symbols, e.g. FILUSDT,NEARUSDT")
    p.add_argument("--timeframe", help="strategy timeframe override, e.g. 15m, 1h")
    p.add_argument("--start", help="UTC start date, inclusive (YYYY-MM-DD)")
    p.add_argument("--end", help="UTC end date, exclusive (YYYY-MM-DD)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="[STRATEGY.]NAME=VALUE",
                   help="strategy parameter: set on every strategy that declares NAME, or on STRATEGY only")
    p.add_argument("--data", action="append", help="kline files or folders (replaces backtest.data)")
    p.add_argument("--run-id", help="results folder name: letters, digits, . _ - + (default: time-strategy-confighash)")
    p.add_argument("--results-dir", help="where results folders go (default: backtest.results_dir)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results folder of that run id")
    p.add_argument("--check-lookahead", action="store_true", help="fail if an indicator uses future klines")
    p.add_argument("--act-mask", choices=("use", "verify", "off"), default="use",
                   help="strategies' act masks: use (skip idle klines, the default), verify (call on_kline on every "
                        "kline and fail where one acts against its mask), off (ignore them)")
    p.add_argument("--no-save", action="store_true", help="print the summary only, write no files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_strategy_path(p)


def params(items: Sequence[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` items as a mapping (values are parsed by the strategy's Param types)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KineticError(f"--param {item!r}: expected NAME=VALUE, e.g. --param fast=12")
        out[key.strip()] = value.strip()
    return out


def _symbols(text: str | None) -> list[str] | None:
    """``--symbols``: None when not given; an empty or unknown symbol is an error before any work."""
    if text is None:
        return None
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise KineticError("--symbols: give at least one symbol, e.g. --symbols FILUSDT,NEARUSDT")
    import difflib

    from ..resources import default_symbol_rules

    known = default_symbol_rules(full=True)
    for sym in symbols:
        if sym not in known:
            close = difflib.get_close_matches(sym, sorted(known), n=2)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KineticError(f"--symbols: unknown symbol {sym}: not a Binance USD-M futures symbol{hint}")
    return symbols


def run(args: argparse.Namespace) -> int:
    from ..backtest import Backtest, BacktestConfig, run_id_for, save_results, summary_text
    from ..backtest.results import date_warnings
    from ..core.clock import LiveClock
    from ..strategy.registry import build_registry

    if args.run_id is not None:  # checked before the backtest runs, not when its results are saved
        safe_name(args.run_id, "run id", "--run-id")
    results_root = Path(args.results_dir) if args.results_dir else None
    if results_root is not None and results_root.exists() and not results_root.is_dir():
        raise KineticError(f"--results-dir {results_root}: is a file, not a folder")
    symbols = _symbols(args.symbols)
    registry = build_registry([Path(p) for p in args.strategy_path])
    config = BacktestConfig.load(args.config).with_overrides(
        strategy=args.strategy,
        symbols=symbols,
        timeframe=args.timeframe,
        start=args.start,
        end=args.end,
        params=params(args.param),
        data=args.data,
        declared=lambda name: list(registry.get(name).parameters()),
    )
    bar = _ProgressBar(disabled=args.no_progress)
    try:
        result = Backtest(config, registry, check_lookahead=args.check_lookahead,
                          act_mask=args.act_mask).run(progress=bar.update)
    except StrategyError as exc:
        raise KineticError(f"{exc}\n  {exc.where}") from exc
    finally:
        bar.close()
    for warning in date_warnings(result):
        print(f"warning: {warning}", file=sys.stderr)
    print(summary_text(result))
    if args.check_lookahead:
        _print_lookahead(result)
    rate = f"{result.klines_processed:,} klines in {result.elapsed_s:.2f} s ({result.klines_per_second:,.0f}/s)"
    print(rate)
    if result.gaps:
        print("gaps in the data (kept by gap_policy): " + ", ".join(f"{s} {n} klines" for s, n in result.gaps.items()))
    if args.no_save:
        return 0
    run_id = args.run_id or to_safe_name(run_id_for(config, LiveClock().now_ms()))  # references have a ':'
    root = Path(args.results_dir or config.results_dir)
    path = save_results(result, root, run_id, overwrite=args.overwrite)
    print(f"results: {path}/  (open {path / 'report.html'})")
    return 0


def _print_lookahead(result: Any) -> None:
    from ..backtest.lookahead import describe_pass

    print("lookahead check passed:")
    for line in result.lookahead_checked:  # decisions with and without the future (lookahead_decisions)
        print(f"  {line}")
    for runner in result.runners:
        print(f"  {describe_pass(runner.strategy, len(runner.history_open_time))}")


class _ProgressBar:
    """tqdm on a terminal, silent otherwise; fed (done, total) by the backtest."""

    def __init__(self, disabled: bool) -> None:
        self._bar: Any = None
        self._disabled = disabled or not sys.stderr.isatty()
        self._done = 0

    def update(self, done: int, total: int) -> None:
        if self._disabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=" klines", unit_scale=True, desc="backtest", leave=False)
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
