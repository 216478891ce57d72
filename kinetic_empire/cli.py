"""The ``kinetic`` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .core.clock import LiveClock
from .core.errors import KineticError
from .logs import setup_logging

log = logging.getLogger("kinetic_empire.cli")

DEFAULT_BACKTEST_CONFIG = "config/backtest.example.yaml"

_EPILOG = """\
Start here:
  kinetic backtest                      backtest the example config on the bundled real klines
  kinetic strategies                    list strategy plugins, their parameters and docs
  kinetic sandbox --data backtests/data run the local Binance USD-M exchange on its own

Every command has its own --help.
"""


def _add_strategy_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strategy-path",
        action="append",
        default=[],
        metavar="DIR",
        help="extra folder of strategy files (repeatable); strategies/ is always searched",
    )


def _params(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KineticError(f"--param {item!r}: expected NAME=VALUE, e.g. --param fast=12")
        out[key.strip()] = value.strip()
    return out


# ------------------------------------------------------------------------------------------ backtest


def _backtest_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay historical klines through strategies, risk manager and the simulated exchange",
        description=(
            "Backtest strategies on historical klines. The run uses the same bus, strategy runner, "
            "risk manager and futures exchange model as live trading; market orders fill at the next "
            "kline's open. Results go to backtests/results/<run-id>/ (trades, orders, equity, metrics, "
            "chart, HTML report)."
        ),
        epilog=(
            "examples:\n"
            "  kinetic backtest\n"
            "  kinetic backtest --strategy rsi_reversion --symbols NEARUSDT --timeframe 15m\n"
            "  kinetic backtest --config my.yaml --start 2023-09-01 --param fast=12 --param slow=40\n"
            "  kinetic backtest --check-lookahead"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=DEFAULT_BACKTEST_CONFIG, help=f"YAML config (default {DEFAULT_BACKTEST_CONFIG})")
    p.add_argument("--strategy", help="strategy name or package.module:Class (replaces the config's)")
    p.add_argument("--symbols", help="comma-separated symbols, e.g. FILUSDT,NEARUSDT")
    p.add_argument("--timeframe", help="strategy timeframe override, e.g. 15m, 1h")
    p.add_argument("--start", help="UTC start date, inclusive (YYYY-MM-DD)")
    p.add_argument("--end", help="UTC end date, exclusive (YYYY-MM-DD)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter")
    p.add_argument("--data", action="append", help="kline files or folders (replaces backtest.data)")
    p.add_argument("--run-id", help="results folder name (default: time-strategy-confighash)")
    p.add_argument("--results-dir", help="where results folders go (default: backtest.results_dir)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing results folder of that run id")
    p.add_argument("--check-lookahead", action="store_true", help="fail if an indicator uses future klines")
    p.add_argument("--no-save", action="store_true", help="print the summary only, write no files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_strategy_path(p)
    p.set_defaults(func=_cmd_backtest)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from .backtest import Backtest, BacktestConfig, run_id_for, save_results, summary_text
    from .strategy.registry import build_registry

    config = BacktestConfig.load(args.config).with_overrides(
        strategy=args.strategy,
        symbols=[s.strip() for s in args.symbols.split(",") if s.strip()] if args.symbols else None,
        timeframe=args.timeframe,
        start=args.start,
        end=args.end,
        params=_params(args.param),
        data=args.data,
    )
    registry = build_registry([Path(p) for p in args.strategy_path])
    bar = _progress_bar(disabled=args.no_progress)
    try:
        result = Backtest(config, registry, check_lookahead=args.check_lookahead).run(progress=bar.update)
    finally:
        bar.close()
    print(summary_text(result))
    rate = f"{result.klines_processed:,} klines in {result.elapsed_s:.2f} s ({result.klines_per_second:,.0f}/s)"
    print(rate)
    if result.gaps:
        print("gaps in the data (kept by gap_policy): " + ", ".join(f"{s} {n} klines" for s, n in result.gaps.items()))
    if args.no_save:
        return 0
    run_id = args.run_id or run_id_for(config, LiveClock().now_ms())
    root = Path(args.results_dir or config.results_dir)
    path = save_results(result, root, run_id, overwrite=args.overwrite)
    print(f"results: {path}/  (open {path / 'report.html'})")
    return 0


class _progress_bar:
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


# ---------------------------------------------------------------------------------------- strategies


def _strategies_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "strategies",
        help="list strategy plugins with their parameters and documentation",
        description=(
            "Strategies come from Python files in strategies/ (and --strategy-path folders), from installed "
            "packages exposing entry points in the group 'kinetic_empire.strategies', and from explicit "
            "package.module:Class references."
        ),
    )
    _add_strategy_path(p)
    p.set_defaults(func=_cmd_strategies)


def _cmd_strategies(args: argparse.Namespace) -> int:
    from .strategy.registry import build_registry

    registry = build_registry([Path(p) for p in args.strategy_path])
    for info in registry.plugins():
        cls = info.cls
        doc = " ".join((cls.__doc__ or "").split())
        print(f"{info.name}  (timeframe {cls.timeframe}, API v{cls.api_version})")
        print(f"  source: {info.source}")
        if doc:
            print(f"  {doc}")
        for name, param in cls.parameters().items():
            bounds = []
            if param.min is not None:
                bounds.append(f"min {param.min}")
            if param.max is not None:
                bounds.append(f"max {param.max}")
            extra = f" [{', '.join(bounds)}]" if bounds else ""
            setting = f"{name}={param.default!r}"
            print(f"    --param {setting:<22} {param.type.__name__:<6} {param.doc}{extra}")
        print()
    return 0


# ------------------------------------------------------------------------------------------- sandbox


_PLUGGED: list[tuple[str, str, str, str, str]] = [
    # (command, module, add-arguments function, main function, help)
    (
        "sandbox", "kinetic_empire.sandbox.cli", "add_arguments", "main",
        "run the local Binance USD-M futures exchange (REST + WebSocket) on replayed klines",
    ),
    (
        "download", "kinetic_empire.download.cli", "add_download_arguments", "download_main",
        "download klines, mark-price klines and funding rates from Binance into the local store",
    ),
    ("data", "kinetic_empire.download.cli", "add_data_arguments", "data_main", "list or import stored klines"),
    (
        "run", "kinetic_empire.live.cli", "add_run_arguments", "run_main",
        "paper-trade strategies live: on the local sandbox (default) or the Binance demo",
    ),
    ("doctor", "kinetic_empire.live.cli", "add_doctor_arguments", "doctor_main", "preflight checks against a venue"),
    (
        "report", "kinetic_empire.live.cli", "add_report_arguments", "report_main",
        "render the report of a live or paper run from its journal",
    ),
    (
        "compare", "kinetic_empire.live.cli", "add_compare_arguments", "compare_main",
        "line up a paper run's trades with a backtest's and explain each difference",
    ),
]  # fmt: skip


def _plugged_parser(command: str, module: str, add: str, main: str, help_text: str) -> Callable[..., None]:
    """Sub-commands whose arguments live with their package (imported only when present)."""

    def register(sub: argparse._SubParsersAction) -> None:
        try:
            mod = importlib.import_module(module)
            add_arguments, run = getattr(mod, add), getattr(mod, main)
        except (ImportError, AttributeError):
            return  # that part of the product is not installed in this build
        doc = (mod.__doc__ or help_text).strip()
        p = sub.add_parser(
            command, help=help_text, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        add_arguments(p)
        p.set_defaults(func=lambda args: int(run(args) or 0))

    return register


# ---------------------------------------------------------------------------------------------- main

_PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [
    _backtest_parser,
    _strategies_parser,
    *(_plugged_parser(*spec) for spec in _PLUGGED),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kinetic",
        description="Kinetic Empire: backtesting and paper trading for Binance USD-M perpetual futures.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--log-file", help="also write structured JSON logs to this file")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _PARSERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose, args.log_file)
    try:
        return int(args.func(args) or 0)
    except KineticError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head/less that closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
