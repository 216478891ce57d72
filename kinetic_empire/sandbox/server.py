"""The sandbox's composition root: serves a :class:`.venue.SandboxVenue` over HTTP and WebSocket.

Use it in-process (tests, ``kinetic run``)::

    async with SandboxServer(SandboxConfig(data=[folder])) as sb:
        sb.rest_url, sb.ws_url, sb.api_key, sb.api_secret
        await sb.step(5)          # stepped replay: play five klines

or standalone through ``kinetic sandbox`` (see :mod:`.cli`). Everything about the exchange lives in
the venue; this module owns only the HTTP/WS lifecycle: the app, its runner and socket, the open
connections, the background tasks (timed replay, listenKey expiry, fsync of the state file), and the
points where ``--state`` commits a unit of work: right after each REST handler and before any HTTP answer
(see :mod:`.durable` for the guarantee). Without ``--state`` the REST table is served by the lean protocol
of :mod:`.http_server`, which hands everything else to the aiohttp application on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from aiohttp import web

from ..core.clock import Clock
from . import admin, routes_account, routes_algo, routes_market, routes_orders, ws
from .accounts import Account
from .config import SandboxConfig
from .connection import Connections
from .durable import DurableState, resume
from .endpoints import Ctx, Endpoint
from .errors import ApiError
from .faults import Faults
from .gateway import Gateway, json_errors
from .http_server import RestSite
from .market import MarketData
from .replay import Replay
from .statefile import Loaded, StateFile, StateWriteError
from .userstream import UserStreams
from .venue import SandboxVenue

log = logging.getLogger(__name__)
_STOPPED = "Internal error; unable to process your request. Please try again."


class SandboxServer:
    """A local Binance USD-M futures exchange over HTTP and WebSocket.

    ``clock`` is server time (wall time by default): request timestamps, listenKey validity, rate-limit
    windows, timed replay, injected delays. A test may pass a :class:`~kinetic_empire.core.clock.ManualClock`.
    ``lean_http=False`` serves everything through aiohttp alone (as ``--state`` does): the tests compare the
    two fronts byte for byte.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None,
                 lean_http: bool = True) -> None:
        cfg = config or SandboxConfig()
        # --state: lock and read the file first (a replay shifted to "now" resumes with its saved shift)
        self._state_file = StateFile(cfg.state_file) if cfg.state_file is not None else None
        self._loaded = self._state_file.open() if self._state_file is not None else Loaded()
        shift = self._loaded.snapshot["replay"].get("shift") if self._loaded.snapshot is not None else None
        try:
            self.venue = venue = SandboxVenue(cfg, clock, time_shift_ms=shift)
        except BaseException:
            if self._state_file is not None:
                self._state_file.close()
            raise
        self.config = venue.config
        self.conns = Connections()
        self.durable: DurableState | None = None
        self.failure: str | None = None  # why the sandbox stopped on its own (a state write failed)
        self.failed = asyncio.Event()
        endpoints = [*routes_market.endpoints(), *routes_orders.endpoints(), *routes_algo.endpoints(),
                     *routes_account.endpoints()]
        if self._state_file is not None:  # without --state there is nothing to commit: no wrapper per request
            endpoints = [self._committing(e) for e in endpoints]
        self.gateway = Gateway(venue, endpoints)
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._lean_http = lean_http and self._state_file is None  # --state: a commit middleware on every request
        self._tasks: list[asyncio.Task[None]] = []
        self.port: int | None = None

    def _build_app(self) -> web.Application:
        durable = self._state_file is not None
        middlewares = [json_errors, self._commit_before_answer] if durable else [json_errors]
        app = web.Application(middlewares=middlewares, client_max_size=1 << 20)
        app.add_routes(ws.routes(self.venue, self.conns))
        if self.config.admin:
            app.add_routes(admin.routes(self.venue, self.conns))
        for method, path in self.gateway.table:  # exact routes: a dictionary look-up, not the catch-all's regex
            app.router.add_route(method, path, self.gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self.gateway.handle)  # unknown paths and methods: Binance's errors
        return app

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> SandboxServer:
        cfg, venue = self.config, self.venue
        if self._state_file is not None:
            try:
                self.durable = resume(venue, self._state_file, self._loaded, self._state_failed)
            except BaseException:
                self._state_file.close()
                raise
            self._loaded = Loaded()
        elif cfg.warmup_klines:
            venue.play_klines(cfg.warmup_klines)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site: web.BaseSite
        if self._lean_http:  # the REST table on the lean protocol, the rest handed to aiohttp on the same port
            site = RestSite(self._runner, self.gateway, venue.clock, cfg.host, cfg.port)
        else:
            site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(venue.expire_listen_keys()))
        if cfg.speed:
            self._tasks.append(loop.create_task(venue.drive(float(cfg.speed))))
        if self.durable is not None:
            self._tasks.append(loop.create_task(self._sync_periodically(self.durable)))
        log.info("sandbox listening on %s", self.rest_url)
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.venue.cancel_countdowns()
        if self.durable is not None:
            self.durable.close()
            self.durable = None
        elif self._state_file is not None:
            self._state_file.close()
        self.conns.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _sync_periodically(self, durable: DurableState) -> None:
        while True:
            await self.venue.clock.sleep(self.config.state_fsync_interval_s)
            await durable.sync()

    # ------------------------------------------------------------------------------------ --state
    def _commit(self) -> None:
        """Persist the unit of work just done; a failed write answers 503 (the sandbox has stopped)."""
        if self.durable is not None:
            try:
                self.durable.commit()
            except StateWriteError:
                raise ApiError(-1001, _STOPPED, 503) from None

    def _committing(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint with a commit right after its handler, before the gateway's fault delays or answer."""
        inner = endpoint.handler
        if endpoint.method == "GET":  # a query changes nothing: there is nothing to write
            return endpoint

        def handler(ctx: Ctx) -> Any:
            try:
                return inner(ctx)
            finally:
                if ctx.account is not None:
                    ctx.account.touched = True  # e.g. a leverage change emits no event
                self._commit()

        return dataclasses.replace(endpoint, handler=handler)

    @web.middleware
    async def _commit_before_answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every route (admin included): its changes are written before its answer is sent."""
        if self.failure is not None:
            raise ApiError(-1001, _STOPPED, 503)
        try:
            return await handler(request)
        finally:
            if request.method != "GET" and not request.path.startswith("/fapi/"):
                self.venue.touch_all()  # an admin action may change any account
            self._commit()

    def _state_failed(self, message: str) -> None:
        self.failure = message
        self.conns.drop_all()  # events queued for the streams were never written: they must not leave
        self.failed.set()

    # ------------------------------------------------------------------------------------ access
    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Stream base: append ``/ws/<stream>``, ``/stream?streams=``, ``/market/ws``, ``/private/ws?listenKey=``."""
        return f"ws://{self.config.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.venue.api_key

    @property
    def api_secret(self) -> str:
        return self.venue.api_secret

    def account(self, api_key: str | None = None) -> Account:
        return self.venue.account(api_key)

    # The venue's parts that tests and the live app reach through the server handle.
    @property
    def faults(self) -> Faults:
        return self.venue.faults

    @property
    def replay(self) -> Replay:
        return self.venue.replay

    @property
    def market(self) -> MarketData:
        return self.venue.market

    @property
    def users(self) -> UserStreams:
        return self.venue.users

    def market_ms(self) -> int:
        return self.venue.market_ms()

    # ------------------------------------------------------------------------------------ stepping
    def play_klines(self, n: int = 1) -> int:
        """Play ``n`` whole klines without waiting for the streams; returns how many closed."""
        return self.venue.play_klines(n)

    async def step(self, klines: int = 1) -> int:
        """Stepped replay: play ``klines`` klines, then wait until every stream message is sent."""
        done = self.venue.play_klines(klines)
        await self.conns.flush()
        return done

    async def step_updates(self, n: int = 1) -> None:
        """Play ``n`` phases (intra-kline updates or closes), then flush the streams."""
        self.venue.play_updates(n)
        await self.conns.flush()

    async def advance_to(self, ts: int) -> None:
        """Play every phase whose market time is at or before ``ts``, then flush the streams."""
        self.venue.play_until(ts)
        await self.conns.flush()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued stream messages have been written to the sockets."""
        await self.conns.flush(timeout)
