"""The operator gateway of one ``kinetic run``: one more bus reader and one more command source.

It reads by subscribing to the bus (order table, SSE ring, metrics, alerts) and by looking at the engine's
objects between deliveries; it writes only bus commands (:mod:`.commands`). It is served by uvicorn inside
the run's own event loop (``Server.serve()`` as a task), so no second thread ever touches engine state, and
uvicorn's own signal handling is switched off so Ctrl-C still stops the run the usual way.

Lifecycle: ``Gateway(engine, ...)``, then ``engine.readers.append(gateway.attach)`` before ``engine.start()``
(the gateway sees every event from the first), then ``await gateway.start()``; ``await gateway.stop()`` at the
end. The port: the asked one, or (the default 8080 only) an ephemeral one when it is taken; 0 is ephemeral.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import Request

from ..core.errors import KineticError
from ..core.events import (
    Alert,
    BalanceChanged,
    KlineClosed,
    MarkPriceUpdated,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    PositionChanged,
    RiskDenied,
    TradingStateChanged,
)
from ..risk.operator import install_operator_desk
from .alerts import AlertBook, AlertThresholds
from .app import build_app
from .auth import TokenCheck
from .candles import FillMarks
from .commands import OperatorCommands
from .encode import event_dict
from .limits import BodyLimit
from .metrics import ApiMetrics
from .orders import OrderTable
from .reports import ReportLibrary
from .schemas import ApiError
from .stream import EventStream
from .view import EngineView, market_of

if TYPE_CHECKING:
    from ..live.app import LiveEngine

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
_ORDER_EVENTS = (OrderRequest, OrderAccepted, OrderRejected, OrderCanceled, OrderExpired, OrderFilled)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the run owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, *, fallback: bool) -> socket.socket:
    """A listening socket on (host, port); with ``fallback``, an ephemeral port when ``port`` is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if not (fallback and port and exc.errno == errno.EADDRINUSE):
                raise KineticError(f"--api-port {port} on {host}: {exc.strerror or exc}") from None
            log.warning("api port %d on %s is taken; using an ephemeral port", port, host)
            sock.bind((host, 0))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Gateway:
    """HTTP API, SSE stream and metrics for one live engine."""

    def __init__(
        self,
        engine: LiveEngine,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        results_dir: str | Path = "backtests/results",
        runs_dir: str | Path | None = None,
        metrics: ApiMetrics | None = None,
        health_every_s: float = 2.0,
        max_body_bytes: int = 64 * 1024,
        answer_timeout_s: float = 10.0,
        ring_capacity: int = 4096,
        thresholds: AlertThresholds | None = None,
    ) -> None:
        self.engine = engine
        self.token_check = TokenCheck(token)
        self.host = host
        self.port = port
        self.health_every_s = health_every_s
        self.max_body_bytes = max_body_bytes
        self.library = ReportLibrary(Path(results_dir), Path(runs_dir or engine.config.runs_dir))
        self.orders = OrderTable()
        self.view = EngineView(engine, self.orders)
        self.fills = FillMarks()
        self.stream = EventStream(self.view.snapshot, lambda: engine.clock.now_ms(), capacity=ring_capacity)
        self.commands = OperatorCommands(engine, self.orders, self.view.risk, answer_timeout_s=answer_timeout_s)
        self.metrics = metrics or ApiMetrics()
        self.metrics.sse_clients = lambda: self.stream.clients
        self.alerts = AlertBook(thresholds)
        self.app = build_app(self)
        self._server: _Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.bound_port = 0
        self.attached = False
        self._last_account_ts = 0

    # ------------------------------------------------------------------------------ wiring
    def attach(self, engine: LiveEngine | None = None) -> None:
        """Subscribe to the engine's bus (called by the engine once its core exists, before trading)."""
        e = self.engine
        bus = e.bus
        self._seed()
        self.commands.desk = install_operator_desk(bus, e.risk, e.clock)
        for cls in _ORDER_EVENTS:
            bus.subscribe(cls, self._on_order)
        bus.subscribe(OrderRequest, self.commands.on_request)
        bus.subscribe(RiskDenied, self._on_denied)
        bus.subscribe(KlineClosed, self._on_kline)
        bus.subscribe(MarkPriceUpdated, self._on_mark)
        bus.subscribe(PositionChanged, self._on_position)
        bus.subscribe(BalanceChanged, self._on_balance)
        bus.subscribe(TradingStateChanged, self._on_state)
        bus.subscribe(Alert, self._on_alert)
        self.metrics.attach(e)
        self.alerts.attach(e, self.metrics)
        self.attached = True

    def _seed(self) -> None:
        """A resumed run: its journaled open orders, so the table knows them before any update."""
        view = self.engine.resume_view
        if view is None:
            return
        for r in view.open_orders():
            row = self.orders.on_event(r)
            if row is not None and r.client_order_id in view.accepted:
                row.state = "ACCEPTED"

    # ------------------------------------------------------------------------------ bus handlers (hot path)
    def _on_order(self, e: Any) -> None:
        row = self.orders.on_event(e)
        if row is None:
            return
        self.commands.on_row(row)
        self.stream.push("order_update", e.ts_event, {"event": type(e).__name__, **row.to_json()})
        if type(e) is OrderFilled:
            self.stream.push("fill", e.ts_event, self.fills.on_fill(e, close_position=row.close_position))
            self._push_account(e.ts_event)

    def _on_denied(self, d: RiskDenied) -> None:
        self.commands.on_denied(d)
        self.stream.push("risk", d.ts_event, {"event": "RiskDenied", "denial": event_dict(d), **self.view.risk()})

    def _on_state(self, s: TradingStateChanged) -> None:
        self.stream.push("risk", s.ts_event, {"event": "TradingStateChanged", "change": event_dict(s),
                                              **self.view.risk()})

    def _on_kline(self, k: KlineClosed) -> None:
        self.view.on_kline(k)
        self.stream.push("kline", k.ts_event, lambda: event_dict(k))
        lag, mark = self.engine.clock.now_ms() - k.ts_event, self.view.marks.get(k.symbol)
        self.stream.push("market", k.ts_event, lambda: market_of(k, lag, mark))  # values of now, built later
        if k.ts_event > self._last_account_ts and self.engine.portfolio.positions():
            self._push_account(k.ts_event)  # equity moves with the price while a position is open

    def _on_mark(self, m: MarkPriceUpdated) -> None:
        self.view.on_mark(m)
        self.stream.push("market", m.ts_event, self.view.market(m.symbol))

    def _on_position(self, p: PositionChanged) -> None:
        pos = next((x for x in self.view.positions() if x["symbol"] == p.symbol), None)
        self.stream.push("position", p.ts_event, pos or {**event_dict(p), "quantity": "0", "unrealized_pnl": "0",
                                                         "stop_price": None, "take_profit_price": None,
                                                         "last_price": None})
        self._push_account(p.ts_event)

    def _on_balance(self, b: BalanceChanged) -> None:
        self._push_account(b.ts_event)

    def _push_account(self, ts: int) -> None:
        self._last_account_ts = ts
        self.stream.push("account", ts, self.view.account())

    def _on_alert(self, a: Alert) -> None:
        self.alerts.on_alert(a)
        self.stream.push("alert", a.ts_event, event_dict(a))

    # ------------------------------------------------------------------------------ used by the routes
    def check_token(self, request: Request) -> None:
        self.token_check(request)

    def commands_check_symbol(self, symbol: str) -> None:
        if symbol not in self.engine.symbols:
            raise ApiError(404, f"unknown symbol {symbol}: this run trades {', '.join(self.engine.symbols)}",
                           "symbol")

    async def market(self, symbol: str) -> dict[str, Any]:
        out = self.view.market(symbol)
        if out["mark_price"] is None:  # the feed carries klines only: ask the venue (weight 1)
            from ..binance.errors import BinanceError

            try:
                data = await self.engine.rest.get("/fapi/v1/premiumIndex", {"symbol": symbol})
                out["mark_price"] = float(data["markPrice"])
                out["funding_rate"] = float(data.get("lastFundingRate") or 0.0)
            except (BinanceError, KeyError, TypeError, ValueError) as exc:
                out["mark_price_error"] = str(exc)
        return out

    async def ping(self) -> dict[str, Any]:
        from ..binance.errors import BinanceError

        timer = self.engine.timer
        t0 = timer.monotonic()
        try:
            await self.engine.rest.get("/fapi/v1/ping")
        except BinanceError as exc:
            raise ApiError(502, f"venue ping failed: {exc}", None) from None
        rtt = timer.monotonic() - t0
        self.metrics.observe_ping(rtt)
        return {"ok": True, "venue": self.engine.venue.name, "round_trip_ms": round(rtt * 1000, 3)}

    def log_crash(self, exc: Exception) -> None:
        log.error("operator API: unhandled %s", type(exc).__name__, exc_info=exc)

    # ------------------------------------------------------------------------------ serving
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.bound_port}"

    def login_url(self, token: str) -> str:
        return f"{self.url}/login?token={token}"

    async def start(self) -> str:
        """Bind and serve; returns the base URL once the server accepts connections."""
        if not self.attached:
            raise KineticError("Gateway.attach() must run (engine.readers) before start()")
        sock = bind(self.host, self.port, fallback=self.port == DEFAULT_PORT)
        self.bound_port = sock.getsockname()[1]
        app = BodyLimit(self.metrics.middleware(self.app, self.engine.timer), self.max_body_bytes)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, server_header=False)
        self._server = server = _Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]), name="operator api")
        self._tasks.append(task)
        while not server.started:
            if task.done():
                task.result()
                raise KineticError("the operator API stopped during start-up")
            await asyncio.sleep(0)
            await self.engine.timer.sleep(0.005)
        self._tasks.append(asyncio.get_running_loop().create_task(self._health_loop(), name="api health"))
        return self.url

    async def _health_loop(self) -> None:
        while True:
            await self.engine.timer.sleep(self.health_every_s)
            self.alerts.check(self.engine)
            self.stream.push("health", self.engine.clock.now_ms(), self.view.health())

    async def stop(self) -> None:
        self.stream.close()
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._server = None
