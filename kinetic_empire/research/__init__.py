"""The research loop: parameter optimisation and walk-forward analysis above the unchanged backtest.

A composition root like the backtest's: it loads and validates one dataset, ships it to the workers of
an executor (inline, a local process pool, or a Dask cluster) once, and runs Optuna studies whose trials
are exactly ``kinetic backtest`` with the trial's parameters.

Names load lazily: a worker process imports ``research.trial`` (the backtest) without Optuna or Dask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, typed, for checkers; at run time they load on first use
    from .executors import DaskExecutor, Executor, ExecutorError, InlineExecutor, PoolExecutor, make_executor
    from .objectives import Constraint, Objective, parse_constraints, parse_objective
    from .optimizer import Optimizer, OptimizeResult, prepare
    from .progress import StudyProgress
    from .results import format_summary, trial_rows, write_outputs
    from .settings import OptimizeSettings, Pruning, WalkForward
    from .space import Dimension, SearchSpace, parse_cli_space
    from .study import StudyMismatch, StudyPlan, StudyRunner, best_trials, open_study
    from .trial import Dataset, TrialOutcome, TrialTask, TrialWorker
    from .walkforward import Window, make_windows

_WHERE = {
    "executors": ("DaskExecutor", "Executor", "ExecutorError", "InlineExecutor", "PoolExecutor", "make_executor"),
    "objectives": ("Constraint", "Objective", "parse_constraints", "parse_objective"),
    "optimizer": ("Optimizer", "OptimizeResult", "prepare"),
    "progress": ("StudyProgress",),
    "results": ("format_summary", "trial_rows", "write_outputs"),
    "settings": ("OptimizeSettings", "Pruning", "WalkForward"),
    "space": ("Dimension", "SearchSpace", "parse_cli_space"),
    "study": ("StudyMismatch", "StudyPlan", "StudyRunner", "best_trials", "open_study"),
    "trial": ("Dataset", "TrialOutcome", "TrialTask", "TrialWorker"),
    "walkforward": ("Window", "make_windows"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "Constraint",
    "DaskExecutor",
    "Dataset",
    "Dimension",
    "Executor",
    "ExecutorError",
    "InlineExecutor",
    "Objective",
    "OptimizeResult",
    "OptimizeSettings",
    "Optimizer",
    "PoolExecutor",
    "Pruning",
    "SearchSpace",
    "StudyMismatch",
    "StudyPlan",
    "StudyProgress",
    "StudyRunner",
    "TrialOutcome",
    "TrialTask",
    "TrialWorker",
    "WalkForward",
    "Window",
    "best_trials",
    "format_summary",
    "make_executor",
    "make_windows",
    "open_study",
    "parse_cli_space",
    "parse_constraints",
    "parse_objective",
    "prepare",
    "trial_rows",
    "write_outputs",
]
