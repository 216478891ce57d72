"""The live-run configuration: YAML in, typed and validated dataclasses out, strict like the backtest's.

    live:
      venue: sandbox              # sandbox | binance-demo | binance-testnet | custom
      rest_url: null              # custom venue, or to override a preset's URL
      ws_url: null                # stream host (routes /market and /private are added)
      runs_dir: runs              # runs/<run-id>/ holds journal.sqlite, kinetic.log and the report
      window: 500                 # klines kept per strategy; indicators are recomputed over them
      price_timeframe: 1m         # klines also followed on every symbol, for equity and risk (null: none)
      stale_after_s: null         # feed silent this long -> entries paused (REDUCING); null: automatic
      shutdown: leave             # leave: protective orders stay on the exchange | flatten: cancel all, close all
      margin_type: CROSSED        # set on every traded symbol at start-up
      recv_window_ms: 5000
      request_timeout_s: 10
      preflight: true             # run the doctor's checks before trading
      stream_check_timeout_s: 15
    sandbox:                      # venue: sandbox only; the local exchange runs in-process
      data: backtests/data
      start: 2023-08-05           # market time where trading starts; earlier klines are history
      speed: 600                  # market time runs this many times faster than wall time
      updates_per_kline: 4
      initial_balance: 10000
      fees: {maker: 0.0002, taker: 0.0005}
      funding_rate: 0.0001
    strategies: [...]             # as in a backtest config
    risk: {...}                   # as in a backtest config

API keys never come from this file: see :mod:`kinetic_empire.binance.signing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..binance.venues import CUSTOM, SANDBOX, VENUES, Venue, preset, refuse_production
from ..config import (
    StrategyConfig,
    check_one_strategy_per_symbol,
    jsonable,
    load_yaml,
    parse_strategy,
    parse_time,
    strict_mapping,
)
from ..core.errors import ConfigError
from ..core.timeframes import TIMEFRAME_MS

SHUTDOWN_POLICIES = ("leave", "flatten")


def _num(value: Any, path: str, source: str | None, *, lo: float | None = 0.0, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"expected a number, got {value!r}", source)
    if integer and not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {value!r}", source)
    if lo is not None and value <= lo:
        raise ConfigError(path, f"must be > {lo}, got {value!r}", source)
    return value


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    data: tuple[str, ...] = ("backtests/data",)
    start: int | None = None
    speed: float | None = 600.0  # None: stepped by the caller (tests)
    updates_per_kline: int = 4
    initial_balance: Decimal = Decimal("10000")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    funding_rate: Decimal = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class LiveConfig:
    strategies: tuple[StrategyConfig, ...]
    venue: str = SANDBOX
    rest_url: str | None = None
    ws_url: str | None = None
    runs_dir: str = "runs"
    window: int = 500
    price_timeframe: str | None = "1m"
    stale_after_s: float | None = None
    shutdown: str = "leave"
    margin_type: str = "CROSSED"
    recv_window_ms: int = 5000
    request_timeout_s: float = 10.0
    preflight: bool = True
    stream_check_timeout_s: float = 15.0
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    risk: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def symbols(self) -> list[str]:
        return list(dict.fromkeys(sym for s in self.strategies for sym in s.symbols))

    def stale_threshold_s(self) -> float | None:
        """Seconds of market-data silence that pause entries: configured, or three klines of the replay
        speed on the sandbox (none when stepped), or 90 s on Binance (a 1m stream sends at least its close)."""
        if self.stale_after_s is not None:
            return self.stale_after_s
        if self.venue == SANDBOX:
            speed = self.sandbox.speed
            return None if not speed or speed == float("inf") else 5.0 + 3 * 60.0 / speed
        return 90.0

    def resolve_venue(self) -> Venue | None:
        """The venue's URLs, or None for the in-process sandbox (its URLs exist once it runs)."""
        if self.venue == SANDBOX and not self.rest_url:
            return None
        if self.venue in (SANDBOX, CUSTOM):
            if not self.rest_url or not self.ws_url:
                raise ConfigError("live.rest_url", f"venue {self.venue} with URLs needs both rest_url and ws_url",
                                  self.source)
            return Venue(self.venue, self.rest_url, self.ws_url)
        base = preset(self.venue)
        return Venue(base.name, self.rest_url or base.rest_url, self.ws_url or base.ws_url)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe echo for the journal and the report (no secrets: there are none in it)."""
        sb = self.sandbox
        return {
            "live": {"venue": self.venue, "rest_url": self.rest_url, "ws_url": self.ws_url, "window": self.window,
                     "price_timeframe": self.price_timeframe,
                     "stale_after_s": self.stale_after_s, "shutdown": self.shutdown, "margin_type": self.margin_type},
            "sandbox": {"data": list(sb.data), "start": sb.start, "speed": sb.speed,
                        "updates_per_kline": sb.updates_per_kline, "initial_balance": str(sb.initial_balance),
                        "fees": {"maker": str(sb.maker_fee), "taker": str(sb.taker_fee)},
                        "funding_rate": str(sb.funding_rate)},
            "strategies": [{"name": s.name, "symbols": list(s.symbols), "timeframe": s.timeframe,
                            "params": dict(s.params)} for s in self.strategies],
            "risk": jsonable(self.risk),
        }

    # ------------------------------------------------------------------------------- parsing
    @classmethod
    def from_mapping(cls, data: Any, source: str | None = None) -> LiveConfig:
        top = strict_mapping(data, "<root>", {"live", "sandbox", "strategies", "risk"}, source)
        lv = strict_mapping(top.get("live"), "live", {
            "venue", "rest_url", "ws_url", "runs_dir", "window", "price_timeframe", "stale_after_s", "shutdown",
            "margin_type", "recv_window_ms", "request_timeout_s", "preflight", "stream_check_timeout_s"}, source)
        venue = str(lv.get("venue", SANDBOX))
        if venue not in VENUES:
            raise ConfigError("live.venue", f"{venue!r} is not one of {', '.join(VENUES)}", source)
        for key in ("rest_url", "ws_url"):
            if lv.get(key) is not None:
                if not isinstance(lv[key], str):
                    raise ConfigError(f"live.{key}", "expected a URL", source)
                refuse_production(lv[key], key)
        shutdown = str(lv.get("shutdown", "leave"))
        if shutdown not in SHUTDOWN_POLICIES:
            raise ConfigError("live.shutdown", f"{shutdown!r} is not one of {', '.join(SHUTDOWN_POLICIES)}", source)
        margin = str(lv.get("margin_type", "CROSSED")).upper()
        if margin not in ("CROSSED", "ISOLATED"):
            raise ConfigError("live.margin_type", f"{margin!r} is not CROSSED or ISOLATED", source)
        stale = lv.get("stale_after_s")
        raw_strategies = top.get("strategies")
        if not isinstance(raw_strategies, list) or not raw_strategies:
            raise ConfigError("strategies", "expected a non-empty list of strategies", source)
        strategies = tuple(parse_strategy(item, f"strategies[{i}]", source) for i, item in enumerate(raw_strategies))
        check_one_strategy_per_symbol(strategies, source)
        risk = top.get("risk") or {}
        if not isinstance(risk, Mapping):
            raise ConfigError("risk", "expected a mapping", source)
        return cls(
            strategies=strategies,
            venue=venue,
            rest_url=lv.get("rest_url"),
            ws_url=lv.get("ws_url"),
            runs_dir=str(lv.get("runs_dir", "runs")),
            window=_num(lv.get("window", 500), "live.window", source, lo=1, integer=True),
            price_timeframe=_price_tf(lv.get("price_timeframe", "1m"), source),
            stale_after_s=None if stale is None else float(_num(stale, "live.stale_after_s", source)),
            shutdown=shutdown,
            margin_type=margin,
            recv_window_ms=_num(lv.get("recv_window_ms", 5000), "live.recv_window_ms", source, integer=True),
            request_timeout_s=float(_num(lv.get("request_timeout_s", 10), "live.request_timeout_s", source)),
            preflight=bool(lv.get("preflight", True)),
            stream_check_timeout_s=float(_num(lv.get("stream_check_timeout_s", 15), "live.stream_check_timeout_s",
                                              source)),
            sandbox=_sandbox(top.get("sandbox"), source),
            risk=risk,
            source=source,
        )

    @classmethod
    def load(cls, path: str | Path) -> LiveConfig:
        return cls.from_mapping(load_yaml(path), str(path))

    def with_overrides(
        self,
        *,
        venue: str | None = None,
        rest_url: str | None = None,
        ws_url: str | None = None,
        speed: float | None = None,
        shutdown: str | None = None,
        runs_dir: str | None = None,
        preflight: bool | None = None,
    ) -> LiveConfig:
        """Command-line overrides, checked like the YAML values."""
        cfg = self
        if venue is not None:
            if venue not in VENUES:
                raise ConfigError("--venue", f"{venue!r} is not one of {', '.join(VENUES)}")
            if venue != self.venue:
                cfg = replace(cfg, venue=venue, rest_url=None, ws_url=None)
        if rest_url is not None:
            refuse_production(rest_url, "rest_url")
            cfg = replace(cfg, rest_url=rest_url)
        if ws_url is not None:
            refuse_production(ws_url, "ws_url")
            cfg = replace(cfg, ws_url=ws_url)
        if shutdown is not None:
            if shutdown not in SHUTDOWN_POLICIES:
                raise ConfigError("--shutdown", f"{shutdown!r} is not one of {', '.join(SHUTDOWN_POLICIES)}")
            cfg = replace(cfg, shutdown=shutdown)
        if speed is not None:
            cfg = replace(cfg, sandbox=replace(cfg.sandbox, speed=speed if speed > 0 else None))
        if runs_dir is not None:
            cfg = replace(cfg, runs_dir=runs_dir)
        if preflight is not None:
            cfg = replace(cfg, preflight=preflight)
        return cfg


def _price_tf(value: Any, source: str | None) -> str | None:
    if value is None:
        return None
    if value not in TIMEFRAME_MS:
        raise ConfigError("live.price_timeframe", f"unknown timeframe {value!r}; one of {', '.join(TIMEFRAME_MS)}",
                          source)
    return str(value)


def _sandbox(data: Any, source: str | None) -> SandboxSettings:
    sb = strict_mapping(data, "sandbox", {"data", "start", "speed", "updates_per_kline", "initial_balance", "fees",
                                    "funding_rate"}, source)
    raw = sb.get("data", "backtests/data")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(d, str) for d in raw):
        raise ConfigError("sandbox.data", "expected a path or a list of paths", source)
    fees = strict_mapping(sb.get("fees"), "sandbox.fees", {"maker", "taker"}, source)
    speed = sb.get("speed", 600)
    return SandboxSettings(
        data=tuple(raw),
        start=parse_time(sb["start"], "sandbox.start", source) if sb.get("start") is not None else None,
        speed=None if speed in (None, 0) else float(_num(speed, "sandbox.speed", source)),
        updates_per_kline=_num(sb.get("updates_per_kline", 4), "sandbox.updates_per_kline", source, integer=True),
        initial_balance=Decimal(str(_num(sb.get("initial_balance", 10000), "sandbox.initial_balance", source))),
        maker_fee=Decimal(str(_num(fees.get("maker", 0.0002), "sandbox.fees.maker", source, lo=None))),
        taker_fee=Decimal(str(_num(fees.get("taker", 0.0005), "sandbox.fees.taker", source, lo=None))),
        funding_rate=Decimal(str(_num(sb.get("funding_rate", 0.0001), "sandbox.funding_rate", source, lo=None))),
    )
