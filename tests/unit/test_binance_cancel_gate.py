"""Nothing reaches the venue unjournaled, cancels included (binance/execution.py).

``BinanceExecution.cancel``/``cancel_all`` called directly, without the bus's command, used to skip the
journal gate and send the DELETE. With a journal gating sends (the live engine) such a call is now refused;
the same call on a port without a journal (backtest tools, the port contract suite) still goes out, and a
command recorded in a real journal passes the gate and is sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from kinetic_empire.binance.execution import BinanceExecution
from kinetic_empire.binance.translate import UserTranslator
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ManualClock
from kinetic_empire.core.events import CancelAllRequest, CancelRequest
from kinetic_empire.live.journal import Journal
from tests.unit.test_binance_unknown_outcome import ScriptedVenue

CANCELED = {"orderId": 7, "symbol": "ETHUSDT", "status": "CANCELED", "clientOrderId": "lim-1", "price": "2000",
            "avgPrice": "0", "origQty": "0.005", "executedQty": "0", "type": "LIMIT", "origType": "LIMIT",
            "side": "BUY", "reduceOnly": False, "closePosition": False, "updateTime": 1}
DELETES = [("DELETE", "/fapi/v1/order"), ("DELETE", "/fapi/v1/allOpenOrders"), ("DELETE", "/fapi/v1/algoOpenOrders")]


def port(journal: Journal | None) -> tuple[ScriptedVenue, BinanceExecution]:
    venue = ScriptedVenue()
    for method, path in DELETES:
        venue.on(method, path, lambda _p: CANCELED if _p.get("origClientOrderId") else {"code": 200, "msg": "ok"})
    bus = EventBus()
    clock = ManualClock()
    translator = UserTranslator(bus.publish, clock.now_ms, lambda _s: 1)
    gate: Any = None if journal is None else journal.confirm
    return venue, BinanceExecution(bus, venue, translator, timer=clock, before_send=gate)  # type: ignore[arg-type]


def test_a_direct_cancel_on_a_journaled_port_is_refused_and_never_sent(tmp_path: Path) -> None:
    async def body() -> None:
        journal = Journal(tmp_path / "journal.sqlite")
        venue, p = port(journal)
        assert await p.cancel("ETHUSDT", "lim-1") is False
        await p.cancel_all(iter(["ETHUSDT"]))
        assert venue.calls == [] and p.refused == 2
        assert journal.failure == ""  # a refused direct call is not a journal failure: entries do not pause

        cancel = CancelRequest(client_order_id="lim-1", symbol="ETHUSDT", strategy_id="op", ts_event=1, ts_init=1)
        journal.record(cancel)
        assert await p.cancel("ETHUSDT", "lim-1", cancel) is True  # journaled first, then sent
        every = CancelAllRequest(symbol="ETHUSDT", strategy_id="op", ts_event=2, ts_init=2)
        journal.record(every)
        await p.cancel_all(["ETHUSDT"], every)
        assert venue.calls == DELETES
        journal.close()

    asyncio.run(body())


def test_a_port_without_a_journal_still_cancels_directly() -> None:
    async def body() -> None:
        venue, p = port(None)
        assert await p.cancel("ETHUSDT", "lim-1") is True
        await p.cancel_all(iter(["ETHUSDT"]))  # any iterable, read once
        assert venue.calls == DELETES and p.refused == 0

    asyncio.run(body())
