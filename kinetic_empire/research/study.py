"""The study loop: ask Optuna for a batch of parameter sets, run them on an executor, tell the results.

Determinism comes from the loop's shape, not from the executor: a batch of ``batch`` trials is asked
with a sampler seeded by ``seed + trials so far``, every trial of the batch is told before the next is
asked, and pruning thresholds are fixed when a batch is sent. So the same seed and batch give the same
trials and values whether they run inline, on a local pool of any size or on a Dask cluster, and a study
interrupted between batches resumes exactly where it would have gone.

The study lives in SQLite (``study.db`` next to the results) and each finished trial is stored the
moment it comes back, so an interrupted study keeps everything it finished; trials that were running are
marked failed ("interrupted") when it is opened again. A study file made for another strategy or other
objectives is refused.
"""

from __future__ import annotations

import sqlite3
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..core.errors import ConfigError, KineticError
from .executors import Executor
from .objectives import Objective
from .settings import OptimizeSettings
from .space import SearchSpace
from .trial import TrialOutcome, TrialTask

STUDY_FILE = "study.db"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class StudyMismatch(KineticError):
    """The study file belongs to another strategy or other objectives."""


@dataclass(frozen=True, slots=True)
class StudyPlan:
    """What one study searches: the space of the target strategy (index ``target`` in the config)."""

    settings: OptimizeSettings
    space: SearchSpace
    target: int
    directory: Path

    @property
    def storage_url(self) -> str:
        return f"sqlite:///{(self.directory / STUDY_FILE).resolve()}"


def open_study(plan: StudyPlan, name: str) -> optuna.Study:
    """Create or resume study ``name`` in the plan's SQLite file; refuse one made for something else."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan.directory.mkdir(parents=True, exist_ok=True)
    path = plan.directory / STUDY_FILE
    if path.exists():
        _check_file(plan, path)
    storage = optuna.storages.RDBStorage(plan.storage_url, engine_kwargs={"creator": _connector(path)})
    directions = [optuna.study.StudyDirection[d.upper()] for d in plan.settings.directions]
    study = optuna.create_study(storage=storage, study_name=name, directions=directions,
                                load_if_exists=True)  # fmt: skip
    if not study.user_attrs:
        study.set_user_attr("strategy", plan.space.strategy)
        study.set_user_attr("objectives", [o.name for o in plan.settings.objectives])
        study.set_user_attr("space", plan.space.to_dict())
    return study


def _connector(path: Path) -> Callable[[], sqlite3.Connection]:
    """SQLite in WAL mode without an fsync per commit: a finished trial still survives the process being
    killed (only a power cut could lose the last ones)."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return connect


