"""The live engine meets the stop-placement race with no admin hold (issue 12 item 13, second half).

The sandbox plays a price update between the entry's fill and the engine's next request
(``FaultConfig.updates_after_fill``), and the crafted klines gap down there, through the stop the engine is
about to place: the venue answers -2021 "Order would immediately trigger", and the engine's protection
guard closes the position at market, reduce-only, at the slipped price, once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.core.enums import IntentAction, OrderType
from kinetic_empire.core.events import OrderFilled, OrderIntent, OrderRejected, OrderRequest
from kinetic_empire.live.config import LiveConfig
from kinetic_empire.risk.guard import SOURCE, WOULD_TRIGGER
from kinetic_empire.sandbox import FaultConfig
from tests.support.crafted import write_klines
from tests.support.live import RISK, K, sandbox_position, step, stepped_engine
from tests.support.waiting import until

pytestmark = pytest.mark.integration
FIL = "FILUSDT"
FLAT = ("4.000", "4.001", "3.999", "4.000")
GAP = ("3.900", "3.900", "3.880", "3.890")


def config(data: Path) -> LiveConfig:
    quiet = [{"name": "ema_cross", "symbols": [FIL], "timeframe": "1m", "params": {"fast": 40, "slow": 100}}]
    return LiveConfig.from_mapping({
        "live": {"window": 120, "request_timeout_s": 120}, "strategies": quiet, "risk": RISK,
        "sandbox": {"data": str(data), "speed": 0, "start": "2023-08-01T02:16:00", "updates_per_kline": K},
    })


def test_the_price_gaps_through_the_stop_between_fill_and_stop_request(tmp_path: Path) -> None:
    data = write_klines(tmp_path / "data", [FLAT] * 138 + [GAP] * 6)  # kline 138 (02:18) gaps down

    async def body() -> None:
        async with stepped_engine(tmp_path / "run", config=config(data),
                                  faults=FaultConfig(enabled=True, updates_after_fill=1)) as (sb, engine):
            seen: list[Any] = []
            engine.bus.subscribe(object, seen.append)
            await step(sb, engine, 2)  # 02:16 and 02:17 played; the next update opens the gap
            assert sb.account().exchange.last_price(FIL) == Decimal("4.000")
            now = engine.clock.now_ms()
            engine.bus.publish(OrderIntent(intent_id="gap", strategy_id="test", symbol=FIL,
                                           action=IntentAction.OPEN_LONG, stop_loss=3.95, reference_price=4.0,
                                           ts_event=now, ts_init=now))
            await until(lambda: sandbox_position(sb, FIL) == 0 and any(
                isinstance(e, OrderFilled) and e.client_order_id != "gap-e" for e in seen), "the position closed")
            await engine.settle(0.05)
            fills = [e for e in seen if isinstance(e, OrderFilled)]
            entry = [f for f in fills if f.client_order_id == "gap-e"]
            exits = [f for f in fills if f.client_order_id != "gap-e"]
            assert entry and all(f.price >= Decimal("4.000") for f in entry)  # filled before the move
            assert exits and all(f.price <= Decimal("3.900") for f in exits)  # slipped past the 3.95 stop
            (refusal,) = [e for e in seen if isinstance(e, OrderRejected) and e.client_order_id == "gap-sl"]
            assert refusal.code == WOULD_TRIGGER
            closes = [e for e in seen if isinstance(e, OrderRequest) and e.strategy_id == SOURCE]
            assert [(c.order_type, c.reduce_only) for c in closes] == [(OrderType.MARKET, True)]
            assert engine.guard.breaches == 1 and engine.portfolio.position(FIL).quantity == 0
            assert sb.faults.counts["move-after-fill"] >= 1

    asyncio.run(asyncio.wait_for(body(), 120))
