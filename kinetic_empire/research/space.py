"""The search space of a study: which strategy parameters vary, and over what.

It starts from the strategy's own ``Param`` declarations (type, min, max, step, choices) and can be
narrowed in the YAML ``optimize.space`` section or with ``--space NAME=SPEC`` on the command line:

    fast: {min: 5, max: 30, step: 1}      # a range (step optional; ints step by 1)
    long_only: {choices: [true, false]}   # a set of values
    period: 14                            # fixed at one value, not searched

``--space fast=5:30[:1]``, ``--space long_only=true,false`` and ``--space period=14`` say the same.
Without any narrowing, every parameter whose range the strategy fully declares (min and max, choices, or a
bool) is searched. A range outside the Param's bounds, an inverted or empty range and an unknown name
are errors naming the parameter and where it was given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import ConfigError
from ..strategy.base import Param, Strategy

_RANGE_KEYS = {"min", "max", "step", "log", "choices"}


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searched parameter: a numeric range (``low``..``high`` by ``step``) or a set of ``choices``."""

    name: str
    kind: str  # "int" | "float" | "categorical"
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this parameter's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), step=int(self.step or 1),
                                     log=self.log)  # fmt: skip
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), step=self.step,
                                   log=self.log)  # fmt: skip

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"{self.name} in {list(self.choices)}"
        step = f" step {self.step}" if self.step else ""
        return f"{self.name} {self.low}..{self.high}{step}{' (log)' if self.log else ''}"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"min": self.low, "max": self.high}
        if self.step:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """The searched dimensions of one strategy, plus the parameters held fixed (config values or defaults)."""

    strategy: str
    dimensions: tuple[Dimension, ...]
    fixed: Mapping[str, Any]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The full parameter set of one trial: fixed values plus one suggestion per dimension."""
        return {**self.fixed, **{d.name: d.suggest(trial) for d in self.dimensions}}

    def to_dict(self) -> dict[str, Any]:
        return {d.name: d.to_dict() for d in self.dimensions} | {k: v for k, v in self.fixed.items()}

    @classmethod
    def build(
        cls,
        strategy: type[Strategy],
        configured: Mapping[str, Any],
        narrowing: Mapping[str, Any],
        where: str = "optimize.space",
    ) -> SearchSpace:
        """The space of ``strategy`` given its configured params and the user's ``narrowing``
        (YAML values or command-line text, keyed by parameter name)."""
        declared = strategy.parameters()
        name = strategy.strategy_name()
        for key in narrowing:
            if key not in declared:
                has = ", ".join(declared) or "none"
                raise ConfigError(f"{where}.{key}", f"strategy {name!r} has no parameter {key!r}; it has: {has}")
        dims: list[Dimension] = []
        fixed: dict[str, Any] = {}
        for pname, param in declared.items():
            if pname in narrowing:
                spec = narrowing[pname]
                dim = _dimension(param, spec, f"{where}.{pname}")
            elif narrowing:
                dim = None  # the user chose what to search: the rest keep their configured values
            else:
                dim = _declared_dimension(param)
            if dim is None:
                value = narrowing.get(pname, configured.get(pname, param.default))
                fixed[pname] = param.coerce(value, f"{where}.{pname}")
            else:
                dims.append(dim)
        if not dims:
            hint = ("every parameter given is fixed at one value" if narrowing else
                    f"no parameter of {name!r} declares both min and max, choices, or is a bool")  # fmt: skip
            raise ConfigError(where, f"the search space is empty: {hint}; give ranges, e.g. --space NAME=MIN:MAX")
        return cls(name, tuple(dims), fixed)


def parse_cli_space(items: list[str]) -> dict[str, Any]:
    """``--space NAME=MIN:MAX[:STEP]`` / ``NAME=A,B,C`` / ``NAME=VALUE`` into the YAML form (values as text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"--space {item}", "expected NAME=MIN:MAX[:STEP], NAME=A,B,C or NAME=VALUE")
        if ":" in value:
            parts = value.split(":")
            if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
                raise ConfigError(f"--space {item}", "a range is MIN:MAX or MIN:MAX:STEP")
            spec: dict[str, Any] = {"min": parts[0], "max": parts[1]}
            if len(parts) == 3:
                spec["step"] = parts[2]
            out[key] = spec
        elif "," in value:
            out[key] = {"choices": [v.strip() for v in value.split(",") if v.strip()]}
        else:
            out[key] = value
        out[key] = out[key]
    return out


def _declared_dimension(param: Param) -> Dimension | None:
    if param.choices is not None:
        return Dimension(param.name, "categorical", choices=tuple(param.choices))
    if param.type is bool:
        return Dimension(param.name, "categorical", choices=(False, True))
    if param.type in (int, float) and param.min is not None and param.max is not None:
        return _numeric(param, param.min, param.max, getattr(param, "step", None), False, f"<{param.name}>")
    return None


def _dimension(param: Param, spec: Any, where: str) -> Dimension | None:
    """A user's narrowing of one parameter; None when it fixes the parameter at one value."""
    if not isinstance(spec, Mapping):
        param.coerce(spec, where)
        return None
    unknown = sorted(set(spec) - _RANGE_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(_RANGE_KEYS))}")
    if "choices" in spec:
        if set(spec) - {"choices"}:
            raise ConfigError(where, "give either choices or min/max/step, not both")
        raw = spec["choices"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f"{where}.choices", "the search space is empty: expected a non-empty list of values")
        values = tuple(dict.fromkeys(param.coerce(v, f"{where}.choices") for v in raw))
        return Dimension(param.name, "categorical", choices=values)
    if param.type not in (int, float):
        raise ConfigError(where, f"{param.name} is a {param.type.__name__}: give choices, not a range")
    low = param.coerce(spec["min"], f"{where}.min") if "min" in spec else param.min
    high = param.coerce(spec["max"], f"{where}.max") if "max" in spec else param.max
    if low is None or high is None:
        missing = "min" if low is None else "max"
        raise ConfigError(f"{where}.{missing}", f"required: the strategy declares no {missing} for {param.name}")
    step = _step(param, spec.get("step", getattr(param, "step", None)), f"{where}.step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log", f"expected true or false, got {log!r}")
    return _numeric(param, low, high, step, log, where)


def _step(param: Param, value: Any, where: str) -> float | int | None:
    if value is None:
        return None
    try:
        step = param.type(value) if not isinstance(value, str) else param.type(value.strip())
    except ValueError:
        raise ConfigError(where, f"expected a {param.type.__name__}, got {value!r}") from None
    if not step > 0:
        raise ConfigError(where, f"must be above 0, got {value!r}")
    return step


def _numeric(param: Param, low: Any, high: Any, step: Any, log: bool, where: str) -> Dimension:
    if low > high:
        raise ConfigError(where, f"inverted range: min {low} is above max {high}")
    if low == high:
        raise ConfigError(where, f"empty range: min = max = {low}; give the value alone to fix the parameter")
    if log and (low <= 0 or step):
        raise ConfigError(where, "a log range needs min > 0 and no step")
    kind = "int" if param.type is int else "float"
    if kind == "float" and step:  # Optuna wants max on the grid: round it down to the last step
        count = math.floor((high - low) / step + 1e-9)
        if count < 1:
            raise ConfigError(where, f"empty range: step {step} is wider than {low}..{high}")
        high = round(low + count * step, 12)
    if kind == "int" and step and (high - low) < step:
        raise ConfigError(where, f"empty range: step {step} is wider than {low}..{high}")
    return Dimension(param.name, kind, low, high, step, log)
