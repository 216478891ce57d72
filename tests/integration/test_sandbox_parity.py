"""One model: the same strategy on the same klines trades the same in a backtest and through the sandbox.

The strategy (an SMA cross with a stop-loss) decides only on closed klines. In the backtest it calls the
simulated exchange directly, kline by kline, as the backtester's broker does; through the sandbox it
reads kline closes from the WebSocket stream and trades over signed REST (a MARKET entry and exit, a
STOP_MARKET algo order as the stop).

The sandbox runs in its opt-in ``market_fills="next_update"`` mode: by default it fills a market order
on arrival against its book (at the ask or bid of that moment, as Binance does), while the backtest
fills it at the next kline's open (the engine's documented rule for closed-kline strategies). In this
mode the sandbox queues the order for the next price update, exactly as the backtest does, so any
difference below comes from the feed or the wire, never from two fill rules.

Allowed differences, and why: with one update per kline the sandbox feeds the exchange exactly what the
backtester feeds it, so everything must match (prices, quantities, sides, fees, times). With four
updates per kline a kline is fed as segments along open -> low -> high -> close (or open -> high ->
low -> close): market orders still fill at the next kline's open and stops at their trigger price (or
the open when the open gaps through), so prices and quantities must match, but a fill inside a kline is
stamped with its segment's time, not the kline's open time; and where one kline reaches both a stop
and a take-profit or limit of the same position, the backtest assumes the stop first while the sandbox
follows the path, so those klines may differ (this strategy has no take-profit, so none occur here).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.data import load_klines
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.resources import default_brackets, default_symbol_rules
from tests.support.sandbox import DATA, SYM, Client, recv_json, run

pytestmark = pytest.mark.integration

N = 400
QTY = Decimal("20")
TICK = Decimal("0.001")


class Strategy:
    """SMA(5) / SMA(20) cross, long only, 0.25% stop below the entry close."""

    def __init__(self) -> None:
        self.closes: list[float] = []
        self.long = False

    def on_close(self, close: float) -> list[tuple[str, Decimal | None]]:
        self.closes.append(close)
        if len(self.closes) < 21:
            return []
        c = np.array(self.closes[-21:])
        fast_now, slow_now = c[-5:].mean(), c[-20:].mean()
        fast_prev, slow_prev = c[-6:-1].mean(), c[-21:-1].mean()
        if not self.long and fast_prev <= slow_prev and fast_now > slow_now:
            self.long = True
            stop = (Decimal(repr(close)) * Decimal("0.9975")).quantize(TICK)
            return [("buy", None), ("stop", stop)]
        if self.long and fast_prev >= slow_prev and fast_now < slow_now:
            self.long = False
            return [("cancel_stop", None), ("sell", None)]
        return []

    def stopped(self) -> None:
        self.long = False


def backtest() -> list[tuple[str, Decimal, Decimal, int]]:
    frame = load_klines([DATA], symbol=SYM, timeframe="1m")
    clock = ReplayClock()
    ex = SimulatedExchange(default_symbol_rules(), default_brackets(), clock=clock, emit=lambda e: None,
                           config=ExchangeConfig(), symbols=[SYM])
    strat = Strategy()
    stop_id: int | None = None
    for i in range(N):
        t = int(frame.open_time[i])
        clock.time_ms = t + 59_999
        ex.on_bar(SYM, t, float(frame.open[i]), float(frame.high[i]), float(frame.low[i]), float(frame.close[i]))
        if strat.long and ex.position(SYM)[0] == 0 and stop_id is not None:
            strat.stopped()
        for action, price in strat.on_close(float(frame.close[i])):
            if action == "buy":
                ex.submit(symbol=SYM, side=Side.BUY, order_type=OrderType.MARKET, quantity=QTY)
            elif action == "stop":
                stop_id = ex.submit(symbol=SYM, side=Side.SELL, order_type=OrderType.STOP_MARKET, quantity=QTY,
                                    trigger_price=price, reduce_only=True, algo=True).order_id
            elif action == "cancel_stop" and stop_id is not None:
                if ex.get_order(SYM, stop_id).is_open:
                    ex.cancel(SYM, order_id=stop_id)
            elif action == "sell":
                ex.submit(symbol=SYM, side=Side.SELL, order_type=OrderType.MARKET, quantity=QTY, reduce_only=True)
    return [(t["side"], t["price"], t["qty"], t["time"]) for t in ex.trades]


def sandbox_run(updates_per_kline: int) -> list[tuple[str, Decimal, Decimal, int]]:
    trades: list[tuple[str, Decimal, Decimal, int]] = []

    async def body(sb, c: Client) -> None:
        strat = Strategy()
        stop_algo: int | None = None
        async with c.session.ws_connect(f"{sb.ws_url}/market/ws/filusdt@kline_1m") as ws:
            for _ in range(N):
                await sb.step(1)
                while True:
                    k = (await recv_json(ws))["k"]
                    if k["x"]:
                        break
                if strat.long and stop_algo is not None:
                    a = (await c.get("/fapi/v1/algoOrder", {"algoId": stop_algo})).data
                    if a["algoStatus"] == "FINISHED":
                        strat.stopped()
                for action, price in strat.on_close(float(k["c"])):
                    if action == "buy":
                        r = await c.order(side="BUY", type="MARKET", quantity=str(QTY))
                    elif action == "stop":
                        r = await c.post("/fapi/v1/algoOrder", {
                            "algoType": "CONDITIONAL", "symbol": SYM, "side": "SELL", "type": "STOP_MARKET",
                            "triggerPrice": str(price), "quantity": str(QTY), "reduceOnly": "true"})
                        stop_algo = r.data["algoId"]
                    elif action == "cancel_stop":
                        r = await c.delete("/fapi/v1/algoOrder", {"algoId": stop_algo})
                        assert r.status == 200 or r.code == -2011
                        continue
                    else:
                        r = await c.order(side="SELL", type="MARKET", quantity=str(QTY), reduceOnly="true")
                    assert r.status == 200, r
        rows = (await c.get("/fapi/v1/userTrades", {"symbol": SYM, "startTime": 1_690_848_000_000,
                                                    "limit": 1000})).data
        trades.extend((t["side"], Decimal(t["price"]), Decimal(t["qty"]), t["time"]) for t in rows)

    run(body, timeout=60, updates_per_kline=updates_per_kline, market_fills="next_update")
    return trades


@pytest.mark.parametrize("updates_per_kline", [1, 4])
def test_backtest_and_sandbox_trade_alike(updates_per_kline: int) -> None:
    expected = backtest()
    got = sandbox_run(updates_per_kline)
    assert len(expected) >= 6, "the window should hold several round trips"
    kinds = {e[0] for e in expected}
    assert kinds == {"BUY", "SELL"}
    if updates_per_kline == 1:
        assert got == expected
    else:
        assert [g[:3] for g in got] == [e[:3] for e in expected]
        assert [g[3] // 60_000 for g in got] == [e[3] // 60_000 for e in expected]
