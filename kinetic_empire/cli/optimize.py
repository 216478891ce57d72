"""``kinetic optimize``: options at module level (argparse only); Optuna, Dask and the backtest load in ``run``."""

from __future__ import annotations

import argparse
import os

from .options import add_strategy_path

DEFAULT_CONFIG = "config/optimize.example.yaml"

DESCRIPTION = """\
Search a strategy's parameters with Optuna: TPE for one objective, NSGA-II for several. The search
space comes from the strategy's Params and can be narrowed in the config's optimize section or with
--space. Each trial is exactly `kinetic backtest` with those parameters, run on data loaded once per
worker, on a local process pool or a Dask cluster; the same seed gives the same study on either. The
study is kept in SQLite next to its results (backtests/optimize/<name>/): run the same command again to
resume or extend it. Results: trials.csv, best.yaml (a ready backtest config), summary.json, report.html."""

EXAMPLES = """\
  kinetic optimize --trials 100 --workers 2           # the example study, topped up to 100 trials
  kinetic optimize --space fast=5:40 --space slow=30:200:10 --objective sortino --min-trades 20 --name s2
  kinetic optimize --config config/optimize.walkforward.yaml   # walk-forward: IS/OOS windows, stitched OOS
  kinetic optimize --executor dask --address tcp://127.0.0.1:8786   # on a Dask cluster (see the README)"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"backtest config with an optimize section (default {DEFAULT_CONFIG})"
    )
    p.add_argument(
        "--strategy", help="which of the config's strategies to tune (default: optimize.strategy, or the only one)"
    )
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="narrow the search: NAME=MIN:MAX[:STEP], NAME=A,B,C or NAME=VALUE (fixed); repeatable",
    )
    p.add_argument(
        "--objective",
        action="append",
        default=[],
        metavar="METRIC",
        help="sharpe, sortino, calmar, total_return, profit_factor, max_drawdown, any metric, or "
        "module:function; NAME=minimize to flip; repeat for several (replaces the config's)",
    )
    p.add_argument("--min-trades", type=int, metavar="N", help="constraint: at least N trades")
    p.add_argument("--trials", type=int, help="finished trials the study should hold (default: optimize.trials)")
    p.add_argument("--batch", type=int, help="trials asked at once; with --seed it fixes the results")
    p.add_argument("--seed", type=int, help="sampler seed (default: optimize.seed)")
    p.add_argument(
        "--sampler", choices=("auto", "tpe", "nsga2", "random"), help="default auto: TPE, NSGA-II if several objectives"
    )
    p.add_argument("--no-pruning", action="store_true", help="never stop a trial early")
    p.add_argument("--walk-forward", choices=("rolling", "anchored"), help="optimise in-sample, test out-of-sample")
    p.add_argument("--windows", type=int, help="walk-forward windows (default 3)")
    p.add_argument(
        "--oos", type=float, metavar="RATIO", help="out-of-sample span as a share of in-sample (default 0.25)"
    )
    p.add_argument("--start", help="UTC start date, inclusive (YYYY-MM-DD)")
    p.add_argument("--end", help="UTC end date, exclusive (YYYY-MM-DD)")
    p.add_argument("--data", action="append", help="kline files or folders (replaces backtest.data)")
    p.add_argument(
        "--executor", choices=("local", "dask"), default="local", help="local process pool (default) or dask"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="local worker processes (default: CPUs, at most 4)",
    )
    p.add_argument("--address", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--name", help="study name: letters, digits, . _ - + (default: <strategy>-<config file>)")
    p.add_argument("--results-dir", help="where study folders go (default: optimize.results_dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_strategy_path(p)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from ..backtest import BacktestConfig
    from ..core.names import safe_name
    from ..research import (
        Dataset,
        Optimizer,
        OptimizeSettings,
        StudyProgress,
        format_summary,
        make_executor,
        prepare,
        write_outputs,
    )
    from ..research.settings import split_study_file, with_overrides
    from ..research.space import parse_cli_space

    backtest_part, optimize_part = split_study_file(args.config)
    config = BacktestConfig.from_mapping(backtest_part, args.config).with_overrides(
        start=args.start, end=args.end, data=args.data
    )
    settings = with_overrides(
        OptimizeSettings.from_mapping(optimize_part, args.config),
        strategy=args.strategy,
        objectives=args.objective,
        min_trades=args.min_trades,
        trials=args.trials,
        batch=args.batch,
        seed=args.seed,
        sampler=args.sampler,
        no_pruning=args.no_pruning,
        walk_forward=args.walk_forward,
        windows=args.windows,
        out_of_sample=args.oos,
    )
    paths = tuple(args.strategy_path)
    plan = prepare(config, settings, parse_cli_space(args.space), paths)  # every check before any data loads
    name = args.name or f"{plan.space.strategy}-{Path(args.config).stem}"
    safe_name(name, "study name", "--name")
    plan = replace(plan, directory=Path(args.results_dir or settings.results_dir) / name)
    executor = make_executor(args.executor, args.workers, args.address)
    executor.connect()  # an unreachable cluster fails here, in seconds, before the data loads
    try:
        dataset = Dataset.load(config, paths)
        progress = StudyProgress(settings.objectives, disabled=args.no_progress)
        executor.start(dataset)
        result = Optimizer(plan, dataset, executor, name, progress).run()
    finally:
        executor.close()
    written = write_outputs(result, plan.directory, name, backtest_part)
    print(format_summary(result, name, written))
    return 0
