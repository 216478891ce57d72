"""The research composition root: one loaded dataset, one executor, a study (or one per walk-forward
window), and the figures the results writer needs. Nothing in the core knows it is being optimised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ..backtest import BacktestConfig
from ..core.clock import LiveClock
from ..strategy.registry import build_registry
from .executors import Executor
from .progress import StudyProgress
from .settings import OptimizeSettings
from .space import SearchSpace
from .study import StudyPlan, StudyRunner, best_trials, check_target, finished_count, open_study, trial_params
from .trial import Dataset, TrialOutcome, TrialTask
from .walkforward import WalkForwardResult, WindowResult, align_of, make_windows, stitch


@dataclass(slots=True)
class OptimizeResult:
    plan: StudyPlan
    config: BacktestConfig
    studies: list[optuna.Study]
    best: list[FrozenTrial]  # of the (last window's) study; several when multi-objective
    best_params: dict[str, Any] | None
    walk_forward: WalkForwardResult | None = None
    elapsed_s: float = 0.0
    trials_run: int = 0
    replay_s: float = 0.0
    trial_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def prepare(config: BacktestConfig, settings: OptimizeSettings, narrowing: Mapping[str, Any],
            strategy_paths: tuple[str, ...], directory: Path = Path()) -> StudyPlan:  # fmt: skip
    """Check everything a study needs (strategy, space, objectives) before any data is loaded."""
    registry = build_registry([Path(p) for p in strategy_paths])
    target = check_target(settings, [s.name for s in config.strategies], config.source)
    strategy = config.strategies[target]
    cls = registry.get(strategy.name)
    cls.resolve_params(strategy.params, where=f"{strategy.path}.params")
    space = SearchSpace.build(cls, strategy.params, {**settings.space, **narrowing},
                              where="--space" if narrowing else "optimize.space")  # fmt: skip
    return StudyPlan(settings, space, target, directory)


class Optimizer:
    """Runs a study, or a walk-forward of studies, on ``executor`` with ``dataset``."""

    def __init__(self, plan: StudyPlan, dataset: Dataset, executor: Executor, name: str,
                 progress: StudyProgress | None = None) -> None:  # fmt: skip
        self.plan = plan
        self.dataset = dataset
        self.executor = executor
        self.name = name
        self.progress = progress or StudyProgress(plan.settings.objectives, disabled=True)
        self.runner = StudyRunner(plan, executor, on_outcome=self.progress.update)

    def run(self) -> OptimizeResult:
        began = LiveClock.monotonic()
        try:
            if self.plan.settings.walk_forward is None:
                result = self._plain()
            else:
                result = self._walk_forward()
        finally:
            self.progress.close()
        result.elapsed_s = LiveClock.monotonic() - began
        result.trials_run = self.progress.finished
        result.replay_s = self.progress.replay_s
        result.trial_s = self.progress.trial_s
        return result

    def _plain(self) -> OptimizeResult:
        s = self.plan.settings
        study = open_study(self.plan, self.name)
        self.progress.begin("optimize", s.trials, min(s.trials, finished_count(study)))
        self.runner.run(study, s.trials)
        best = best_trials(study, s.objectives)
        params = trial_params(best[0]) if best else None
        return OptimizeResult(self.plan, self.dataset.config, [study], best, params)

    def _walk_forward(self) -> OptimizeResult:
        s = self.plan.settings
        assert s.walk_forward is not None
        config = self.dataset.config
        start, end = _data_span(self.dataset)
        tfs = [st.timeframe or "1m" for st in config.strategies] + [f.timeframe for f in self.dataset.frames.values()]
        windows = make_windows(start, end, s.walk_forward, align_of(tfs))
        results: list[WindowResult] = []
        oos_runs: dict[int, TrialOutcome] = {}
        studies, best, notes = [], [], []
        for w in windows:
            study = open_study(self.plan, f"{self.name}-wf{w.index}-{w.is_start}-{w.is_end}")
            studies.append(study)
            self.progress.begin(f"window {w.index}/{len(windows)} in-sample", s.trials,
                                min(s.trials, finished_count(study)))  # fmt: skip
            self.runner.run(study, s.trials, start=w.is_start, end=w.is_end)
            best = best_trials(study, s.objectives)
            if not best:
                notes.append(f"window {w.index}: no feasible in-sample trial; out-of-sample skipped")
                continue
            params = trial_params(best[0])
            task = TrialTask(number=-w.index, params=params, target=self.plan.target, objectives=s.objectives,
                             constraints=s.constraints, start=w.oos_start, end=w.oos_end, keep_curve=True)  # fmt: skip
            oos = next(iter(self.executor.run([task])))
            if oos.error is not None:
                notes.append(f"window {w.index}: out-of-sample run failed: {oos.error}")
                continue
            oos_runs[w.index] = oos
            results.append(WindowResult(w, params, dict(best[0].user_attrs.get("metrics", {})), oos.metrics,
                                        list(best[0].values), oos.values))  # fmt: skip
        wf = stitch(results, oos_runs, float(config.initial_balance))
        last = results[-1].params if results else None
        out = OptimizeResult(self.plan, config, studies, best, last, wf)
        out.notes = notes
        return out


def _data_span(dataset: Dataset) -> tuple[int, int]:
    """The config's period, or the data's where the config leaves it open."""
    c = dataset.config
    firsts = [int(f.open_time[0]) for f in dataset.frames.values() if len(f)]
    lasts = [int(f.close_time[-1]) + 1 for f in dataset.frames.values() if len(f)]
    start = c.start if c.start is not None else min(firsts)
    end = c.end if c.end is not None else max(lasts)
    return start, min(end, max(lasts))
