"""The sandbox venue: what Binance's wire fronts, without the wire. No HTTP or WebSocket code here.

It holds the exchange info and rules, the replayed market data, one :class:`Account` (a simulated
exchange) per API key, the listenKeys and user-stream events, the market-stream hub, rate limits and
faults. REST routes, WebSocket endpoints and the admin routes talk to it; :class:`.server.SandboxServer`
only serves it over HTTP.

Two clocks: *market time* (``market_clock``) is the replay's: kline times, order and trade times,
event ``E`` fields. *Server time* (``clock``, injected; wall time by default) is used for
``/fapi/v1/time``, request timestamps and recvWindow, listenKey validity, rate-limit windows, timed
replay pacing, countdown cancels and injected delays, as Binance's gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import string
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..core.clock import Clock, LiveClock, ReplayClock
from ..core.enums import OrderType, Side
from ..core.events import OrderFilled
from ..core.rules import parse_brackets, parse_exchange_info
from ..resources import brackets_payload, exchange_info_payload
from .accounts import Account
from .auth import ApiKey, load_keys
from .config import SandboxConfig
from .faults import Faults
from .market import MarketData, load_series, shift_series
from .orderbook import OrderBook
from .publisher import MarketPublisher
from .ratelimit import RateLimiter
from .replay import Replay
from .statefile import StateWriteError
from .streams import StreamHub
from .userstream import ADL_CLIENT_ID, UserStreams
from .wire import WirePosition

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


class SandboxVenue:
    """Accounts, market data, replay, faults and streams of the local Binance USD-M exchange."""

    def __init__(self, config: SandboxConfig | None = None, clock: Clock | None = None, *,
                 time_shift_ms: int | None = None) -> None:
        self.config = cfg = config or SandboxConfig()
        self.clock: Clock = clock or LiveClock()
        info = dict(cfg.exchange_info or exchange_info_payload(False))
        self.rules = parse_exchange_info(info)
        replays = load_series(cfg.data, self.rules, cfg.symbols, cfg.start, cfg.end) if cfg.data else {}
        if replays:
            # List only what is served: a listed TRADING symbol without data would answer -1121 to every
            # request, which clients (ccxt's active markets) cannot tell from a broken venue.
            info["symbols"] = [s for s in info.get("symbols", []) if s.get("symbol") in replays]
            self.rules = parse_exchange_info(info)
        self.exchange_info = info
        raw_brackets = cfg.leverage_brackets if cfg.leverage_brackets is not None else brackets_payload()
        self.brackets_payload = [e for e in raw_brackets if e.get("symbol") in self.rules]
        self.brackets = parse_brackets(self.brackets_payload)
        self.time_shift = 0  # ms added to the data's times (time_origin="now"; a restart reuses the saved one)
        if cfg.time_origin == "now" and replays:
            first = min(int(s.frame.open_time[0]) for s in replays.values())
            self.time_shift = self.clock.now_ms() // 60_000 * 60_000 - first if time_shift_ms is None else time_shift_ms
            shift_series(replays, self.time_shift)
        elif cfg.time_origin != "data":
            raise ValueError(f"time_origin must be 'data' or 'now', not {cfg.time_origin!r}")
        if cfg.market_fills not in ("arrival", "next_update"):
            raise ValueError(f"market_fills must be 'arrival' or 'next_update', not {cfg.market_fills!r}")
        self.market = MarketData(replays, cfg.updates_per_kline)
        self.replay = Replay(replays, cfg.updates_per_kline)
        self.market_clock = ReplayClock(self.replay.start_time())
        keys = list(cfg.keys)
        if cfg.keys_file is not None:
            keys += load_keys(cfg.keys_file)
        if not keys:
            keys = [ApiKey.generate()]
        self.keys = {k.api_key: k for k in keys}
        self.faults = Faults(cfg.faults)
        self.users = UserStreams(
            validity_ms=cfg.listen_key_validity_ms, wall_ms=self.wall_ms, market_ms=self.market_ms,
            wire_position=self.wire_position,
        )
        self.accounts = {
            k.api_key: Account(k, rules=self.rules, brackets=self.brackets, clock=self.market_clock,
                               config=cfg.exchange, symbols=replays.keys(), sink=self._on_account_event)
            for k in keys
        }
        self.hub = StreamHub(cfg.ws_max_streams, cfg.legacy_routes)
        self.book = OrderBook(cfg.book)
        self.publisher = MarketPublisher(self.hub, self.market, cfg.exchange, self.book)
        self.limiter = RateLimiter(cfg.limits, *_rate_limits(info))
        self._id_rng = random.Random(f"{cfg.faults.seed}:client-id")
        self._countdowns: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._info_bytes: bytes | None = None
        self.paused = False
        self.pause_at: int | None = None  # the replay pauses itself once market time reaches this (admin)
        self.updates_played = 0
        self._replaying = False  # inside play_update: fills then come from the replay, not from a request
        self._moving = False  # a price move after a request's fill is scheduled (FaultConfig.updates_after_fill)
        # --state: called at the end of every unit of work (a replay phase, a countdown cancel) before its
        # messages can leave; ``halted`` says why the sandbox stopped when a write failed.
        self.on_commit: Callable[[], None] | None = None
        self.halted: str | None = None

    # ------------------------------------------------------------------------------------ access
    @property
    def api_key(self) -> str:
        return next(iter(self.keys))

    @property
    def api_secret(self) -> str:
        return next(iter(self.keys.values())).api_secret

    def account(self, api_key: str | None = None) -> Account:
        return self.accounts[api_key or self.api_key]

    def wall_ms(self) -> int:
        """Server time: the injected clock plus any injected skew."""
        return self.clock.now_ms() + self.faults.skew_ms()

    def market_ms(self) -> int:
        return self.market_clock.now_ms()

    def _on_account_event(self, acct: Account, event: Any) -> None:
        self.users.on_event(acct, event)
        if (isinstance(event, OrderFilled) and not self._replaying and not self._moving and self.faults.on
                and self.faults.cfg.updates_after_fill > 0):
            # A request's order filled: move the price before the client's next request is read (the loop
            # runs this callback before any new I/O is served), as a fast market does between two requests.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not serving (a state file being restored): nothing to race with
                return
            self._moving = True
            loop.call_soon(self._move_after_fill)

    def _move_after_fill(self) -> None:
        self._moving = False
        self.faults.note("move-after-fill")
        self.play_updates(self.faults.cfg.updates_after_fill)

    def touch_all(self) -> None:
        """Something outside the exchange's events may have changed any account (an admin action)."""
        for acct in self.accounts.values():
            acct.touched = True

    def commit(self) -> None:
        """Persist the unit of work just done (``--state``); a failed write halts the venue, reported elsewhere."""
        if self.on_commit is not None:
            with contextlib.suppress(StateWriteError):
                self.on_commit()

    def reseed_client_ids(self, starts: int) -> None:
        """A restarted sandbox (``--state``) must not generate an earlier run's client ids again."""
        self._id_rng = random.Random(f"{self.config.faults.seed}:client-id:{starts}")

    def new_client_id(self) -> str:
        return "".join(self._id_rng.choice(_ALNUM) for _ in range(22))

    def exchange_info_bytes(self) -> bytes:
        if self._info_bytes is None:
            info = dict(self.exchange_info)
            info["serverTime"] = 0
            self._info_bytes = json.dumps(info, separators=(",", ":")).encode()
        return self._info_bytes.replace(b'"serverTime":0', b'"serverTime":%d' % self.wall_ms(), 1)

    def wire_position(self, acct: Account, symbol: str) -> WirePosition:
        ex = acct.exchange
        lev = ex.position(symbol)[2] if symbol in ex.symbols else ex.config.default_leverage
        br = self.brackets.get(symbol)
        cap = br.max_notional(lev) if br is not None else Decimal("1000000000")
        return WirePosition(acct, symbol, cap, ex.config.taker_fee)

    # ------------------------------------------------------------------------------------ replay
    def play_update(self) -> bool:
        """Play one phase (a price update or a kline close) for every symbol; True if it was a close."""
        replay = self.replay
        ts = replay.next_ts()
        if ts is None or self.halted:
            return False
        closing = replay.phase == replay.phases - 1
        updates = replay.play()
        self.market_clock.advance_to(ts)
        if self.pause_at is not None and ts >= self.pause_at:  # the breakpoint, however the replay got here
            self.paused, self.pause_at = True, None
        self.publisher.publish(updates)
        self._replaying = True
        try:
            for acct in self.accounts.values():
                acct.touched = True  # a price update may change orders without an event
                ex = acct.exchange
                for u in updates:
                    if u.segment is not None:
                        o, h, lo, c = u.segment
                        ex.on_bar(u.series.symbol, u.bar_ts, o, h, lo, c)
                for rec in acct.pending_triggers():
                    self.users.triggered(acct, rec, ts)
                self.users.margin_call(acct, self.config.margin_call_ratio)
        finally:
            self._replaying = False
        if self.faults.on and self.faults.expire_listen_keys():
            self.users.expire_due(force=True)
        self.updates_played += 1
        self.commit()
        return closing

    def play_klines(self, n: int = 1) -> int:
        """Play ``n`` whole klines (through their close); returns how many closed."""
        done = 0
        while done < n and not self.replay.done and not self.halted:
            if self.play_update():
                done += 1
        return done

    def play_updates(self, n: int = 1) -> None:
        """Play ``n`` phases (intra-kline updates or closes)."""
        for _ in range(n):
            if self.replay.done or self.halted:
                break
            self.play_update()

    def play_until(self, ts: int) -> None:
        """Play every phase whose market time is at or before ``ts``."""
        while True:
            nxt = self.replay.next_ts()
            if nxt is None or nxt > ts or self.halted:
                break
            self.play_update()

    async def drive(self, speed: float) -> None:
        """Timed replay: market time advances ``speed`` times faster than server time (inf: no waiting)."""
        clock = self.clock
        first = self.replay.next_ts()
        if first is None:
            return
        wall0, market0 = clock.monotonic(), first
        while not self.replay.done and not self.halted:
            if self.paused:
                await clock.sleep(0.05)
                nxt = self.replay.next_ts()
                wall0, market0 = clock.monotonic(), nxt if nxt is not None else market0
                continue
            nxt = self.replay.next_ts()
            assert nxt is not None
            if speed != float("inf"):
                delay = wall0 + (nxt - market0) / 1000.0 / speed - clock.monotonic()
                if delay > 0:
                    await clock.sleep(delay)
            else:
                await asyncio.sleep(0)
            self.play_update()
        log.info("sandbox: replay reached the end of the data at %s", self.market_ms())

    async def expire_listen_keys(self) -> None:
        """Forever: expire lapsed listenKeys every ``listen_key_check_interval_s``."""
        while True:
            await self.clock.sleep(self.config.listen_key_check_interval_s)
            self.users.expire_due()

    # ------------------------------------------------------------------------------------ orders
    def schedule_cancel_all(self, acct: Account, symbol: str, countdown_ms: int) -> None:
        """countdownCancelAll: cancel the symbol's open orders unless renewed within ``countdown_ms``."""
        key = (acct.key.api_key, symbol)
        old = self._countdowns.pop(key, None)
        if old is not None:
            old.cancel()
        if countdown_ms <= 0:
            return

        async def fire() -> None:
            await self.clock.sleep(countdown_ms / 1000.0)
            self._countdowns.pop(key, None)
            for sim in acct.open_orders(symbol):
                if sim.is_open:
                    acct.exchange.cancel(symbol, order_id=sim.order_id)
            self.commit()

        self._countdowns[key] = asyncio.get_running_loop().create_task(fire())

    def auto_deleverage(self, symbol: str, quantity: Decimal | None = None) -> list[str]:
        """Auto-deleverage: close ``quantity`` (default: all) of every account's position on ``symbol`` at the
        current price with an ``adl_autoclose`` order, as Binance does when a counterparty's liquidation cannot
        be filled. Returns the (shortened) keys of the accounts hit. An admin action (tests of the adapter)."""
        series = self.market.get(symbol)
        if series is None or not series.last:
            raise ValueError(f"{symbol}: no replayed price yet")
        hit = []
        for key, acct in self.accounts.items():
            ex = acct.exchange
            qty = ex.position(symbol)[0] if symbol in ex.symbols else Decimal(0)
            if qty == 0:
                continue
            take = min(abs(qty), quantity) if quantity is not None else abs(qty)
            side = Side.SELL if qty > 0 else Side.BUY
            sim = ex.submit(symbol=symbol, side=side, order_type=OrderType.MARKET, quantity=take, reduce_only=True,
                            client_order_id=ADL_CLIENT_ID)
            ex.fill_market_on_arrival(sim, [(ex.last_price(symbol), take)])
            hit.append(key[:8])
        self.commit()
        return hit

    def cancel_countdowns(self) -> None:
        for task in self._countdowns.values():
            task.cancel()
        self._countdowns.clear()
