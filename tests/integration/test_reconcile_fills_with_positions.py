"""A reconciliation applies the fills it reads and the positions together (binance/venue_reconcile.py).

Found by the soak: ``BinanceExecution.reconcile`` published the fills the stream had missed as it read them,
and fetched the positions afterwards, so for a REST round trip the account held an exit's fill but still
showed the position from before it; a kline handled meanwhile could decide another CLOSE on it. Now every
read comes first and the fills, final states, positions and balance are applied in one step.

Over real sockets on the sandbox: the user stream's messages are withheld (as in a gap), a close fills on the
venue, and the REST pass brings its fill. Whatever runs on the loop after the fill is published (a probe
scheduled from the fill's handler stands for the next kline's strategy and the gate) must already see the
position that includes it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderFilled, OrderRequest, PositionChanged
from kinetic_empire.live.config import LiveConfig
from tests.support.live import DATA, RISK, START, K, sandbox_position, step, stepped_engine

pytestmark = pytest.mark.integration

FIL = "FILUSDT"
QUIET = [{"name": "rsi_reversion", "symbols": [FIL], "timeframe": "1m",  # never trades: the orders are the test's
          "params": {"period": 50, "oversold": 0.01, "overbought": 99.99, "exit_level": 100}}]


def test_no_handler_sees_a_reconciled_fill_without_its_position(tmp_path: Path) -> None:
    async def body() -> None:
        cfg = LiveConfig.from_mapping({"live": {"window": 120}, "strategies": QUIET, "risk": RISK,
                                       "sandbox": {"data": str(DATA), "speed": 0, "start": START,
                                                   "updates_per_kline": K}})
        async with stepped_engine(tmp_path / "rec", config=cfg, stale_after_s=0) as (sb, engine):
            await step(sb, engine, 1)
            engine.bus.publish(OrderRequest(client_order_id="entry-1", intent_id="entry", strategy_id="test",
                                            symbol=FIL, side=Side.BUY, order_type=OrderType.MARKET,
                                            quantity=Decimal(100), ts_event=0, ts_init=0))  # the test's setup
            await step(sb, engine, 1)
            assert engine.portfolio.position(FIL).quantity == Decimal(100)

            held: list[Any] = []
            stream = engine.user._on_event
            engine.user._on_event = held.append  # a gap: the stream's messages never reach the engine
            intent = engine.risk.commands.close_position(FIL, source="ops", cause="gap")
            assert intent is not None
            await engine.execution.drain()
            assert sandbox_position(sb, FIL) == 0  # filled on the venue; the engine has not heard of the fill
            assert engine.portfolio.position(FIL).quantity == Decimal(100)

            order: list[str] = []
            seen_after_fill: list[Decimal] = []
            loop = asyncio.get_running_loop()

            def on_fill(f: OrderFilled) -> None:
                order.append("fill")
                loop.call_soon(lambda: seen_after_fill.append(engine.portfolio.position(FIL).quantity))

            engine.bus.subscribe(OrderFilled, on_fill)
            engine.bus.subscribe(PositionChanged, lambda p: order.append(f"position {p.quantity:f}"))
            await engine.execution.reconcile([FIL])
            await asyncio.sleep(0)  # the probe runs at the next turn of the loop, at the latest
            engine.user._on_event = stream
            assert order == ["fill", "position 0.0"], order
            assert seen_after_fill == [Decimal(0)], seen_after_fill  # never the 100 from before the fill
            assert engine.portfolio.position(FIL).quantity == 0

    asyncio.run(body())
