"""The sandbox's composition root: builds the exchange accounts, replay, streams and HTTP app, and runs them.

Use it in-process (tests, ``kinetic run``)::

    async with SandboxServer(SandboxConfig(data=[folder])) as sb:
        sb.rest_url, sb.ws_url, sb.api_key, sb.api_secret
        await sb.step(5)          # stepped replay: play five klines

or standalone through ``kinetic sandbox`` (see :mod:`.cli`).

Two clocks: *market time* is the replay's (kline times, order and trade times, event ``E`` fields);
*server time* is the wall clock (plus an injected skew), used for ``/fapi/v1/time``, request
timestamps and recvWindow, listenKey validity and rate-limit windows, as Binance's gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import string
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..core.clock import LiveClock, ReplayClock
from ..core.rules import parse_brackets, parse_exchange_info
from ..resources import brackets_payload, exchange_info_payload
from . import admin, routes_account, routes_algo, routes_market, routes_orders, state, ws
from .accounts import Account
from .auth import ApiKey, load_keys
from .config import SandboxConfig
from .faults import Faults
from .gateway import Gateway, json_errors
from .market import MarketData, load_series, shift_series
from .publisher import MarketPublisher
from .ratelimit import RateLimiter
from .replay import Replay
from .streams import Conn, StreamHub
from .userstream import UserStreams
from .wire import PositionView

log = logging.getLogger(__name__)
_ALNUM = string.ascii_letters + string.digits


def _rate_limits(info: dict[str, Any]) -> tuple[int, int, int]:
    weight, o10, o60 = 2400, 300, 1200
    for r in info.get("rateLimits", []):
        kind, interval, num, limit = r.get("rateLimitType"), r.get("interval"), r.get("intervalNum"), r.get("limit")
        if kind == "REQUEST_WEIGHT" and interval == "MINUTE" and num == 1:
            weight = int(limit)
        elif kind == "ORDERS" and interval == "SECOND" and num == 10:
            o10 = int(limit)
        elif kind == "ORDERS" and interval == "MINUTE" and num == 1:
            o60 = int(limit)
    return weight, o10, o60


class SandboxServer:
    """A local Binance USD-M futures exchange over HTTP and WebSocket."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = cfg = config or SandboxConfig()
        info = dict(cfg.exchange_info or exchange_info_payload(False))
        self._wall = LiveClock()  # server time; the replay clock is market time
        self.exchange_info = info
        self.rules = parse_exchange_info(info)
        raw_brackets = cfg.leverage_brackets if cfg.leverage_brackets is not None else brackets_payload()
        self.brackets_payload = [e for e in raw_brackets if e.get("symbol") in self.rules]
        self.brackets = parse_brackets(self.brackets_payload)
        series = load_series(cfg.data, self.rules, cfg.symbols, cfg.start, cfg.end) if cfg.data else {}
        if cfg.time_origin == "now" and series:
            first = min(int(s.open_time[0]) for s in series.values())
            shift_series(series, self._wall.now_ms() // 60_000 * 60_000 - first)
        elif cfg.time_origin != "data":
            raise ValueError(f"time_origin must be 'data' or 'now', not {cfg.time_origin!r}")
        self.market = MarketData(series, cfg.updates_per_kline)
        self.replay = Replay(series, cfg.updates_per_kline)
        self.clock = ReplayClock(self.replay.start_time())
        keys = list(cfg.keys)
        if cfg.keys_file is not None:
            keys += load_keys(cfg.keys_file)
        if not keys:
            keys = [ApiKey.generate()]
        self.keys = {k.api_key: k for k in keys}
        self.faults = Faults(cfg.faults)
        self.users = UserStreams(
            validity_ms=cfg.listen_key_validity_ms, wall_ms=self.wall_ms, market_ms=self.market_ms,
            position_view=self.position_view,
        )
        self.accounts = {
            k.api_key: Account(k, rules=self.rules, brackets=self.brackets, clock=self.clock, config=cfg.exchange,
                               symbols=series.keys(), sink=self.users.on_event)
            for k in keys
        }
        self.hub = StreamHub(cfg.ws_max_streams)
        self.publisher = MarketPublisher(self.hub, self.market, cfg.exchange)
        self.limiter = RateLimiter(cfg.limits, *_rate_limits(info))
        self.conns: set[Conn] = set()
        self._id_rng = random.Random(f"{cfg.faults.seed}:client-id")
        self._countdowns: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._info_bytes: bytes | None = None
        self.gateway = Gateway(
            self,
            [*routes_market.endpoints(), *routes_orders.endpoints(), *routes_algo.endpoints(),
             *routes_account.endpoints()],
        )
        self.app = self._build_app()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port: int | None = None
        self.paused = False
        self.updates_played = 0

    # ------------------------------------------------------------------------------------ wiring
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[json_errors], client_max_size=1 << 20)
        app.add_routes(ws.routes(self))
        if self.config.admin:
            app.add_routes(admin.routes(self))
        app.router.add_route("*", "/{tail:.*}", self.gateway.handle)
        return app

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> SandboxServer:
        cfg = self.config
        if cfg.state_file is not None and cfg.state_file.exists():
            state.restore(self, cfg.state_file)
        elif cfg.warmup_klines:
            self.play_klines(cfg.warmup_klines)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._expire_keys()))
        if cfg.speed:
            self._tasks.append(loop.create_task(self._drive(float(cfg.speed))))
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
        for handle in self._countdowns.values():
            handle.cancel()
        if self.config.state_file is not None:
            state.save(self, self.config.state_file)
        for conn in list(self.conns):
            conn.close_soon()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

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
        return next(iter(self.keys))

    @property
    def api_secret(self) -> str:
        return next(iter(self.keys.values())).api_secret

    def account(self, api_key: str | None = None) -> Account:
        return self.accounts[api_key or self.api_key]

    def wall_ms(self) -> int:
        return self._wall.now_ms() + self.faults.skew_ms()

    def market_ms(self) -> int:
        return self.clock.now_ms()

    def new_client_id(self) -> str:
        return "".join(self._id_rng.choice(_ALNUM) for _ in range(22))

    def exchange_info_bytes(self) -> bytes:
        if self._info_bytes is None:
            info = dict(self.exchange_info)
            info["serverTime"] = 0
            self._info_bytes = json.dumps(info, separators=(",", ":")).encode()
        return self._info_bytes.replace(b'"serverTime":0', b'"serverTime":%d' % self.wall_ms(), 1)

    def position_view(self, acct: Account, symbol: str) -> PositionView:
        ex = acct.exchange
        lev = ex.position(symbol)[2] if symbol in ex.symbols else ex.config.default_leverage
        br = self.brackets.get(symbol)
        cap = br.max_notional(lev) if br is not None else Decimal("1000000000")
        return PositionView(acct, symbol, cap, ex.config.taker_fee)

    # ------------------------------------------------------------------------------------ replay
    def play_update(self) -> bool:
        """Play one phase (a price update or a kline close) for every symbol; True if it was a close."""
        replay = self.replay
        ts = replay.next_ts()
        if ts is None:
            return False
        closing = replay.phase == replay.phases - 1
        updates = replay.play()
        self.clock.advance_to(ts)
        self.publisher.publish(updates)
        for acct in self.accounts.values():
            ex = acct.exchange
            for u in updates:
                if u.segment is not None:
                    o, h, lo, c = u.segment
                    ex.on_bar(u.series.symbol, u.bar_ts, o, h, lo, c)
            for rec in acct.pending_triggers():
                self.users.triggered(acct, rec, ts)
            self.users.margin_call(acct, self.config.margin_call_ratio)
        if self.faults.on and self.faults.expire_listen_keys():
            self.users.expire_due(force=True)
        self.updates_played += 1
        return closing

    def play_klines(self, n: int = 1) -> int:
        """Play ``n`` whole klines (through their close); returns how many closed."""
        done = 0
        while done < n and not self.replay.done:
            if self.play_update():
                done += 1
        return done

    async def step(self, klines: int = 1) -> int:
        """Stepped replay: play ``klines`` klines, then wait until every stream message is sent."""
        done = self.play_klines(klines)
        await self.flush()
        return done

    async def step_updates(self, n: int = 1) -> None:
        """Play ``n`` phases (intra-kline updates or closes)."""
        for _ in range(n):
            if self.replay.done:
                break
            self.play_update()
        await self.flush()

    async def advance_to(self, ts: int) -> None:
        """Play every phase whose market time is at or before ``ts``."""
        while True:
            nxt = self.replay.next_ts()
            if nxt is None or nxt > ts:
                break
            self.play_update()
        await self.flush()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued stream messages have been written to the sockets."""
        conns = [c for c in self.conns if not c.closed]
        if conns:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.queue.join() for c in conns)), timeout)

    async def _drive(self, speed: float) -> None:
        """Timed replay: market time advances ``speed`` times faster than wall time (inf: no waiting)."""
        loop = asyncio.get_running_loop()
        first = self.replay.next_ts()
        if first is None:
            return
        wall0, market0 = loop.time(), first
        while not self.replay.done:
            if self.paused:
                await asyncio.sleep(0.05)
                nxt = self.replay.next_ts()
                wall0, market0 = loop.time(), nxt if nxt is not None else market0
                continue
            nxt = self.replay.next_ts()
            assert nxt is not None
            if speed != float("inf"):
                delay = wall0 + (nxt - market0) / 1000.0 / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            self.play_update()
        log.info("sandbox: replay reached the end of the data at %s", self.market_ms())

    async def _expire_keys(self) -> None:
        while True:
            await asyncio.sleep(self.config.listen_key_check_interval_s)
            self.users.expire_due()

    async def _save_periodically(self) -> None:
        assert self.config.state_file is not None
        while True:
            await asyncio.sleep(self.config.state_save_interval_s)
            state.save(self, self.config.state_file)

    # ------------------------------------------------------------------------------------ orders
    def schedule_cancel_all(self, acct: Account, symbol: str, countdown_ms: int) -> None:
        """countdownCancelAll: cancel the symbol's open orders unless renewed within ``countdown_ms``."""
        key = (acct.key.api_key, symbol)
        old = self._countdowns.pop(key, None)
        if old is not None:
            old.cancel()
        if countdown_ms <= 0:
            return

        def fire() -> None:
            self._countdowns.pop(key, None)
            for sim in acct.open_orders(symbol):
                if sim.is_open:
                    acct.exchange.cancel(symbol, order_id=sim.order_id)

        self._countdowns[key] = asyncio.get_running_loop().call_later(countdown_ms / 1000.0, fire)
