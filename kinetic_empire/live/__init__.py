"""Live (paper) trading: the composition root, its config, journal, preflight, status view and reports.

``kinetic run`` builds a :class:`LiveEngine` (the same bus, strategy runners, risk manager and portfolio as
a backtest, with the Binance adapter for klines and execution) on the local sandbox, Binance Demo Trading
or the futures testnet. :mod:`.cli` holds the command-line entry points.
"""

from .app import LiveEngine, PreflightError
from .compare import compare_runs, format_comparison
from .config import LiveConfig
from .doctor import Check, Doctor
from .journal import Journal, read_events, read_meta
from .report import build_report

__all__ = [
    "Check",
    "Doctor",
    "Journal",
    "LiveConfig",
    "LiveEngine",
    "PreflightError",
    "build_report",
    "compare_runs",
    "format_comparison",
    "read_events",
    "read_meta",
]
