"""The live-run configuration: YAML in, typed and validated dataclasses out, strict like the backtest's.

    live:
      venue: sandbox              # sandbox | binance-demo | binance-testnet | custom
      rest_url: null              # custom venue, or to override a preset's URL
      ws_url: null                # stream host (routes /market and /private are added)
      runs_dir: runs              # runs/<run-id>/ holds journal.sqlite, kinetic.log and the report
      window: 500                 # klines of history a strategy can read back (and the minimum warm-up)
      price_timeframe: 1m         # klines also followed on every symbol, for equity and risk (null: none)
      stale_after_s: null         # feed silent this long -> entries paused (REDUCING); null: automatic
      shutdown: leave             # leave: protective orders stay on the exchange | flatten: cancel all, close all
      margin_type: CROSSED        # set on every traded symbol at start-up
      settings_mismatch: refuse   # venue keeps another margin type/leverage (open position/orders): refuse to
                                  # start | adopt: trade under the venue's, risk gate follows it, alert raised
      recv_window_ms: 5000
      request_timeout_s: 10
      preflight: true             # run the doctor's checks before trading
      stream_check_timeout_s: 15
      protect_within_s: 10        # a position's stop is live (or the position flat) this long after the engine
                                  # learns it is missing, or an unprotected_position alert (wall time)
      close_poll: false           # true: from 150 ms before to 750 ms after each minute boundary, poll the sockets
                                  # without sleeping and rehearse the kline path (~1.5 % of a core): a VM's idle
                                  # core wakes late, and cold code runs slow
      api_host: 127.0.0.1         # the operator API (kinetic_empire/api); beyond loopback needs KINETIC_API_TOKEN
      api_port: 8080              # 0: an ephemeral port; 8080 (the default) falls back to one when taken
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
from ..config import StrategyConfig, jsonable, load_yaml, risk_section, strategy_list
from ..core.errors import ConfigError
from ..core.schema import (
    Key,
    boolean,
    choice,
    decimal,
    integer,
    nested,
    nullable,
    paths,
    reading,
    real,
    section,
    text,
    time_ms,
    timeframe,
)

SHUTDOWN_POLICIES = ("leave", "flatten")


def _url(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, "expected a URL")
    refuse_production(value, path.rpartition(".")[2])
    return value


def _speed(value: Any, path: str) -> float | None:
    """0 or null: stepped by the caller (tests); otherwise market time runs this many times wall time."""
    return None if value in (None, 0) else real(gt=0)(value, path)


_LIVE = {
    "venue": Key(choice(VENUES)),
    "rest_url": Key(nullable(_url)),
    "ws_url": Key(nullable(_url)),
    "runs_dir": Key(text),
    "window": Key(integer(ge=2)),
    "price_timeframe": Key(nullable(timeframe)),
    "stale_after_s": Key(nullable(real(gt=0))),
    "shutdown": Key(choice(SHUTDOWN_POLICIES)),
    "margin_type": Key(choice(("CROSSED", "ISOLATED"), normalise=str.upper)),
    "settings_mismatch": Key(choice(("refuse", "adopt"))),
    "recv_window_ms": Key(integer(ge=1)),
    "request_timeout_s": Key(real(gt=0)),
    "preflight": Key(boolean),
    "stream_check_timeout_s": Key(real(gt=0)),
    "protect_within_s": Key(real(gt=0)),
    "close_poll": Key(boolean),
    "api_host": Key(text),
    "api_port": Key(integer(ge=0, le=65535)),
}
_SANDBOX_FEES = {"maker": Key(decimal(), to="maker_fee"), "taker": Key(decimal(), to="taker_fee")}
_SANDBOX = {
    "data": Key(paths),
    "start": Key(nullable(time_ms)),
    "speed": Key(_speed),
    "updates_per_kline": Key(integer(ge=1)),
    "initial_balance": Key(decimal(gt=0)),
    "fees": Key(nested(_SANDBOX_FEES)),
    "funding_rate": Key(decimal()),
}


def _sandbox(value: Any, path: str) -> SandboxSettings:
    settings = section(value, path, _SANDBOX)
    fees = settings.pop("fees", {})
    return SandboxSettings(**settings, **fees)


_FILE = {
    "live": Key(nested(_LIVE)),
    "sandbox": Key(_sandbox),
    "strategies": Key(strategy_list, required=True),
    "risk": Key(risk_section),
}


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
    settings_mismatch: str = "refuse"
    recv_window_ms: int = 5000
    request_timeout_s: float = 10.0
    preflight: bool = True
    stream_check_timeout_s: float = 15.0
    protect_within_s: float = 10.0
    close_poll: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8080
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
                raise ConfigError(
                    "live.rest_url", f"venue {self.venue} with URLs needs both rest_url and ws_url", self.source
                )
            return Venue(self.venue, self.rest_url, self.ws_url)
        base = preset(self.venue)
        return Venue(base.name, self.rest_url or base.rest_url, self.ws_url or base.ws_url)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe echo for the journal and the report (no secrets: there are none in it)."""
        sb = self.sandbox
        return {
            "live": {
                "venue": self.venue,
                "rest_url": self.rest_url,
                "ws_url": self.ws_url,
                "window": self.window,
                "price_timeframe": self.price_timeframe,
                "stale_after_s": self.stale_after_s,
                "shutdown": self.shutdown,
                "margin_type": self.margin_type,
                "settings_mismatch": self.settings_mismatch,
                "protect_within_s": self.protect_within_s,
                "close_poll": self.close_poll,
                "api_host": self.api_host,
                "api_port": self.api_port,
            },
            "sandbox": {
                "data": list(sb.data),
                "start": sb.start,
                "speed": sb.speed,
                "updates_per_kline": sb.updates_per_kline,
                "initial_balance": str(sb.initial_balance),
                "fees": {"maker": str(sb.maker_fee), "taker": str(sb.taker_fee)},
                "funding_rate": str(sb.funding_rate),
            },
            "strategies": [s.to_dict() for s in self.strategies],
            "risk": jsonable(self.risk),
        }

    # ------------------------------------------------------------------------------- parsing
    @classmethod
    def from_mapping(cls, data: Any, source: str | None = None) -> LiveConfig:
        with reading(source):
            top = section(data, "", _FILE)
            live = top.pop("live", {})
            return cls(**top, **live, source=source)

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
        api_host: str | None = None,
        api_port: int | None = None,
    ) -> LiveConfig:
        """Command-line overrides, checked like the YAML values."""
        cfg = self
        if venue is not None:
            venue = choice(VENUES)(venue, "--venue")
            if venue != self.venue:
                cfg = replace(cfg, venue=venue, rest_url=None, ws_url=None)
        if rest_url is not None:
            refuse_production(rest_url, "rest_url")
            cfg = replace(cfg, rest_url=rest_url)
        if ws_url is not None:
            refuse_production(ws_url, "ws_url")
            cfg = replace(cfg, ws_url=ws_url)
        if shutdown is not None:
            shutdown = choice(SHUTDOWN_POLICIES)(shutdown, "--shutdown")
            cfg = replace(cfg, shutdown=shutdown)
        if speed is not None:
            cfg = replace(cfg, sandbox=replace(cfg.sandbox, speed=speed if speed > 0 else None))
        if runs_dir is not None:
            cfg = replace(cfg, runs_dir=runs_dir)
        if preflight is not None:
            cfg = replace(cfg, preflight=preflight)
        if api_host is not None:
            cfg = replace(cfg, api_host=text(api_host, "--api-host"))
        if api_port is not None:
            cfg = replace(cfg, api_port=integer(ge=0, le=65535)(api_port, "--api-port"))
        return cfg
