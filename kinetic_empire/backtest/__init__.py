"""Backtests: replay historical klines through the same bus, strategies, risk manager and exchange model."""

from .config import BacktestConfig, StrategyConfig
from .engine import Backtest, BacktestResult, run_id_for

__all__ = ["Backtest", "BacktestConfig", "BacktestResult", "StrategyConfig", "run_id_for"]
from .results import metrics_of, save_results, summary_text

__all__ += ["metrics_of", "save_results", "summary_text"]
