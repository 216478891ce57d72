"""The sandbox's composition root: serves a :class:`.venue.SandboxVenue` over HTTP and WebSocket.

Use it in-process (tests, ``kinetic run``)::

    async with SandboxServer(SandboxConfig(data=[folder])) as sb:
        sb.rest_url, sb.ws_url, sb.api_key, sb.api_secret
        await sb.step(5)          # stepped replay: play five klines

or standalone through ``kinetic sandbox`` (see :mod:`.cli`). Everything about the exchange lives in
the venue; this module owns only the HTTP/WS lifecycle: the app, its runner and socket, the open
connections, and the background tasks (timed replay, listenKey expiry, periodic state saves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from ..core.clock import Clock
from . import admin, routes_account, routes_algo, routes_market, routes_orders, state, ws
from .accounts import Account
from .config import SandboxConfig
from .connection import Connections
from .faults import Faults
from .gateway import Gateway, json_errors
from .market import MarketData
from .replay import Replay
from .userstream import UserStreams
from .venue import SandboxVenue

log = logging.getLogger(__name__)


class SandboxServer:
    """A local Binance USD-M futures exchange over HTTP and WebSocket.

    ``clock`` is server time (wall time by default): request timestamps, listenKey validity, rate-limit
    windows, timed replay, injected delays. A test may pass a :class:`~kinetic_empire.core.clock.ManualClock`.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.venue = venue = SandboxVenue(config, clock)
        self.config = venue.config
        self.conns = Connections()
        self.gateway = Gateway(
            venue,
            [*routes_market.endpoints(), *routes_orders.endpoints(), *routes_algo.endpoints(),
             *routes_account.endpoints()],
        )
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port: int | None = None

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[json_errors], client_max_size=1 << 20)
        app.add_routes(ws.routes(self.venue, self.conns))
        if self.config.admin:
            app.add_routes(admin.routes(self.venue, self.conns))
        app.router.add_route("*", "/{tail:.*}", self.gateway.handle)
        return app

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> SandboxServer:
        cfg, venue = self.config, self.venue
        if cfg.state_file is not None and cfg.state_file.exists():
            state.restore(venue, cfg.state_file)
        elif cfg.warmup_klines:
            venue.play_klines(cfg.warmup_klines)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(venue.expire_listen_keys()))
        if cfg.speed:
            self._tasks.append(loop.create_task(venue.drive(float(cfg.speed))))
        if cfg.state_file is not None:
            self._tasks.append(loop.create_task(self._save_periodically()))
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
        if self.config.state_file is not None:
            state.save(self.venue, self.config.state_file)
        self.conns.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _save_periodically(self) -> None:
        assert self.config.state_file is not None
        while True:
            await self.venue.clock.sleep(self.config.state_save_interval_s)
            state.save(self.venue, self.config.state_file)

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
