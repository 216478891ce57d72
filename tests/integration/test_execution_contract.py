"""One contract for every execution port: the backtest's SimulatedBroker, BinanceExecution and the ccxt port
(CcxtExecution, an unmodified ccxt.pro binanceusdm) on the local sandbox.

Each test runs against both, through the :class:`ExecutionPort` verbs, with only two venue-specific helpers
(move the market, wait for the bus): the same orders must give the same events, the same snapshots and the
same refusals (Binance's codes). A later port (the real demo, a ccxt adapter) joins by adding a harness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.execution import BinanceExecution
from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.translate import UserTranslator, safe
from kinetic_empire.binance.userstream import UserStream
from kinetic_empire.binance.venues import SANDBOX, Venue
from kinetic_empire.ccxt_port.execution import CcxtExecution
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderStatus, OrderType, Side, TimeInForce
from kinetic_empire.core.events import (
    KlineClosed,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderRequest,
)
from kinetic_empire.core.ports import ExecutionPort, VenueBalance, VenuePosition
from kinetic_empire.core.rules import SymbolRules, parse_exchange_info
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.resources import default_brackets, exchange_info_payload
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.ccxt_sandbox import point_ccxt

DATA = [Path(__file__).parents[1] / "data" / "sandbox"]  # FILUSDT and NEARUSDT, 2023-08-01 and 02, real 1m klines
FIL, NEAR = "FILUSDT", "NEARUSDT"
SYMBOLS = (FIL, NEAR)
BALANCE = Decimal(10_000)


class Harness:
    """A port, the events it put on the bus, and the venue-specific ways to move time and wait."""

    def __init__(self, port: ExecutionPort, bus: EventBus, rules: dict[str, SymbolRules]) -> None:
        self.port = port
        self.rules = rules
        self.events: list[Any] = []
        for cls in (OrderAccepted, OrderRejected, OrderCanceled, OrderFilled):
            bus.subscribe(cls, self.events.append)
        self._n = 0

    async def move(self) -> None:
        """Let the market move one step (market orders fill, the price changes)."""
        raise NotImplementedError

    async def last_price(self, symbol: str) -> Decimal:
        raise NotImplementedError

    async def until(self, done: Callable[[], object], what: str) -> None:
        """Wait for the venue's answers (events or stream messages); fail with ``what`` if they never come."""
        for _ in range(2000):
            if done():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; events: {self.events}")

    def of(self, cls: type, cid: str) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls) and getattr(e, "client_order_id", None) == cid]

    def request(self, cid: str, symbol: str = FIL, **kw: Any) -> OrderRequest:
        kw.setdefault("side", Side.BUY)
        kw.setdefault("order_type", OrderType.MARKET)
        kw.setdefault("quantity", Decimal(10))
        if kw["order_type"] is OrderType.LIMIT:
            kw.setdefault("time_in_force", TimeInForce.GTC)
        return OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="contract", symbol=symbol,
                            ts_event=0, ts_init=0, **kw)

    async def resting_price(self, symbol: str, side: Side = Side.BUY) -> Decimal:
        """A limit price 5% away from the market on the passive side: rests, inside every price filter."""
        last = await self.last_price(symbol)
        factor = Decimal("0.95") if side is Side.BUY else Decimal("1.05")
        return self.rules[symbol].round_price(last * factor, side)


