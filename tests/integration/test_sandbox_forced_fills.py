"""Liquidation and auto-deleverage fills as Binance sends them, end to end over loopback (issue 12 item 12).

The sandbox liquidates a 20x long when a crafted kline crashes through its liquidation price, and an admin
action deleverages a position. Both reach the adapter's real user stream (``UserStream`` + ``UserTranslator``)
in Binance's documented shapes: client id ``autoclose-...`` / ``adl_autoclose``, order type ``LIQUIDATION``,
``x=CALCULATED``, ``X=NEW_INSURANCE`` / ``NEW_ADL`` (Binance's "Event Order Update" page; the ADL capture in
tests/data/binance). The adapter must record each fill: quantity, price, fee and realised PnL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kinetic_empire.binance.rest import BinanceRest
from kinetic_empire.binance.signing import Credentials
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.binance.userstream import UserStream
from kinetic_empire.binance.venues import Venue
from kinetic_empire.core.events import OrderFilled
from kinetic_empire.sandbox import RateLimitConfig, SandboxConfig, SandboxServer
from tests.support.crafted import write_klines
from tests.support.sandbox import DATA
from tests.support.waiting import until

pytestmark = pytest.mark.integration

FLAT = ("4.000", "4.001", "3.999", "4.000")


def crash_klines(folder: Path) -> Path:
    """FILUSDT 1m klines flat at 4.000 for 5 minutes, then a kline down to 1.000 (-75 %)."""
    return write_klines(folder, [FLAT] * 5 + [("4.000", "4.000", "1.000", "1.000")] * 3)


@contextlib.asynccontextmanager
async def adapter(data: Path) -> AsyncIterator[tuple[SandboxServer, BinanceRest, list[Any], list[Mapping[str, Any]]]]:
    cfg = SandboxConfig(data=[data], symbols=["FILUSDT"], limits=RateLimitConfig(enforce=False), admin=True)
    async with SandboxServer(cfg) as sb:
        rest = await BinanceRest(sb.rest_url, Credentials(sb.api_key, sb.api_secret, "sandbox")).start()
        events: list[Any] = []
        raw: list[Mapping[str, Any]] = []
        translator = UserTranslator(events.append, sb.venue.market_clock.now_ms, lambda _s: 20)

        def on_message(msg: Mapping[str, Any]) -> None:
            raw.append(msg)
            translator.on_message(msg)

        async def nothing() -> None:
            return None

        stream = UserStream(rest, Venue("sandbox", sb.rest_url, sb.ws_url), on_message, nothing)
        task = asyncio.get_running_loop().create_task(stream.run())
        try:
            await asyncio.wait_for(stream.ready.wait(), 10)
            yield sb, rest, events, raw
        finally:
            await stream.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await rest.close()


def forced_fill(events: list[Any], prefix: str) -> OrderFilled | None:
    return next((e for e in events if isinstance(e, OrderFilled) and e.client_order_id.startswith(prefix)), None)


def test_a_liquidation_reaches_the_adapter_as_binance_sends_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with adapter(crash_klines(tmp_path / "data")) as (sb, rest, events, raw):
            await sb.step(3)
            await rest.signed("POST", "/fapi/v1/leverage", {"symbol": "FILUSDT", "leverage": 20})
            await rest.signed("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "BUY", "type": "MARKET",
                                                         "quantity": "4000"}, idempotent=False)
            await until(lambda: forced_fill(events, "") is not None, "the entry's fill on the stream")
            await sb.step(4)  # the crash
            await until(lambda: forced_fill(events, "autoclose-") is not None, "the liquidation fill on the stream")
            wire = next(m["o"] for m in raw if m.get("e") == "ORDER_TRADE_UPDATE"
                        and str(m["o"]["c"]).startswith("autoclose-"))
            assert (wire["o"], wire["ot"], wire["f"], wire["x"], wire["X"]) == (
                "LIQUIDATION", "LIQUIDATION", "IOC", "CALCULATED", "NEW_INSURANCE")
            fill = forced_fill(events, "autoclose-")
            assert fill is not None and fill.liquidation and fill.quantity == Decimal("4000")
            assert fill.price == Decimal(wire["L"]) and fill.realized_pnl == Decimal(wire["rp"]) < 0
            assert fill.commission == Decimal(wire["n"]) > 0 and fill.commission_asset == "USDT"
            assert sb.account().exchange.position("FILUSDT")[0] == 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_an_auto_deleverage_reaches_the_adapter_as_binance_sends_it() -> None:
    async def body() -> None:
        async with adapter(DATA) as (sb, rest, events, raw):
            await sb.step(3)
            await rest.signed("POST", "/fapi/v1/order", {"symbol": "FILUSDT", "side": "SELL", "type": "MARKET",
                                                         "quantity": "100"}, idempotent=False)
            await until(lambda: forced_fill(events, "") is not None, "the entry's fill on the stream")
            async with aiohttp.ClientSession() as http, http.post(
                    f"{sb.rest_url}/sandbox-admin/adl", params={"symbol": "FILUSDT", "quantity": "40"}) as r:
                assert r.status == 200 and (await r.json())["accounts"] == [sb.api_key[:8]]
            await until(lambda: forced_fill(events, "adl_autoclose") is not None, "the ADL fill on the stream")
            wire = next(m["o"] for m in raw if m.get("e") == "ORDER_TRADE_UPDATE" and m["o"]["x"] == "CALCULATED")
            assert (wire["c"], wire["o"], wire["x"], wire["X"], wire["S"]) == (
                "adl_autoclose", "LIQUIDATION", "CALCULATED", "NEW_ADL", "BUY")
            fill = forced_fill(events, "adl_autoclose")
            assert fill is not None and fill.liquidation and fill.quantity == Decimal("40")
            assert fill.realized_pnl == Decimal(wire["rp"])
            assert sb.account().exchange.position("FILUSDT")[0] == Decimal("-60")
            async with aiohttp.ClientSession() as http, http.post(
                    f"{sb.rest_url}/sandbox-admin/adl", params={"symbol": "FILUSDT", "quantity": "x"}) as r:
                assert r.status == 400 and (await r.json())["code"] == -1130

    asyncio.run(asyncio.wait_for(body(), 60))
