"""The ``optimize:`` section of a study file: a backtest config plus what to search and how.

    optimize:
      strategy: ema_cross          # which configured strategy to tune (default: the only one)
      objectives: [sharpe]         # one: TPE; several: NSGA-II (Pareto front)
      constraints: {min_trades: 10, max_drawdown_pct: 25}
      trials: 60                   # finished trials the study should hold (a resumed study tops up)
      batch: 4                     # trials asked of Optuna at once; with the seed, fixes every result
      seed: 42
      sampler: auto                # auto | tpe | nsga2 | random
      pruning: {enabled: true, startup_trials: 8}
      space: {fast: {min: 5, max: 40}, slow: {min: 20, max: 200, step: 5}}
      walk_forward: {mode: rolling, windows: 3, out_of_sample: 0.25}
      results_dir: backtests/optimize

Everything else in the file is an ordinary backtest config (``kinetic backtest`` reads it unchanged once
the ``optimize`` section is removed), so a study and a backtest run the same strategies on the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import load_yaml
from ..core.errors import ConfigError
from ..core.schema import Key, boolean, choice, integer, mapping, nested, reading, real, section, text
from .objectives import Constraint, Objective, parse_constraints, parse_objective

SAMPLERS = ("auto", "tpe", "nsga2", "random")
WF_MODES = ("rolling", "anchored")


@dataclass(frozen=True, slots=True)
class WalkForward:
    """``windows`` in-sample/out-of-sample pairs; each OOS span is ``out_of_sample`` x its IS span."""

    mode: str = "rolling"
    windows: int = 3
    out_of_sample: float = 0.25


@dataclass(frozen=True, slots=True)
class Pruning:
    """Stop a trial early when its return at a checkpoint is below the median of finished trials there."""

    enabled: bool = True
    startup_trials: int = 8


def _objectives(value: Any, path: str) -> tuple[Objective, ...]:
    items = [value] if isinstance(value, str | Mapping) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(path, "expected a metric name or a non-empty list of them")
    objectives = tuple(parse_objective(v, f"{path}[{i}]") for i, v in enumerate(items))
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ConfigError(path, f"an objective is listed twice: {', '.join(names)}")
    return objectives


def _walk_forward(value: Any, path: str) -> WalkForward | None:
    if value is None or value is False:
        return None
    keys = {
        "mode": Key(choice(WF_MODES)),
        "windows": Key(integer(ge=1)),
        "out_of_sample": Key(real(gt=0)),
    }
    wf = WalkForward(**section({} if value is True else value, path, keys))
    if wf.out_of_sample > 4:
        raise ConfigError(f"{path}.out_of_sample", "expected the OOS share of the IS span, e.g. 0.25")
    return wf


_PRUNING = {"enabled": Key(boolean), "startup_trials": Key(integer(ge=1))}
_OPTIMIZE = {
    "strategy": Key(text),
    "objectives": Key(_objectives),
    "constraints": Key(parse_constraints),
    "trials": Key(integer(ge=1)),
    "batch": Key(integer(ge=1, le=1024)),
    "seed": Key(integer(ge=0)),
    "sampler": Key(choice(SAMPLERS)),
    "pruning": Key(nested(_PRUNING)),
    "space": Key(mapping),
    "walk_forward": Key(_walk_forward),
    "results_dir": Key(text),
}


@dataclass(frozen=True, slots=True)
class OptimizeSettings:
    strategy: str | None = None
    objectives: tuple[Objective, ...] = (Objective("sharpe"),)
    constraints: tuple[Constraint, ...] = ()
    trials: int = 50
    batch: int = 4
    seed: int = 42
    sampler: str = "auto"
    pruning: Pruning = field(default_factory=Pruning)
    space: Mapping[str, Any] = field(default_factory=dict)
    walk_forward: WalkForward | None = None
    results_dir: str = "backtests/optimize"

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def sampler_name(self) -> str:
        if self.sampler != "auto":
            return self.sampler
        return "nsga2" if len(self.objectives) > 1 else "tpe"

    @classmethod
    def from_mapping(cls, data: Any, source: str | None = None) -> OptimizeSettings:
        with reading(source):
            values = section(data, "optimize", _OPTIMIZE)
            if "pruning" in values:
                values["pruning"] = Pruning(**values["pruning"])
            return cls(**values)


def split_study_file(path: str) -> tuple[dict[str, Any], Any]:
    """A study file's backtest part and its ``optimize`` section (absent: defaults)."""
    data = load_yaml(path)
    if not isinstance(data, Mapping):
        raise ConfigError("<file>", "expected a mapping with backtest, strategies, risk and optimize", path)
    backtest = {k: v for k, v in data.items() if k != "optimize"}
    return backtest, data.get("optimize")


def with_overrides(
    settings: OptimizeSettings,
    *,
    strategy: str | None = None,
    objectives: list[str] | None = None,
    min_trades: int | None = None,
    trials: int | None = None,
    batch: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
    no_pruning: bool = False,
    walk_forward: str | None = None,
    windows: int | None = None,
    out_of_sample: float | None = None,
) -> OptimizeSettings:
    """Command-line options over the YAML ``optimize`` section; each checked like its YAML key."""
    values: dict[str, Any] = {}
    if strategy is not None:
        values["strategy"] = strategy
    if objectives:
        values["objectives"] = _objectives(list(objectives), "--objective")
    if min_trades is not None:
        others = tuple(c for c in settings.constraints if c.metric != "trade_count")
        values["constraints"] = (*others, *parse_constraints({"min_trades": min_trades}, "--min-trades"))
    for key, value, check in (("trials", trials, integer(ge=1)), ("batch", batch, integer(ge=1, le=1024)),
                              ("seed", seed, integer(ge=0))):  # fmt: skip
        if value is not None:
            values[key] = check(value, f"--{key}")
    if sampler is not None:
        values["sampler"] = sampler
    if no_pruning:
        values["pruning"] = Pruning(enabled=False, startup_trials=settings.pruning.startup_trials)
    if walk_forward is not None or windows is not None or out_of_sample is not None:
        base = settings.walk_forward or WalkForward()
        spec = {"mode": walk_forward or base.mode, "windows": base.windows if windows is None else windows,
                "out_of_sample": base.out_of_sample if out_of_sample is None else out_of_sample}  # fmt: skip
        values["walk_forward"] = _walk_forward(spec, "--walk-forward")
    return replace(settings, **values)
