"""The research loop: parameter optimisation and walk-forward analysis above the unchanged backtest.

A composition root like the backtest's: it loads and validates one dataset, ships it to the workers of
an executor (inline, a local process pool, or a Dask cluster) once, and runs Optuna studies whose trials
are exactly ``kinetic backtest`` with the trial's parameters.
"""

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
