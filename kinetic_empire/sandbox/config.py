"""Settings of the local Binance USD-M sandbox. Defaults copy Binance; tests shrink the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..exchange.config import ExchangeConfig
from .auth import ApiKey
from .orderbook import BookConfig


@dataclass(slots=True)
class RateLimitConfig:
    """Request-weight and order-count budgets (reference 7.1). ``None`` takes exchangeInfo's value."""

    weight_1m: int | None = None
    orders_10s: int | None = None
    orders_1m: int | None = None
    enforce: bool = True
    ban_after: int = 10  # requests refused with 429 in one window before the IP is banned (418)
    ban_seconds: float = 120.0


@dataclass(slots=True)
class FaultConfig:
    """Injected failures, each drawn from its own seeded RNG so a run can be reproduced.

    Rates are probabilities per request (REST) or per message (WebSocket). Order faults apply to
    order placement and cancellation only: ``error_executed_rate`` returns 503 after the order was
    executed (status unknown for the client), ``error_rejected_rate`` returns 503 without executing,
    ``timeout_rate`` holds the reply for ``timeout_seconds`` then answers 408 -1007 (executed or not,
    decided by ``timeout_executed_share``). ``unknown_visible_after_ms``: an order executed under such a
    fault answers -2013 to look-ups by id for that long, as a busy Binance may (0: queryable at once).
    ``updates_after_fill``: after a request's order fills (a market order on arrival), the replay plays this
    many price updates before the next request is served, so the price has moved by then, as on a fast
    market: a stop placed against the entry price can answer -2021 "Order would immediately trigger", and
    the next market order fills at a slipped price (0: off).
    """

    enabled: bool = False
    seed: int = 0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    error_executed_rate: float = 0.0
    error_rejected_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 10.0
    timeout_executed_share: float = 0.5
    rate_limit_burst_rate: float = 0.0  # spurious 429s on any request
    clock_skew_ms: int = 0
    ws_drop_rate: float = 0.0  # close a stream connection abruptly instead of sending a message
    ws_stall_rate: float = 0.0  # stop sending on a connection for ws_stall_seconds
    ws_stall_seconds: float = 5.0
    listen_key_early_expiry_rate: float = 0.0  # per replay update: expire every listenKey now
    unknown_visible_after_ms: int = 0  # an order executed under a 5xx/timeout is not queryable for this long
    updates_after_fill: int = 0  # price updates played right after a request's fill, before the next request

    def update(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            if name not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault setting {name!r}")
            if name == "latency_ms":
                value = (float(value[0]), float(value[1]))
            setattr(self, name, value)


@dataclass(slots=True)
class SandboxConfig:
    """Everything the sandbox server needs; every field has a working default.

    ``speed``: ``None`` or 0 = stepped by the caller (:meth:`SandboxServer.step`); a number = real time
    times that factor; ``float("inf")`` = as fast as possible. ``time_origin``: ``"data"`` keeps the
    klines' own timestamps; ``"now"`` shifts them so the replay starts at the current wall-clock minute
    (market time then tracks wall time at speed 1, as on Binance).
    """

    host: str = "127.0.0.1"
    port: int = 0
    data: list[Path] = field(default_factory=list)
    symbols: list[str] | None = None
    start: int | None = None
    end: int | None = None
    speed: float | None = None
    updates_per_kline: int = 4
    warmup_klines: int = 0
    time_origin: str = "data"
    keys: list[ApiKey] = field(default_factory=list)
    keys_file: Path | None = None
    state_file: Path | None = None
    state_fsync_interval_s: float = 1.0  # --state: fsync appended changes this often (power-loss bound)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    exchange_info: dict[str, Any] | None = None  # None: the bundled 2025-12-24 snapshot
    leverage_brackets: list[dict[str, Any]] | None = None  # None: the bundled brackets
    listen_key_validity_ms: int = 3_600_000
    listen_key_check_interval_s: float = 1.0
    recv_window_max: int = 60_000
    limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    admin: bool = False  # serve /sandbox-admin/* (faults, stepping, listenKey expiry)
    ws_ping_interval_s: float = 180.0
    ws_max_incoming_per_s: int = 10
    ws_max_streams: int = 1024
    margin_call_ratio: Decimal = Decimal("0.8")
    book: BookConfig = field(default_factory=BookConfig)  # spread and depth derived from the klines
    legacy_routes: bool = False  # unrouted /ws and /stream carry every stream, and /ws/<listenKey> user data
    market_fills: str = "arrival"  # "arrival": at once against the book, as Binance; "next_update": opt-in
    log_requests: bool = False
