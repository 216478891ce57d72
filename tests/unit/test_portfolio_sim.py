"""The portfolio against the real simulated exchange: its books must reconcile with the exchange's."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, PositionSide, Side
from kinetic_empire.core.events import KlineClosed, OrderRequest
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.broker import SimulatedBroker
from kinetic_empire.portfolio import Portfolio
from kinetic_empire.resources import default_brackets, default_symbol_rules

SYM = "BTCUSDT"
MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a funding time


@pytest.fixture(scope="module")
def rules_brackets():  # type: ignore[no-untyped-def]
    return default_symbol_rules(), default_brackets()


def test_round_trip_funding_and_liquidation_reconcile(rules_brackets) -> None:  # type: ignore[no-untyped-def]
    rules, brackets = rules_brackets
    bus = EventBus()
    clock = ReplayClock(T0)
    pf = Portfolio(bus, D("1000"))
    ex = SimulatedExchange(
        {SYM: rules[SYM]}, brackets, clock=clock, emit=bus.publish,
        config=ExchangeConfig(initial_balance=D("1000")), symbols=[SYM],
    )  # fmt: skip
    SimulatedBroker(bus, ex, clock, [(SYM, "1m")])  # the backtest's execution port
    pf.set_leverage(SYM, ex.set_leverage(SYM, 50) and 50)

    # a path: flat at 40000, up to 40400, long held across the 08:00 funding, then a crash;
    # a market order sent at a close fills at the next kline's open (= that close here)
    closes = [40_000.0] * 3 + [40_400.0] * 3 + [40_000.0] * 480 + [39_000.0, 38_000.0, 37_000.0, 36_000.0]
    plan = {1: (Side.BUY, "0.02"), 4: (Side.SELL, "0.02"), 5: (Side.BUY, "1.0")}
    timestamps = []
    for i, c in enumerate(closes):
        open_time = T0 + i * MIN
        clock.advance_to(open_time)
        prev = closes[i - 1] if i else c
        k = KlineClosed(
            symbol=SYM, timeframe="1m", open_time=open_time, open=prev, high=max(prev, c), low=min(prev, c),
            close=c, volume=1.0, ts_event=open_time + MIN - 1, ts_init=open_time + MIN - 1,
        )  # fmt: skip
        bus.publish(k, (SYM, "1m"))
        timestamps.append(k.ts_event)
        if i in plan:
            side, qty = plan[i]
            clock.advance_to(k.ts_event)
            bus.publish(
                OrderRequest(
                    client_order_id=f"c{i}", intent_id=f"c{i}", strategy_id="test", symbol=SYM, side=side,
                    order_type=OrderType.MARKET, quantity=D(qty), ts_event=k.ts_event, ts_init=k.ts_event,
                )
            )  # fmt: skip

    first, liq = pf.trades
    assert first.side is PositionSide.LONG and first.exit_reason == "signal"
    assert (first.entry_price, first.exit_price, first.gross_pnl) == (D(40_000), D(40_400), D(8))
    assert str(first.entry_price) == "40000"
    assert liq.exit_reason == "liquidation" and liq.quantity == D(1)
    assert liq.funding < 0  # a long pays positive funding at 08:00
    assert pf.liquidation_count == 1
    assert pf.positions() == []

    # the portfolio's books agree with the exchange's and with themselves
    assert pf.wallet_balance() == ex.wallet
    assert pf.wallet_balance() == pf.initial_balance + sum((t.net_pnl for t in pf.trades), D(0))
    assert pf.fees_total == sum((t.fees for t in pf.trades), D(0))
    assert pf.fees_total == -sum(
        (r["income"] for r in ex.income if r["incomeType"] in ("COMMISSION", "INSURANCE_CLEAR")), D(0)
    )
    assert pf.funding_total == liq.funding
    curve = pf.equity_curve(np.array(timestamps, dtype=np.int64), {SYM: np.array(closes)})
    assert curve[-1] == pytest.approx(float(ex.wallet), abs=1e-9)
    assert curve[0] == 1000.0
