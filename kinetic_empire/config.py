"""Strict configuration parsing shared by every command: YAML in, typed values out.

An unknown key, a wrong type or an impossible value is a :class:`ConfigError` naming the dotted path
of the key (``backtest.start``, ``strategies[0].params.fast``), so a typo never silently falls back to
a default. API keys are refused wherever they appear: secrets come from the environment or ``.env``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .core.errors import ConfigError
from .core.timeframes import TIMEFRAME_MS

_SECRET_KEYS = {"api_key", "api_secret", "key", "secret", "apikey", "apisecret"}


def strict_mapping(data: Any, path: str, allowed: set[str], source: str | None) -> Mapping[str, Any]:
    """``data`` as a mapping whose keys are all in ``allowed`` (None is an empty mapping)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a mapping, got {type(data).__name__}", source)
    for key in map(str, data):
        if key.lower() in _SECRET_KEYS:
            raise ConfigError(
                f"{path}.{key}",
                "API keys are never read from YAML; set KINETIC_BINANCE_API_KEY and KINETIC_BINANCE_API_SECRET "
                "in the environment or a .env file",
                source,
            )
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}", source)
    return data


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable files and syntax errors name the file, line and column."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read config: {exc.strerror}", str(p)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise ConfigError(where, f"invalid YAML: {getattr(exc, 'problem', exc)}", str(p)) from None


def parse_time(value: Any, path: str, source: str | None = None) -> int:
    """A UTC date or datetime (YAML date, ISO string or epoch ms) → epoch ms."""
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a date, got {value!r}", source)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(path, f"not a date: {value!r} (use YYYY-MM-DD or an ISO datetime)", source) from None
        return parse_time(dt, path, source)
    raise ConfigError(path, f"expected a date, got {type(value).__name__}", source)


def parse_decimal(value: Any, path: str, source: str | None, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(path, f"expected a number, got {value!r}", source)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(path, f"expected a number, got {value!r}", source) from None
    if not number.is_finite():
        raise ConfigError(path, f"expected a finite number, got {value!r}", source)
    if minimum is not None and number < minimum:
        raise ConfigError(path, f"must be >= {minimum}, got {value!r}", source)
    return number


def parse_timeframe(value: Any, path: str, source: str | None) -> str:
    if value not in TIMEFRAME_MS:
        raise ConfigError(path, f"unknown timeframe {value!r}; one of {', '.join(TIMEFRAME_MS)}", source)
    return str(value)


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    name: str
    symbols: tuple[str, ...]
    timeframe: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    path: str = "strategies[0]"  # where it came from, for error messages

    @property
    def strategy_id(self) -> str:
        return self.name


def parse_strategy(item: Any, path: str, source: str | None) -> StrategyConfig:
    m = strict_mapping(item, path, {"name", "symbols", "timeframe", "params"}, source)
    name = m.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}.name", "expected the strategy's name", source)
    symbols = m.get("symbols")
    if isinstance(symbols, str):
        symbols = [symbols]
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise ConfigError(f"{path}.symbols", "expected a non-empty list of symbols", source)
    timeframe = m.get("timeframe")
    if timeframe is not None:
        timeframe = parse_timeframe(timeframe, f"{path}.timeframe", source)
    params = m.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}.params", "expected a mapping of parameter names to values", source)
    return StrategyConfig(name, tuple(s.upper() for s in symbols), timeframe, dict(params), path)


def check_one_strategy_per_symbol(strategies: tuple[StrategyConfig, ...], source: str | None) -> None:
    """One-way mode keeps one net position per symbol, so two strategies on one symbol would fight."""
    owner: dict[str, str] = {}
    for s in strategies:
        for sym in s.symbols:
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