class SimulatedHarness(Harness):
    def __init__(self) -> None:
        rules = parse_exchange_info(exchange_info_payload(False))
        bus = EventBus()
        self.clock = ReplayClock(1_690_866_000_000)
        self.exchange = SimulatedExchange(rules, default_brackets(), clock=self.clock, emit=bus.publish,
                                          config=ExchangeConfig(initial_balance=BALANCE), symbols=SYMBOLS)
        super().__init__(SimulatedBroker(bus, self.exchange, self.clock, [(s, "1m") for s in SYMBOLS]), bus, rules)
        self.bus = bus
        self.price = {FIL: 4.0, NEAR: 1.2}

    async def move(self) -> None:
        t = self.clock.now_ms() + 60_000
        self.clock.advance_to(t)
        for sym, p in self.price.items():
            k = KlineClosed(symbol=sym, timeframe="1m", open_time=t - 60_000, open=p, high=p * 1.001, low=p * 0.999,
                            close=p, volume=1000.0, ts_event=t - 1, ts_init=t)
            self.bus.publish(k, (sym, "1m"))

    async def last_price(self, symbol: str) -> Decimal:
        return self.exchange.last_price(symbol)


class SandboxHarness(Harness):
    def __init__(self, sb: SandboxServer, port: BinanceExecution, bus: EventBus) -> None:
        super().__init__(port, bus, sb.venue.rules)
        self.sb = sb
        self.rest = port.rest

    async def move(self) -> None:
        await self.sb.step_updates(1)

    async def last_price(self, symbol: str) -> Decimal:
        return Decimal((await self.rest.get("/fapi/v1/ticker/price", {"symbol": symbol}))["price"])


@contextlib.asynccontextmanager
async def simulated() -> AsyncIterator[Harness]:
    h = SimulatedHarness()
    await h.move()  # a first price
    yield h


@contextlib.asynccontextmanager
async def sandbox() -> AsyncIterator[Harness]:
    cfg = SandboxConfig(data=DATA, symbols=list(SYMBOLS), limits=RateLimitConfig(enforce=False),
                        exchange=ExchangeConfig(initial_balance=BALANCE), warmup_klines=5)
    async with SandboxServer(cfg) as sb:
        venue = Venue(SANDBOX, sb.rest_url, sb.ws_url)
        rest = await BinanceRest(venue.rest_url, Credentials(sb.api_key, sb.api_secret, "sandbox")).start()
        bus = EventBus()
        translator = UserTranslator(bus.publish, sb.venue.market_clock.now_ms, lambda _s: 20)
        port = BinanceExecution(bus, rest, translator, unknown_grace_s=0.05)

        async def nothing() -> None:
            return None

        stream = UserStream(rest, venue, safe(translator.on_message, "user stream"), nothing)
        task = asyncio.get_running_loop().create_task(stream.run())
        try:
            await asyncio.wait_for(stream.ready.wait(), 10)
            yield SandboxHarness(sb, port, bus)
        finally:
            await port.drain()
            await stream.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await rest.close()


class CcxtHarness(Harness):
    def __init__(self, sb: SandboxServer, port: CcxtExecution, bus: EventBus) -> None:
        super().__init__(port, bus, sb.venue.rules)
        self.sb = sb
        self.exchange = port.exchange

    async def move(self) -> None:
        await self.sb.step_updates(1)

    async def last_price(self, symbol: str) -> Decimal:
        return Decimal(repr((await self.exchange.fetch_ticker(f"{symbol[:-4]}/USDT:USDT"))["last"]))


@contextlib.asynccontextmanager
async def ccxt_sandbox() -> AsyncIterator[Harness]:
    import ccxt.pro as ccxtpro

    cfg = SandboxConfig(data=DATA, symbols=list(SYMBOLS), limits=RateLimitConfig(enforce=False),
                        exchange=ExchangeConfig(initial_balance=BALANCE), warmup_klines=5)
    async with SandboxServer(cfg) as sb:
        exchange = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                                   "options": {"fetchCurrencies": False}}), sb)
        bus = EventBus()
        port = CcxtExecution(bus, exchange, unknown_bound_s=2.0)
        try:
            await port.start(SYMBOLS)
            for _ in range(1000):  # ccxt attaches its user stream lazily: wait for it before trading
                if any(sb.users.conns.values()):
                    break
                await asyncio.sleep(0.01)
            yield CcxtHarness(sb, port, bus)
        finally:
            await port.drain()
            await port.close()


