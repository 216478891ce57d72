"""The simulated futures exchange: order statuses, fills, fees, funding, triggers, liquidation."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderStatus, OrderType, Side, TimeInForce
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.events import (
    BalanceChanged,
    FundingApplied,
    Liquidated,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    PositionChanged,
)
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange

T0 = 1_690_848_000_000  # 2023-08-01 00:00 UTC, a funding time


class Venue:
    """A simulated exchange with FILUSDT, recording what it emits."""

    def __init__(self, rules: Any, brackets: Any, **config: Any) -> None:
        self.clock = ReplayClock(T0 - 60_000)
        self.events: list[Any] = []
        cfg = {"funding_rate": D(0), **config}
        self.ex = SimulatedExchange(
            rules, brackets, clock=self.clock, emit=self.events.append, config=ExchangeConfig(**cfg),
            symbols=["FILUSDT"],
        )  # fmt: skip
        self.t = T0 - 60_000
        self.bar(4.0, 4.0, 4.0, 4.0)  # a first price

    def bar(self, o: float, h: float, low: float, c: float) -> None:
        self.t += 60_000
        self.clock.advance_to(self.t + 59_999)
        self.ex.on_bar("FILUSDT", self.t, o, h, low, c)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def buy(self, qty: str = "100", **kw: Any) -> Any:
        return self.ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=kw.pop("order_type", OrderType.MARKET),
                              quantity=D(qty), **kw)  # fmt: skip

    def sell(self, qty: str = "100", **kw: Any) -> Any:
        return self.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=kw.pop("order_type", OrderType.MARKET),
                              quantity=D(qty), **kw)  # fmt: skip


@pytest.fixture()
def venue(rules, brackets) -> Venue:
    return Venue(rules, brackets)


def test_market_order_fills_at_the_next_open_with_taker_fee(venue):
    order = venue.buy("100")
    assert order.status is OrderStatus.NEW and venue.of(OrderAccepted)
    assert not venue.of(OrderFilled)
    venue.bar(4.1, 4.2, 4.0, 4.15)
    (fill,) = venue.of(OrderFilled)
    assert fill.price == D("4.100") and fill.quantity == D("100") and not fill.is_maker
    assert fill.commission == D("4.100") * 100 * D("0.0005")
    assert order.status is OrderStatus.FILLED
    qty, entry, _ = venue.ex.position("FILUSDT")
    assert qty == D(100) and entry == D("4.100")
    assert venue.ex.wallet == D(10000) - fill.commission
    assert venue.of(PositionChanged)[-1].quantity == D(100)
    assert venue.of(BalanceChanged)[-1].wallet_balance == venue.ex.wallet


def test_round_trip_realized_pnl_and_average_entry(venue):
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    venue.buy("100")
    venue.bar(5.0, 5.0, 5.0, 5.0)
    assert venue.ex.position("FILUSDT")[1] == D("4.5")  # weighted average
    venue.sell("200")
    venue.bar(6.0, 6.0, 6.0, 6.0)
    fills = venue.of(OrderFilled)
    assert fills[-1].realized_pnl == D("300.00000000")  # (6 - 4.5) x 200
    fees = sum(f.commission for f in fills)
    assert venue.ex.wallet == D(10000) + D(300) - fees
    assert venue.ex.position("FILUSDT")[0] == 0


def test_flip_resets_the_entry_price(venue):
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    venue.sell("150")
    venue.bar(4.5, 4.5, 4.5, 4.5)
    qty, entry, _ = venue.ex.position("FILUSDT")
    assert qty == D(-50) and entry == D("4.5")
    assert venue.of(OrderFilled)[-1].realized_pnl == D("50.00000000")


def test_limit_order_rests_then_fills_as_maker_at_its_price(venue):
    order = venue.buy("100", order_type=OrderType.LIMIT, price=D("3.900"))
    venue.bar(4.0, 4.05, 3.95, 4.0)
    assert not venue.of(OrderFilled)
    venue.bar(4.0, 4.0, 3.85, 3.95)
    (fill,) = venue.of(OrderFilled)
    assert fill.is_maker and fill.price == D("3.900") and order.status is OrderStatus.FILLED
    assert fill.commission == D("3.900") * 100 * D("0.0002")


def test_post_only_that_would_trade_is_rejected(venue):
    with pytest.raises(ExchangeError) as info:
        venue.buy("100", order_type=OrderType.LIMIT, price=D("4.100"), time_in_force=TimeInForce.GTX)
    assert info.value.code == -5022


def test_ioc_that_cannot_fill_expires(venue):
    order = venue.buy("100", order_type=OrderType.LIMIT, price=D("3.900"), time_in_force=TimeInForce.IOC)
    venue.bar(4.0, 4.0, 3.8, 3.9)
    assert order.status is OrderStatus.EXPIRED and venue.of(OrderExpired)
    assert not venue.of(OrderFilled)


def test_fok_not_marketable_is_rejected(venue):
    with pytest.raises(ExchangeError) as info:
        venue.buy("100", order_type=OrderType.LIMIT, price=D("3.900"), time_in_force=TimeInForce.FOK)
    assert info.value.code == -5021


def test_cancel_and_unknown_order(venue):
    order = venue.buy("100", order_type=OrderType.LIMIT, price=D("3.900"), client_order_id="abc")
    venue.ex.cancel("FILUSDT", client_order_id="abc")
    assert order.status is OrderStatus.CANCELED and venue.of(OrderCanceled)
    with pytest.raises(ExchangeError) as info:
        venue.ex.cancel("FILUSDT", client_order_id="abc")
    assert info.value.code == -2011
    with pytest.raises(ExchangeError) as info:
        venue.ex.get_order("FILUSDT", order_id=999)
    assert info.value.code == -2013


def test_conditional_orders_need_the_algo_endpoint(venue):
    with pytest.raises(ExchangeError) as info:
        venue.sell("100", order_type=OrderType.STOP_MARKET, trigger_price=D("3.5"))
    assert info.value.code == -4120


def test_reduce_only_without_position_is_rejected(venue):
    with pytest.raises(ExchangeError) as info:
        venue.sell("100", reduce_only=True)
    assert info.value.code == -2022


def test_margin_is_insufficient(venue):
    venue.ex.set_leverage("FILUSDT", 1)
    with pytest.raises(ExchangeError) as info:
        venue.buy("3000")  # 12,000 USDT at 1x with 10,000 in the wallet
    assert info.value.code == -2019


def test_leverage_above_the_bracket_is_refused(venue):
    with pytest.raises(ExchangeError) as info:
        venue.ex.set_leverage("FILUSDT", 76)
    assert info.value.code == -4028


def test_filters_reject_with_binance_codes(venue):
    with pytest.raises(ExchangeError) as info:
        venue.buy("1")  # 4 USDT < 5 min notional
    assert info.value.code == -4164
    with pytest.raises(ExchangeError) as info:
        venue.buy("10.05")
    assert info.value.code == -1111
    with pytest.raises(ExchangeError) as info:
        venue.buy("100", order_type=OrderType.LIMIT, price=D("4.0005"))
    assert info.value.code == -1111


def test_stop_loss_wins_when_stop_and_take_profit_fire_in_one_kline(venue):
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    stop = venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET,
                           trigger_price=D("3.800"), close_position=True, algo=True)  # fmt: skip
    tp = venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=OrderType.TAKE_PROFIT_MARKET,
                         trigger_price=D("4.300"), close_position=True, algo=True)  # fmt: skip
    venue.bar(4.0, 4.4, 3.7, 4.2)  # both levels traded
    fills = venue.of(OrderFilled)
    assert fills[-1].client_order_id == stop.client_order_id and fills[-1].price == D("3.800")
    assert stop.status is OrderStatus.FILLED and tp.status is OrderStatus.EXPIRED
    assert venue.ex.position("FILUSDT")[0] == 0


def test_stop_gapped_through_fills_at_the_open(venue):
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger_price=D("3.800"),
                    close_position=True, algo=True)  # fmt: skip
    venue.bar(3.6, 3.7, 3.5, 3.65)
    assert venue.of(OrderFilled)[-1].price == D("3.600")


def test_take_profit_fills_at_its_trigger(venue):
    venue.sell("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    venue.ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.TAKE_PROFIT_MARKET,
                    trigger_price=D("3.500"), close_position=True, algo=True)  # fmt: skip
    venue.bar(3.9, 3.95, 3.4, 3.45)
    fill = venue.of(OrderFilled)[-1]
    assert fill.price == D("3.500") and fill.realized_pnl == D("50.00000000")


def test_slippage_moves_taker_fills_against_the_taker(rules, brackets):
    venue = Venue(rules, brackets, slippage_bps=D(10))
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    assert venue.of(OrderFilled)[-1].price == D("4.004")  # 4.0 x 1.001, rounded up to the tick


def test_partial_fills_when_capped_per_price_update(rules, brackets):
    venue = Venue(rules, brackets, max_fill_qty={"FILUSDT": D(40)})
    order = venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.executed_qty == 40
    venue.bar(4.0, 4.0, 4.0, 4.0)
    venue.bar(4.0, 4.0, 4.0, 4.0)
    assert order.status is OrderStatus.FILLED
    assert [f.status for f in venue.of(OrderFilled)] == [
        OrderStatus.PARTIALLY_FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
    ]  # fmt: skip


def test_funding_is_paid_by_longs_at_settlement(rules, brackets):
    venue = Venue(rules, brackets, funding_rate=D("0.0001"))
    venue.buy("1000")
    venue.bar(4.0, 4.0, 4.0, 4.0)  # filled at 00:01
    for _ in range(8 * 60 - 2):
        venue.bar(4.0, 4.0, 4.0, 4.0)
    assert not venue.of(FundingApplied)
    venue.bar(5.0, 5.0, 5.0, 5.0)  # the 08:00 kline: settlement at its open
    (funding,) = venue.of(FundingApplied)
    assert funding.ts_event == T0 + 8 * 3_600_000
    assert funding.amount == D("-0.50000000")  # -1000 x 5.0 x 0.0001
    assert funding.mark_price == D("5.000")


def test_funding_series_overrides_the_constant(rules, brackets):
    settle = T0 + 8 * 3_600_000
    venue = Venue(rules, brackets, funding_rates={"FILUSDT": {settle: D("-0.001")}})
    venue.sell("1000")
    for _ in range(8 * 60):
        venue.bar(4.0, 4.0, 4.0, 4.0)
    (funding,) = venue.of(FundingApplied)
    assert funding.funding_rate == D("-0.001") and funding.amount == D("-4.00000000")  # shorts pay


def test_liquidation_closes_the_position_and_charges_the_clearance_fee(rules, brackets):
    venue = Venue(rules, brackets, initial_balance=D(100))
    venue.ex.set_leverage("FILUSDT", 20)
    venue.buy("400")  # 1,600 USDT notional on 100 USDT
    venue.bar(4.0, 4.0, 4.0, 4.0)
    liq = float(venue.ex.liquidation_price("FILUSDT"))
    assert 3.75 < liq < 3.8  # ~ (100 - fee - 1600) / (400 x 0.006 - 400)
    venue.bar(3.9, 3.95, 3.7, 3.72)
    (event,) = venue.of(Liquidated)
    assert event.quantity == D(400) and event.fee > 0
    assert venue.of(OrderFilled)[-1].liquidation
    assert venue.ex.position("FILUSDT")[0] == 0
    assert venue.ex.wallet >= 0


def test_position_close_expires_reduce_only_orders(venue):
    venue.buy("100")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    stop = venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET,
                           trigger_price=D("3.000"), close_position=True, algo=True)  # fmt: skip
    venue.sell("100", reduce_only=True)
    venue.bar(4.0, 4.0, 4.0, 4.0)
    assert stop.status is OrderStatus.EXPIRED


def test_available_balance_accounts_for_positions_and_open_orders(venue):
    venue.ex.set_leverage("FILUSDT", 10)
    venue.buy("1000")
    venue.bar(4.0, 4.0, 4.0, 4.0)
    fee = venue.of(OrderFilled)[0].commission
    assert venue.ex.available_balance() == D(10000) - fee - D(400)  # 4,000 notional / 10
    venue.buy("500", order_type=OrderType.LIMIT, price=D("3.000"))
    assert venue.ex.available_balance() == D(10000) - fee - D(400) - D(150)


def test_state_export_and_import_continue_identically(rules, brackets):
    import json

    from kinetic_empire.exchange.state import export_state, import_state

    a = Venue(rules, brackets, funding_rate=D("0.0001"))
    a.buy("100")
    a.bar(4.0, 4.0, 4.0, 4.0)
    a.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=OrderType.STOP_MARKET, trigger_price=D("3.800"),
                close_position=True, algo=True, client_order_id="sl")  # fmt: skip
    saved = json.loads(json.dumps(export_state(a.ex)))  # through JSON, as the sandbox writes it
    b = Venue(rules, brackets, funding_rate=D("0.0001"))
    b.t = a.t
    import_state(b.ex, saved)
    for v in (a, b):
        v.events.clear()
        v.bar(3.9, 3.95, 3.7, 3.75)  # the stop fires in both
    assert [type(e).__name__ for e in a.events] == [type(e).__name__ for e in b.events]
    assert a.ex.wallet == b.ex.wallet and b.ex.position("FILUSDT")[0] == 0
    assert b.ex.get_order("FILUSDT", client_order_id="sl").status is OrderStatus.FILLED


def test_cross_margin_liquidation_price_follows_the_other_positions(rules, brackets):
    venue = Venue(rules, brackets, initial_balance=D(1000))
    ex = venue.ex
    ex.book("NEARUSDT")
    ex.set_leverage("FILUSDT", 20)
    ex.set_leverage("NEARUSDT", 20)
    ex.on_bar("NEARUSDT", venue.t, 1.0, 1.0, 1.0, 1.0)
    venue.buy("2000")  # 8,000 USDT of FIL
    ex.submit(symbol="NEARUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("8000"))
    venue.bar(4.0, 4.0, 4.0, 4.0)
    ex.on_bar("NEARUSDT", venue.t, 1.0, 1.0, 1.0, 1.0)
    before = ex.liquidation_price("FILUSDT")
    ex.on_bar("NEARUSDT", venue.t + 60_000, 0.99, 0.99, 0.97, 0.97)  # the other position loses 240 USDT
    after = ex.liquidation_price("FILUSDT")
    assert after > before  # less margin left for FIL: it would be liquidated sooner
