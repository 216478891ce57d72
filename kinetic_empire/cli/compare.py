"""``kinetic compare``: options at module level (argparse only), the comparison imported in ``run``."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Line up the trades of a paper run with those of a backtest of the same strategies and klines, trade
by trade, and explain each difference: a later entry (the feed was late), another price, another exit,
another size, or a trade on one side only (a risk denial, a venue rejection, a halted strategy, a feed
gap, the edge of the run's window). A mismatch between the two configurations (strategies, symbols,
timeframes, parameters, risk, fees) is warned about first. Trades still open at the end of the paper
run are counted apart. Exit code 0 when both agree or differ only harmlessly (fills later by under five
minutes, the prices then, sizes within 1 %, trades at the window's edge), 3 when a difference is
material (a trade on one side only, another exit reason, a size off by more than 1 %...).

For a like-for-like pair, config/backtest.sandbox.yaml backtests exactly what config/live.sandbox.yaml
paper-trades (same strategies, timeframes, parameters, risk, fees; fills on 1m klines)."""

EXAMPLES = """\
  kinetic run --duration 60 --run-id paper && kinetic backtest --config config/backtest.sandbox.yaml --run-id bt
  kinetic compare paper bt
  kinetic compare my-run backtests/results/my-backtest
  kinetic compare my-run my-backtest --results-dir backtests/results --tolerance-pct 0.1"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", help="live run id (folder under --runs-dir) or a run folder")
    p.add_argument("backtest", help="backtest results folder, or its id under --results-dir")
    p.add_argument("--runs-dir", default="runs", help="where run folders are (default runs/)")
    p.add_argument("--results-dir", default="backtests/results", help="where backtest results are")
    p.add_argument("--tolerance-pct", type=float, default=0.05, help="price difference still called equal, in %%")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import KineticError
    from ..live.compare import main

    if not 0 <= args.tolerance_pct <= 100:  # a negative tolerance would call every price different
        raise KineticError(f"--tolerance-pct {args.tolerance_pct}: must be between 0 and 100")

    return main(args.run_id, args.backtest, runs_dir=args.runs_dir, results_dir=args.results_dir,
                tolerance_pct=args.tolerance_pct)