PORTS = {"simulated": simulated, "sandbox": sandbox, "ccxt": ccxt_sandbox}


def contract(body: Callable[[Harness], Any]) -> Callable[[str], None]:
    """Run ``body`` against each port (the test's ``port`` parameter)."""

    @pytest.mark.parametrize("port", list(PORTS))
    def test(port: str) -> None:
        async def main() -> None:
            async with PORTS[port]() as h:
                await body(h)

        asyncio.run(asyncio.wait_for(main(), 60))

    test.__name__ = body.__name__
    test.__doc__ = body.__doc__
    return test


# ------------------------------------------------------------------------------------------ the contract


async def _market_order_fills_and_the_position_matches(h: Harness) -> None:
    await h.port.submit(h.request("mkt-1"))
    await h.until(lambda: h.of(OrderAccepted, "mkt-1"), "the acceptance")
    for _ in range(3):
        if h.of(OrderFilled, "mkt-1"):
            break
        await h.move()
    await h.until(lambda: sum(f.quantity for f in h.of(OrderFilled, "mkt-1")) == 10, "the fill")
    fills = h.of(OrderFilled, "mkt-1")
    assert fills[-1].status is OrderStatus.FILLED and all(f.side is Side.BUY for f in fills)
    open_ = [p for p in await h.port.positions() if p.quantity != 0]
    assert len(open_) == 1 and isinstance(open_[0], VenuePosition)
    pos = open_[0]
    assert (pos.symbol, pos.quantity) == (FIL, Decimal(10))
    assert pos.entry_price == sum(f.price * f.quantity for f in fills) / 10
    (usdt,) = [b for b in await h.port.balances() if b.asset == "USDT"]
    assert isinstance(usdt, VenueBalance)
    assert usdt.wallet == BALANCE - sum(f.commission for f in fills) and 0 < usdt.available < usdt.wallet
    order = await h.port.query_order(FIL, "mkt-1")
    assert order is not None and order.status is OrderStatus.FILLED and order.filled == 10 and not order.is_open


async def _resting_limit_is_found_by_client_id_and_canceled(h: Harness) -> None:
    price = await h.resting_price(FIL)
    await h.port.submit(h.request("lim-1", order_type=OrderType.LIMIT, price=price))
    await h.until(lambda: h.of(OrderAccepted, "lim-1"), "the acceptance")
    order = await h.port.query_order(FIL, "lim-1")
    assert order is not None and order.is_open
    assert (order.symbol, order.side, order.order_type, order.quantity, order.price, order.filled) == (
        FIL, Side.BUY, OrderType.LIMIT, Decimal(10), price, Decimal(0))
    await h.move()
    assert (await h.port.query_order(FIL, "lim-1")).status is OrderStatus.NEW  # type: ignore[union-attr]
    assert await h.port.cancel(FIL, "lim-1") is True
    await h.until(lambda: h.of(OrderCanceled, "lim-1"), "the cancel")
    assert (await h.port.query_order(FIL, "lim-1")).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    assert await h.port.cancel(FIL, "lim-1") is False  # already final: not an error, nothing happens
    assert len(h.of(OrderCanceled, "lim-1")) == 1 and not h.of(OrderRejected, "lim-1")


