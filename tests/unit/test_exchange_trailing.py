"""TRAILING_STOP_MARKET in the simulated exchange: Binance's activation and callback rule under the
conservative intrabar reading (adverse side first), and Binance's parameter checks."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.core.enums import OrderStatus, OrderType, Side
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.events import OrderFilled
from tests.support.sim_venue import Venue

TRAIL = OrderType.TRAILING_STOP_MARKET


@pytest.fixture()
def venue(rules, brackets) -> Venue:
    v = Venue(rules, brackets)
    v.buy("100")
    v.bar(4.0, 4.0, 4.0, 4.0)  # long 100 at 4.0
    return v


def _trail(v: Venue, side: Side = Side.SELL, rate: str = "5", act: str | None = None, qty: str = "100"):
    return v.ex.submit(symbol="FILUSDT", side=side, order_type=TRAIL, quantity=D(qty), reduce_only=True,
                       algo=True, callback_rate=D(rate), activation_price=None if act is None else D(act))


def test_sell_trailing_follows_the_high_and_fires_on_the_callback(venue):
    order = _trail(venue)  # armed at once at the last price 4.0: level 3.8
    venue.bar(4.0, 4.4, 3.9, 4.3)  # low 3.9 above 3.8; then the high 4.4 moves the level to 4.18
    assert order.is_open and order.trigger_f == pytest.approx(4.18)
    venue.bar(4.3, 4.35, 4.2, 4.25)  # low 4.2 stays above 4.18 (the high 4.35 is below the best 4.4)
    assert order.is_open and order.trigger_f == pytest.approx(4.18)
    venue.bar(4.25, 4.3, 4.1, 4.15)  # low 4.1 reaches 4.18: fills at the level
    fill = venue.of(OrderFilled)[-1]
    assert order.status is OrderStatus.FILLED and fill.price == D("4.180") and fill.side is Side.SELL
    assert venue.ex.position("FILUSDT")[0] == 0


def test_a_kline_that_closed_up_is_walked_low_high_close(venue):
    order = _trail(venue)  # level 3.8 before the kline
    venue.bar(4.19, 4.4, 4.17, 4.3)  # low 4.17 first (level 3.98 after the open), the high -> 4.18, close 4.3 above
    assert order.is_open and order.trigger_f == pytest.approx(4.18)


def test_a_kline_that_closed_down_is_walked_high_low_close(venue):
    order = _trail(venue)
    venue.bar(4.3, 4.4, 4.17, 4.2)  # the high first -> level 4.18, then the low 4.17 reaches it
    assert order.status is OrderStatus.FILLED and venue.of(OrderFilled)[-1].price == D("4.180")


def test_the_close_is_tested_against_the_level_the_high_set(venue):
    order = _trail(venue)
    venue.bar(4.0, 4.5, 3.85, 4.2)  # closed up: low 3.85 above 3.8, high 4.5 -> 4.275, close 4.2 below it
    assert order.status is OrderStatus.FILLED and venue.of(OrderFilled)[-1].price == D("4.275")


def test_one_kline_or_its_sandbox_segments_give_the_same_fill(rules, brackets):
    from kinetic_empire.sandbox.replay import path_points

    bars = [(4.0, 4.3, 3.95, 4.25), (4.25, 4.6, 4.2, 4.3), (4.3, 4.35, 4.1, 4.12), (4.12, 4.2, 3.9, 4.0)]
    fills = []
    for k in (1, 4):
        v = Venue(rules, brackets)
        v.buy("100")
        v.bar(4.0, 4.0, 4.0, 4.0)
        _trail(v, rate="2")
        for o, h, lo, c in bars:
            v.t += 60_000
            v.clock.advance_to(v.t + 59_999)
            if k == 1:
                v.ex.on_bar("FILUSDT", v.t, o, h, lo, c)
                continue
            prev = o
            for price, seg_hi, seg_lo in path_points(o, h, lo, c, k, 0.001):
                v.ex.on_bar("FILUSDT", v.t, prev, seg_hi, seg_lo, price)
                prev = price
        fills.append([(f.price, f.side) for f in v.of(OrderFilled)])
    assert fills[0] == fills[1] and len(fills[0]) == 2


def test_gap_through_the_level_fills_at_the_open(venue):
    order = _trail(venue)
    venue.bar(3.5, 3.6, 3.4, 3.5)
    assert order.status is OrderStatus.FILLED and venue.of(OrderFilled)[-1].price == D("3.500")


def test_activation_price_arms_it_only_when_reached(venue):
    order = _trail(venue, act="4.5")
    venue.bar(4.0, 4.3, 3.0, 3.1)  # never reached 4.5: not armed, a fall does nothing
    assert order.is_open and not order.activated
    venue.bar(3.1, 4.6, 3.1, 4.5)  # armed in this kline; best since 4.6 -> level 4.37
    assert order.activated and order.is_open and order.trigger_f == pytest.approx(4.37)
    venue.bar(4.5, 4.5, 4.3, 4.35)
    assert order.status is OrderStatus.FILLED and venue.of(OrderFilled)[-1].price == D("4.370")


def test_buy_trailing_for_a_short(rules, brackets):
    v = Venue(rules, brackets)
    v.sell("100")
    v.bar(4.0, 4.0, 4.0, 4.0)
    order = _trail(v, side=Side.BUY, rate="2.5")  # level 4.1
    v.bar(4.0, 4.05, 3.6, 3.65)  # closed down: high 4.05 under 4.1, the low 3.6 -> level 3.69, close 3.65 under
    assert order.is_open and order.trigger_f == pytest.approx(3.69)
    v.bar(3.68, 3.75, 3.65, 3.7)  # closed up: the low 3.65 first, then the high 3.75 reaches 3.69
    assert order.status is OrderStatus.FILLED and v.of(OrderFilled)[-1].price == D("3.690")


@pytest.mark.parametrize("rate", ["0.05", "10.1", "1.25", "0"])
def test_callback_rate_outside_binance_bounds_is_refused(venue, rate):
    with pytest.raises(ExchangeError) as err:
        _trail(venue, rate=rate)
    assert err.value.code == -2007


def test_trailing_needs_the_algo_endpoint_and_no_close_position(venue):
    with pytest.raises(ExchangeError) as err:
        venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=TRAIL, quantity=D("100"),
                        callback_rate=D("1"))
    assert err.value.code == -4120
    with pytest.raises(ExchangeError) as err:
        venue.ex.submit(symbol="FILUSDT", side=Side.SELL, order_type=TRAIL, close_position=True, algo=True,
                        callback_rate=D("1"))
    assert err.value.code in (-1106, -4137)
