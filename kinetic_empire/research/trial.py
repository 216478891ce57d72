"""One trial, run where the data is: a backtest of the study's config with one parameter set.

A :class:`Dataset` is the base config plus its klines and funding rates, loaded and validated once (by
:meth:`Backtest.load_data`, the same code ``kinetic backtest`` loads with) and shipped to each worker
once. A :class:`TrialWorker` holds a dataset and the strategy registry and runs :class:`TrialTask`s: the
config with the trial's parameters (and a walk-forward window's dates) goes through the unchanged
:class:`Backtest`, so a trial is exactly ``kinetic backtest`` with those parameters.

Pruning happens here, inside the replay, against thresholds fixed when the task was sent (the median
return of finished trials at each checkpoint), so the outcome depends only on the task, never on what
other workers are doing at the time: the same seed gives the same study on any executor.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from ..backtest import Backtest, BacktestConfig
from ..backtest.engine import BacktestResult
from ..backtest.results import metrics_of
from ..core.clock import LiveClock
from ..core.errors import ConfigError, KineticError
from ..data import KlineFrame
from ..resources import default_brackets, default_symbol_rules
from ..strategy.registry import StrategyRegistry, build_registry
from .objectives import Constraint, Objective


@dataclass(frozen=True)
class Dataset:
    """The base config and its data, loaded once; what every worker needs to run any trial."""

    config: BacktestConfig
    frames: Mapping[str, KlineFrame]
    funding: Mapping[str, Mapping[int, Decimal]]
    strategy_paths: tuple[str, ...] = ()

    @classmethod
    def load(cls, config: BacktestConfig, strategy_paths: tuple[str, ...] = ()) -> Dataset:
        registry = build_registry([Path(p) for p in strategy_paths])
        frames, funding = Backtest(config, registry).load_data()
        return cls(config, frames, funding, strategy_paths)

    @property
    def klines(self) -> int:
        return sum(len(f) for f in self.frames.values())


@dataclass(frozen=True, slots=True)
class TrialTask:
    """What to run: the target strategy (index in the config) with ``params``, optionally on other dates."""

    number: int
    params: Mapping[str, Any]
    target: int
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    start: int | None = None
    end: int | None = None
    track: bool = False  # record the return at each checkpoint (pruning is on)
    prune_below: Mapping[int, float] = field(default_factory=dict)  # checkpoint (klines done) -> min return %
    keep_curve: bool = False


@dataclass(slots=True)
class TrialOutcome:
    """What comes back: small and picklable (no portfolio), plus the equity curve when asked for."""

    number: int
    params: dict[str, Any]
    values: list[float | None] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    violations: list[float] = field(default_factory=list)
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    pruned: bool = False
    error: str | None = None
    replay_s: float = 0.0
    total_s: float = 0.0
    curve: tuple[np.ndarray, np.ndarray] | None = None
    trade_pnls: list[float] = field(default_factory=list)

    @property
    def trade_count(self) -> int:
        return int(self.metrics.get("trade_count") or 0)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations)


class _Pruned(Exception):
    """Raised from the replay's progress callback to stop a hopeless trial."""


def trial_config(base: BacktestConfig, target: int, params: Mapping[str, Any],
                 start: int | None = None, end: int | None = None) -> BacktestConfig:  # fmt: skip
    """The base config with the target strategy's params replaced (and dates, for a window)."""
    strategies = list(base.strategies)
    s = strategies[target]
    strategies[target] = replace(s, params={**s.params, **params})
    return replace(base, strategies=tuple(strategies),
                   start=base.start if start is None else start, end=base.end if end is None else end)  # fmt: skip


class TrialWorker:
    """Runs trials on one dataset; built once per worker process (registry and data reused)."""

    def __init__(self, dataset: Dataset, registry: StrategyRegistry | None = None) -> None:
        self.dataset = dataset
        self.registry = registry or build_registry([Path(p) for p in dataset.strategy_paths])
        self.rules = default_symbol_rules(full=True)  # parsed once here, not in every trial
        self.brackets = default_brackets()
        self._frozen = False

    def backtest(self, task: TrialTask) -> Backtest:
        d = self.dataset
        config = trial_config(d.config, task.target, task.params, task.start, task.end)
        return Backtest(config, self.registry, frames=d.frames, funding=d.funding, rules=self.rules,
                        brackets=self.brackets)  # fmt: skip

    def run(self, task: TrialTask) -> TrialOutcome:
        began = LiveClock.monotonic()
        out = TrialOutcome(task.number, dict(task.params))
        if not self._frozen:  # the dataset and everything loaded so far stay: keep them out of later collections
            gc.collect()
            gc.freeze()
            self._frozen = True
        was_enabled = gc.isenabled()
        gc.disable()  # the replay then skips its full collection (ReplayFeed.run); this trial's garbage goes below
        try:
            bt = self.backtest(task)
            result = bt.run(progress=_pruner(bt, task, out) if task.track else None)
            self._score(task, result, out)
        except _Pruned:
            out.pruned = True
        except ConfigError:
            raise  # the study's own settings are wrong: stop the study, not just this trial
        except KineticError as exc:
            out.error = str(exc)
        except Exception as exc:  # user code (a strategy, an objective function): this trial fails
            out.error = f"{type(exc).__name__}: {exc}"
        finally:
            if was_enabled:
                gc.enable()
            gc.collect()  # only what this process made since the freeze: mostly this trial's object graph
        out.total_s = LiveClock.monotonic() - began
        return out

    def _score(self, task: TrialTask, result: BacktestResult, out: TrialOutcome) -> None:
        metrics = metrics_of(result)
        out.replay_s = result.elapsed_s
        out.metrics = {k: v for k, v in metrics.items() if isinstance(v, int | float | str | None) or k == "notes"}
        out.values = [o.value(metrics, result) for o in task.objectives]
        out.violations = [c.violation(metrics) for c in task.constraints]
        if task.keep_curve:
            out.curve = (np.asarray(result.timestamps), np.asarray(result.equity, dtype=np.float64))
            out.trade_pnls = [float(t.net_pnl) for t in result.portfolio.trades]


def _pruner(bt: Backtest, task: TrialTask, out: TrialOutcome) -> Any:
    initial = float(bt.config.initial_balance)

    def progress(done: int, total: int) -> None:
        if done >= total or bt.portfolio is None:  # the last checkpoint is the result itself
            return
        value = (float(bt.portfolio.equity()) / initial - 1.0) * 100.0
        out.intermediate.append((done, value))
        threshold = task.prune_below.get(done)
        if threshold is not None and value < threshold:
            raise _Pruned

    return progress