async def _cancel_all_leaves_nothing_open_on_every_symbol_and_is_idempotent(h: Harness) -> None:
    orders = [("ca-f1", FIL, Side.BUY), ("ca-f2", FIL, Side.SELL), ("ca-n1", NEAR, Side.BUY)]
    for cid, sym, side in orders:
        await h.port.submit(h.request(cid, sym, side=side, order_type=OrderType.LIMIT,
                                      price=await h.resting_price(sym, side)))
    stop = (await h.last_price(FIL) * Decimal("1.1")).quantize(h.rules[FIL].tick_size)
    await h.port.submit(h.request("ca-fs", order_type=OrderType.STOP_MARKET, trigger_price=stop))  # conditional
    cids = [o[0] for o in orders] + ["ca-fs"]
    await h.until(lambda: all(h.of(OrderAccepted, c) for c in cids), "four acceptances")
    await h.port.cancel_all(SYMBOLS)
    await h.until(lambda: all(h.of(OrderCanceled, c) for c in cids), "four cancels")
    for cid, sym in [(c, s) for c, s, _ in orders] + [("ca-fs", FIL)]:
        order = await h.port.query_order(sym, cid)
        assert order is not None and order.status is OrderStatus.CANCELED, (cid, order)
    before = len(h.events)
    await h.port.cancel_all(SYMBOLS)  # nothing left: no error, no event
    await h.move()
    assert len(h.events) == before


async def _duplicate_client_id_of_an_open_order_is_not_a_second_order(h: Harness) -> None:
    price = await h.resting_price(FIL)
    await h.port.submit(h.request("dup-1", order_type=OrderType.LIMIT, price=price))
    await h.until(lambda: h.of(OrderAccepted, "dup-1"), "the acceptance")
    lower = price - 5 * h.rules[FIL].tick_size
    await h.port.submit(h.request("dup-1", order_type=OrderType.LIMIT, price=lower))  # a retry, or a bug upstream
    await h.move()
    await asyncio.sleep(0.05)
    assert len(h.of(OrderAccepted, "dup-1")) == 1
    assert not h.of(OrderRejected, "dup-1")  # the first order is alive: a rejection would wrongly end it
    order = await h.port.query_order(FIL, "dup-1")
    assert order is not None and order.is_open and order.price == price


async def _unknown_client_id_is_unknown(h: Harness) -> None:
    assert await h.port.query_order(FIL, "never-sent") is None
    assert await h.port.cancel(FIL, "never-sent") is False
    assert not h.events


async def _filter_violations_are_rejected_with_binance_codes(h: Harness) -> None:
    rules = h.rules[FIL]
    last = await h.last_price(FIL)
    small = rules.round_qty_up(Decimal(1) / last, market=True)  # about 1 USDT: under the 5 USDT minimum
    cases = {
        "rej-notional": (h.request("rej-notional", quantity=small), -4164),
        "rej-step": (h.request("rej-step", quantity=Decimal(10) + rules.market_step_size / 10), -1111),
        "rej-tick": (h.request("rej-tick", order_type=OrderType.LIMIT,
                               price=(last * Decimal("0.95")).quantize(rules.tick_size) + rules.tick_size / 10), -1111),
        "rej-reduce": (h.request("rej-reduce", side=Side.SELL, reduce_only=True), -2022),  # nothing to reduce
    }
    for request, _code in cases.values():
        await h.port.submit(request)
    await h.until(lambda: all(h.of(OrderRejected, c) for c in cases), "four rejections")
    for cid, (_r, code) in cases.items():
        (rejection,) = h.of(OrderRejected, cid)
        assert rejection.code == code, (cid, rejection)
        assert not h.of(OrderAccepted, cid)
        assert await h.port.query_order(FIL, cid) is None


test_market_order_fills_and_the_position_matches = contract(_market_order_fills_and_the_position_matches)
test_resting_limit_is_found_by_client_id_and_canceled = contract(_resting_limit_is_found_by_client_id_and_canceled)
test_cancel_all_leaves_nothing_open_on_every_symbol_and_is_idempotent = contract(
    _cancel_all_leaves_nothing_open_on_every_symbol_and_is_idempotent)
test_duplicate_client_id_of_an_open_order_is_not_a_second_order = contract(
    _duplicate_client_id_of_an_open_order_is_not_a_second_order)
test_unknown_client_id_is_unknown = contract(_unknown_client_id_is_unknown)
test_filter_violations_are_rejected_with_binance_codes = contract(_filter_violations_are_rejected_with_binance_codes)
