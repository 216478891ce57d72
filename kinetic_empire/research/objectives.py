"""What a study optimises and what a trial must satisfy.

An objective is a metric of the backtest report (``sharpe``, ``sortino``, ``calmar``, ``total_return``,
``profit_factor``, ``max_drawdown``, or any numeric key of ``metrics.json``) or a user function given as
``module:function``, called as ``function(metrics, result) -> float`` with the report's metrics dict and
the :class:`~kinetic_empire.backtest.BacktestResult`. Constraints bound metrics (``min_trades: 20``,
``max_drawdown_pct: 25``, ``win_rate_pct: {min: 40}``); a trial that breaks one stays in the study as
infeasible and is never "best".
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..core.errors import ConfigError

ALIASES = {
    "total_return": "total_return_pct",
    "max_drawdown": "max_drawdown_pct",
    "cagr": "cagr_pct",
    "win_rate": "win_rate_pct",
    "trades": "trade_count",
    "exposure": "exposure_pct",
}
# Lower is better for these; every other metric (drawdown is negative) is maximised by default.
_MINIMISED = {"fees", "liquidations", "max_drawdown_duration_ms", "risk_denials"}
DIRECTIONS = ("maximize", "minimize")


@cache
def metric_names() -> tuple[str, ...]:
    """Every numeric metric a backtest report has (taken from the report itself, so it stays current)."""
    from ..report import compute_metrics

    empty = np.array([], dtype=np.int64)
    sample = compute_metrics(empty, empty.astype(float), [], 1.0, 0, 0, 0, 0.0)
    names = [k for k, v in sample.items() if k not in ("notes",) and not isinstance(v, str)]
    return (*names, "open_positions_at_end", "risk_denials", "klines_replayed")


@dataclass(frozen=True, slots=True)
class Objective:
    """One value to optimise: a report metric, or ``function`` (``module:function``)."""

    name: str
    direction: str = "maximize"
    function: str | None = None

    def value(self, metrics: Mapping[str, Any], result: Any) -> float | None:
        """The objective for one finished backtest; None when undefined (e.g. a Sharpe with no trades)."""
        if self.function is None:
            raw = metrics.get(self.name)
        else:
            raw = load_function(self.function)(metrics, result)
        if raw is None:
            return None
        value = float(raw)
        return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Constraint:
    """``low <= metric <= high``; ``violation`` is how far outside (<= 0 when met), as Optuna expects."""

    metric: str
    low: float | None = None
    high: float | None = None
    absolute: bool = False  # compare |value| (drawdowns are negative percentages)

    def violation(self, metrics: Mapping[str, Any]) -> float:
        raw = metrics.get(self.metric)
        if raw is None:
            return 1.0  # undefined (e.g. no trades): not met
        value = abs(float(raw)) if self.absolute else float(raw)
        worst = -math.inf
        if self.low is not None:
            worst = max(worst, self.low - value)
        if self.high is not None:
            worst = max(worst, value - self.high)
        return float(worst) if worst != -math.inf else 0.0

    def describe(self) -> str:
        name = f"|{self.metric}|" if self.absolute else self.metric
        if self.low is not None and self.high is not None:
            return f"{self.low} <= {name} <= {self.high}"
        return f"{name} >= {self.low}" if self.low is not None else f"{name} <= {self.high}"


def parse_objective(value: Any, where: str) -> Objective:
    """``sharpe`` | ``fees=minimize`` | ``pkg.mod:func`` | ``{metric|function: ..., direction: ...}``."""
    direction: Any = None
    if isinstance(value, str):
        text, _, direction = value.partition("=")
        spec: dict[str, Any] = {"function" if ":" in text else "metric": text.strip()}
        direction = direction.strip() or None
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - {"metric", "function", "direction"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "unknown key; allowed: direction, function, metric")
        spec = {k: value[k] for k in ("metric", "function") if k in value}
        direction = value.get("direction")
        if len(spec) != 1:
            raise ConfigError(where, "give exactly one of metric or function")
    else:
        raise ConfigError(where, f"expected a metric name or module:function, got {value!r}")
    if direction is not None and direction not in DIRECTIONS:
        raise ConfigError(where, f"direction must be maximize or minimize, got {direction!r}")
    if "function" in spec:
        ref = str(spec["function"])
        try:
            load_function(ref)
        except ConfigError as exc:
            raise ConfigError(where, str(exc)) from None
        return Objective(ref.rpartition(":")[2], direction or "maximize", ref)
    metric = ALIASES.get(str(spec["metric"]), str(spec["metric"]))
    if metric not in metric_names():
        known = ", ".join(sorted({*ALIASES, *metric_names()}))
        raise ConfigError(where, f"unknown objective {spec['metric']!r}; known metrics: {known}; "
                                 "or a function as module:function")  # fmt: skip
    return Objective(metric, direction or ("minimize" if metric in _MINIMISED else "maximize"))


def parse_constraints(value: Any, where: str) -> tuple[Constraint, ...]:
    """``{min_trades: 20, max_drawdown_pct: 25, <metric>: {min: .., max: ..}}``."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(where, "expected a mapping, e.g. {min_trades: 20, max_drawdown_pct: 25}")
    out = []
    for key, bound in value.items():
        path = f"{where}.{key}"
        if key == "min_trades":
            out.append(Constraint("trade_count", low=_number(bound, path)))
        elif key in ("max_drawdown_pct", "max_drawdown"):
            out.append(Constraint("max_drawdown_pct", high=abs(_number(bound, path)), absolute=True))
        else:
            metric = ALIASES.get(str(key), str(key))
            if metric not in metric_names():
                raise ConfigError(path, "unknown constraint; use min_trades, max_drawdown_pct or a metric name")
            if not isinstance(bound, Mapping) or not bound or set(bound) - {"min", "max"}:
                raise ConfigError(path, "expected {min: X} and/or {max: Y}")
            low = _number(bound["min"], f"{path}.min") if "min" in bound else None
            high = _number(bound["max"], f"{path}.max") if "max" in bound else None
            if low is not None and high is not None and low > high:
                raise ConfigError(path, f"inverted bounds: min {low} is above max {high}")
            out.append(Constraint(metric, low, high))
    return tuple(out)


def load_function(reference: str) -> Callable[[Mapping[str, Any], Any], float]:
    """Import ``module:function``; an error names what is missing."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError("objective", f"{reference!r}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("objective", f"{reference!r}: cannot import {module_name}: {exc}") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError("objective", f"{reference!r}: {module_name} has no function {attr}")
    return func


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(where, f"expected a number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise ConfigError(where, f"expected a number, got {value!r}") from None
