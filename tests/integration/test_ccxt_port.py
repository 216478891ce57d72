"""The ccxt port under faults the contract suite does not inject: an order whose outcome is unknown is
looked up, never sent again; markets become SymbolRules exactly as the native adapter parses them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from kinetic_empire.ccxt_port.execution import CcxtExecution
from kinetic_empire.ccxt_port.markets import linear_swaps, symbol_rules
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import Alert, OrderAccepted, OrderFilled, OrderRejected, OrderRequest
from kinetic_empire.exchange import ExchangeConfig
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.ccxt_sandbox import point_ccxt

pytestmark = pytest.mark.integration

DATA = [Path(__file__).parents[1] / "data" / "sandbox"]
FIL = "FILUSDT"


@contextlib.asynccontextmanager
async def started() -> AsyncIterator[tuple[SandboxServer, CcxtExecution, list[Any]]]:
    cfg = SandboxConfig(data=DATA, symbols=[FIL, "NEARUSDT"], limits=RateLimitConfig(enforce=False),
                        exchange=ExchangeConfig(initial_balance=Decimal(10_000)), warmup_klines=5)
    async with SandboxServer(cfg) as sb:
        ex = point_ccxt(ccxtpro.binanceusdm({"apiKey": sb.api_key, "secret": sb.api_secret,
                                             "options": {"fetchCurrencies": False}}), sb)
        bus = EventBus()
        events: list[Any] = []
        for cls in (OrderAccepted, OrderRejected, OrderFilled, Alert):
            bus.subscribe(cls, events.append)
        port = CcxtExecution(bus, ex, unknown_bound_s=1.5)
        try:
            await port.start([FIL])
            yield sb, port, events
        finally:
            await port.drain()
            await port.close()


def request(cid: str) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=cid, strategy_id="t", symbol=FIL, side=Side.BUY,
                        order_type=OrderType.MARKET, quantity=Decimal(10), ts_event=0, ts_init=0)


async def venue_orders(sb: SandboxServer) -> list[Any]:
    (acct,) = sb.venue.accounts.values()
    return list(acct.all_orders(FIL)) if FIL in acct.exchange.symbols else []


def test_an_executed_order_answered_with_a_5xx_is_found_not_resent() -> None:
    async def body() -> None:
        async with started() as (sb, port, events):
            sb.venue.faults.cfg.update({"enabled": True, "error_executed_rate": 1.0})
            await port.submit(request("unk-1"))
            sb.venue.faults.cfg.update({"enabled": False, "error_executed_rate": 0.0})
            assert [o.client_order_id for o in await venue_orders(sb)] == ["unk-1"]  # placed exactly once
            assert [type(e).__name__ for e in events] == ["OrderAccepted"]
            assert sb.venue.faults.counts["error-executed"] == 1

    asyncio.run(asyncio.wait_for(body(), 60))


def test_an_order_the_venue_never_got_is_an_alert_not_a_resend() -> None:
    async def body() -> None:
        async with started() as (sb, port, events):
            sb.venue.faults.cfg.update({"enabled": True, "error_rejected_rate": 1.0})
            await port.submit(request("unk-2"))
            assert await venue_orders(sb) == []
            assert sb.venue.faults.counts["error-rejected"] == 1  # one attempt, no resend
            (alert,) = [e for e in events if isinstance(e, Alert)]
            assert alert.kind == "unknown_order_outcome" and "unk-2" in alert.message
            assert not [e for e in events if isinstance(e, OrderAccepted | OrderRejected)]

    asyncio.run(asyncio.wait_for(body(), 60))


def test_markets_become_the_same_rules_as_exchange_info() -> None:
    async def body() -> None:
        async with started() as (sb, port, _events):
            markets = linear_swaps(await port.exchange.load_markets())
            assert FIL in markets
            assert symbol_rules(markets[FIL]) == sb.venue.rules[FIL]
            # a venue without Binance's raw entry: rules from ccxt's unified precision and limits
            unified = {k: v for k, v in markets[FIL].items() if k != "info"} | {"info": {}}
            rules = symbol_rules(unified)
            native = sb.venue.rules[FIL]
            assert (rules.symbol, rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
                FIL, native.tick_size, native.step_size, native.min_qty, native.min_notional)

    asyncio.run(asyncio.wait_for(body(), 60))
