"""Strict configuration parsing shared by every command: YAML in, typed values out.

An unknown key, a wrong type or an impossible value is a :class:`ConfigError` naming the dotted path
of the key (``backtest.start``, ``strategies[0].params.fast``), so a typo never silently falls back to
a default. API keys are refused wherever they appear: secrets come from the environment or ``.env``.

Sections are declared with :mod:`kinetic_empire.core.schema` (the one strict reader every config uses);
this module adds the YAML file and the parts the backtest and live configs share (strategies, risk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from .core.errors import ConfigError
from .core.schema import Key, decimal, nullable, section, text, timeframe


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable files and syntax errors name the file, line and column."""
    p = Path(path)
    try:
        content = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read config: {exc.strerror}", str(p)) from None
    try:
        return yaml.load(content, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise ConfigError(where, f"invalid YAML: {getattr(exc, 'problem', exc)}", str(p)) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: the mapping constructor reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {first.line + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    name: str
    symbols: tuple[str, ...]
    timeframe: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    path: str = "strategies[0]"  # where it came from, for error messages
    group_wait_s: float | None = None  # multi_symbol only: overrides Strategy.group_wait_s (see strategy/group.py)

    @property
    def strategy_id(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """The entry as written in a config file (what results folders and journals keep)."""
        out: dict[str, Any] = {"name": self.name, "symbols": list(self.symbols), "timeframe": self.timeframe,
               "params": dict(self.params)}
        if self.group_wait_s is not None:
            out["group_wait_s"] = self.group_wait_s
        return out


def _symbols(value: Any, path: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s for s in items):
        raise ConfigError(path, "expected a non-empty list of symbols")
    return tuple(s.upper() for s in items)


def _params(value: Any, path: str) -> dict[str, Any]:
    """Names and values only: each strategy's Params check them once the strategy class is known."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, "expected a mapping of parameter names to values")
    return dict(value)


def _wait_seconds(value: Any, path: str) -> float:
    """Seconds (a finite number >= 0): a multi-symbol strategy's bounded wait for its other symbols' klines."""
    return float(decimal(ge=0)(value, path))


STRATEGY_KEYS = {
    "name": Key(text, required=True),
    "symbols": Key(_symbols, required=True),
    "timeframe": Key(nullable(timeframe)),
    "params": Key(_params),
    "group_wait_s": Key(nullable(_wait_seconds)),
}


def strategy_list(value: Any, path: str) -> tuple[StrategyConfig, ...]:
    """The ``strategies`` section: a non-empty list, one strategy per symbol."""
    if not isinstance(value, list) or not value:
        raise ConfigError(path, "expected a non-empty list of strategies")
    strategies = tuple(
        StrategyConfig(**section(item, f"{path}[{i}]", STRATEGY_KEYS), path=f"{path}[{i}]")
        for i, item in enumerate(value)
    )
    check_one_strategy_per_symbol(strategies)
    return strategies


def risk_section(value: Any, path: str) -> Mapping[str, Any]:
    """The ``risk`` section is read by the risk layer (it needs exchange data too); here only its shape."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(path, "expected a mapping")
    return value


def check_one_strategy_per_symbol(strategies: tuple[StrategyConfig, ...], source: str | None = None) -> None:
    """One-way mode keeps one net position per symbol, so two strategies on one symbol would fight."""
    owner: dict[str, str] = {}
    for s in strategies:
        for sym in s.symbols:
            if owner.get(sym) == s.path:
                raise ConfigError(f"{s.path}.symbols", f"{sym} is listed twice", source)
            if sym in owner:
                raise ConfigError(
                    f"{s.path}.symbols",
                    f"{sym} is already traded by {owner[sym]}; one-way mode allows one strategy per symbol",
                    source,
                )
            owner[sym] = s.path


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    return value