def finished_count(study: optuna.Study) -> int:
    """Trials that ran to an end (complete, pruned, failed); trials cut off by an interruption do not count."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED)
               if t.user_attrs.get("error") != "interrupted")  # fmt: skip


def _check_file(plan: StudyPlan, path: Path) -> None:
    try:
        summaries = optuna.get_all_study_summaries(f"sqlite:///{path.resolve()}", include_best_trial=False)
    except Exception as exc:  # not SQLite, or not Optuna's schema
        raise StudyMismatch(f"{path}: not an Optuna study database ({type(exc).__name__}); "
                            "use another --results-dir/--name or remove it") from None  # fmt: skip
    objectives = [o.name for o in plan.settings.objectives]
    for s in summaries:
        strategy = s.user_attrs.get("strategy")
        if strategy != plan.space.strategy:
            raise StudyMismatch(f"{path}: study {s.study_name!r} optimises strategy {strategy!r}, not "
                                f"{plan.space.strategy!r}; use another --name or --results-dir")  # fmt: skip
        if s.user_attrs.get("objectives") != objectives:
            raise StudyMismatch(f"{path}: study {s.study_name!r} optimises {s.user_attrs.get('objectives')}, "
                                f"not {objectives}; use another --name or --results-dir")  # fmt: skip


# Optuna 5 reads constraints set on the trial; older versions take a function reading them back.
_SET_CONSTRAINT = hasattr(optuna.Trial, "set_constraint")


def make_sampler(settings: OptimizeSettings, seed: int, n_constraints: int) -> optuna.samplers.BaseSampler:
    constraints = _constraints_of if n_constraints and not _SET_CONSTRAINT else None
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    kind = settings.sampler_name
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(settings.batch, 8),
                                             constraints_func=constraints)  # fmt: skip
    startup = max(4, min(10, settings.trials // 5))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                      constant_liar=True, constraints_func=constraints)  # fmt: skip


def _constraints_of(trial: FrozenTrial) -> Sequence[float]:
    return list(trial.user_attrs.get("violations", []))


class StudyRunner:
    """Runs one study (or one walk-forward window's study) on an executor, batch by batch."""

    def __init__(self, plan: StudyPlan, executor: Executor,
                 on_outcome: Callable[[TrialOutcome, optuna.Study], None] | None = None) -> None:  # fmt: skip
        self.plan = plan
        self.executor = executor
        self.on_outcome = on_outcome
        self.first_error: str | None = None

    def run(self, stored: optuna.Study, trials: int, *, start: int | None = None, end: int | None = None) -> None:
        """Top ``stored`` up to ``trials`` finished trials (on the window ``start``..``end`` if given).

        The sampler works on an in-memory copy of the study (SQLite costs several transactions per ask
        and tell); each finished trial is copied to ``stored`` in trial order as soon as it and the ones
        before it are done, so the file always holds exactly the finished trials, numbered as in memory.
        """
        s = self.plan.settings
        study = optuna.create_study(directions=stored.directions)
        study.add_trials(stored.get_trials(deepcopy=False))
        while True:
            done = finished_count(study)
            if done >= trials:
                return
            seed = s.seed + len(study.get_trials(deepcopy=False))
            study.sampler = make_sampler(s, seed, len(s.constraints))
            asked = [study.ask() for _ in range(min(s.batch, trials - done))]
            thresholds = self._thresholds(study)
            tasks = [self._task(t, thresholds, start, end) for t in asked]
            by_number = {t.number: t for t in asked}
            failures = 0
            told: dict[int, FrozenTrial] = {}
            next_number = asked[0].number
            try:
                for outcome in self.executor.run(tasks):
                    failures += outcome.error is not None
                    told[outcome.number] = self._tell(study, by_number[outcome.number], outcome)
                    while next_number in told:
                        stored.add_trial(told.pop(next_number))
                        next_number += 1
                    if self.on_outcome is not None:
                        self.on_outcome(outcome, study)
            finally:  # interrupted: keep every finished trial, even after a gap left by an unfinished one
                for number in sorted(told):
                    stored.add_trial(told[number])
            if failures == len(tasks) and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                raise KineticError(f"every trial failed; the first: {self.first_error}")

    def _task(self, trial: optuna.Trial, thresholds: dict[int, float], start: int | None,
              end: int | None) -> TrialTask:  # fmt: skip
        s = self.plan.settings
        return TrialTask(
            number=trial.number,
            params=self.plan.space.suggest(trial),
            target=self.plan.target,
            objectives=s.objectives,
            constraints=s.constraints,
            start=start,
            end=end,
            track=self._pruning,
            prune_below=thresholds,
        )

    @property
    def _pruning(self) -> bool:
        s = self.plan.settings
        return s.pruning.enabled and len(s.objectives) == 1  # Optuna prunes single-objective studies only

    def _thresholds(self, study: optuna.Study) -> dict[int, float]:
        """Median return of the finished trials at each checkpoint (after the start-up trials)."""
        if not self._pruning:
            return {}
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.plan.settings.pruning.startup_trials:
            return {}
        steps: dict[int, list[float]] = {}
        for t in complete:
            for step, value in t.intermediate_values.items():
                steps.setdefault(step, []).append(value)
        return {step: statistics.median(values) for step, values in steps.items() if len(values) >= 2}

    def _tell(self, study: optuna.Study, trial: optuna.Trial, out: TrialOutcome) -> FrozenTrial:
        for step, value in out.intermediate:
            trial.report(value, step)
        if out.error is not None:
            self.first_error = self.first_error or out.error
            trial.set_user_attr("error", out.error[:500])
            return study.tell(trial, state=TrialState.FAIL)
        trial.set_user_attr("params", out.params)  # fixed ones too: the trial's whole parameter set
        constraints = self.plan.settings.constraints
        violations = [0.0] * len(constraints) if out.pruned else out.violations
        trial.set_user_attr("violations", violations)
        if _SET_CONSTRAINT:
            for i, (c, v) in enumerate(zip(constraints, violations)):
                trial.set_constraint(f"{i}:{c.describe()}", v)
        if out.pruned:
            return study.tell(trial, state=TrialState.PRUNED)
        trial.set_user_attr("metrics", {k: v for k, v in out.metrics.items() if k != "notes"})
        undefined = [o.name for o, v in zip(self.plan.settings.objectives, out.values) if v is None]
        if undefined:
            notes = "; ".join(n for n in out.metrics.get("notes", []) if any(u in n for u in undefined))
            trial.set_user_attr("error", f"undefined {', '.join(undefined)}" + (f" ({notes})" if notes else ""))
            return study.tell(trial, state=TrialState.FAIL)
        return study.tell(trial, [float(v) for v in out.values if v is not None])


def best_trials(study: optuna.Study, objectives: Sequence[Objective]) -> list[FrozenTrial]:
    """The best feasible trial (one objective) or the feasible Pareto front (several), by trial number."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)]
    if not complete:
        return []
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in objectives]
    scored = [(t, [sgn * v for sgn, v in zip(signs, t.values)]) for t in complete]
    if len(objectives) == 1:
        return [max(scored, key=lambda ts: (ts[1][0], -ts[0].number))[0]]
    front = [t for t, v in scored
             if not any(all(a >= b for a, b in zip(w, v)) and w != v for _, w in scored)]  # fmt: skip
    return sorted(front, key=lambda t: t.number)


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.user_attrs.get("violations", []))


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """A trial's whole parameter set (fixed ones included)."""
    return dict(trial.user_attrs.get("params") or trial.params)


def check_target(settings: OptimizeSettings, names: Sequence[str], source: str | None) -> int:
    """Index of the strategy to tune in the config's strategies list."""
    if settings.strategy is None:
        if len(names) != 1:
            raise ConfigError("optimize.strategy", f"the config has {len(names)} strategies ({', '.join(names)}); "
                              "name the one to tune here or with --strategy", source)  # fmt: skip
        return 0
    if settings.strategy not in names:
        raise ConfigError("optimize.strategy", f"{settings.strategy!r} is not in the config's strategies "
                          f"({', '.join(names)})", source)  # fmt: skip
    return list(names).index(settings.strategy)
