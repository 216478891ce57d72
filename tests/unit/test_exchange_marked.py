"""The simulated exchange on a replayed mark price: liquidation judged on the mark's range, margin, PnL and
funding on the mark, orders still on traded prices (exchange.marked)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import FundingApplied, KlineClosed, Liquidated, OrderFilled
from kinetic_empire.exchange.marked import on_marked_kline
from tests.unit.test_exchange import T0, Venue

NAN = float("nan")


def kline(t: int, o: float, h: float, low: float, c: float) -> KlineClosed:
    return KlineClosed(symbol="FILUSDT", timeframe="1m", open_time=t, open=o, high=h, low=low, close=c, volume=1.0,
                       ts_event=t + 59_999, ts_init=t + 59_999)


def marked(venue: Venue, last: tuple[float, float, float, float], mark: tuple[float, float, float, float]) -> None:
    venue.t += 60_000
    venue.clock.advance_to(venue.t + 59_999)
    on_marked_kline(venue.ex, kline(venue.t, *last), *mark)


def leveraged_long(rules: Any, brackets: Any, **cfg: Any) -> tuple[Venue, float]:
    venue = Venue(rules, brackets, initial_balance=D(100), **cfg)
    venue.ex.set_leverage("FILUSDT", 20)
    venue.buy("400")  # 1,600 USDT notional on 100 USDT: liquidation near 3.77
    marked(venue, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, 4.0, 4.0))
    return venue, float(venue.ex.liquidation_price("FILUSDT"))


def test_a_last_price_wick_the_mark_did_not_follow_liquidates_nothing(rules, brackets):
    venue, liq = leveraged_long(rules, brackets)
    assert 3.75 < liq < 3.8
    marked(venue, (3.9, 3.95, 3.7, 3.9), (3.9, 3.92, 3.85, 3.9))  # traded low 3.70 < liq, mark low 3.85
    assert not venue.of(Liquidated) and venue.ex.position("FILUSDT")[0] == D(400)
    # the same kline without its mark (a gap in the mark series) liquidates on the traded range, as before
    marked(venue, (3.9, 3.95, 3.7, 3.9), (NAN, NAN, NAN, NAN))
    assert venue.of(Liquidated)


def test_the_mark_reaching_the_liquidation_price_liquidates_there(rules, brackets):
    venue, liq = leveraged_long(rules, brackets)
    marked(venue, (3.9, 3.95, 3.85, 3.9), (3.9, 3.92, 3.7, 3.75))  # traded range stays above, the mark goes below
    (event,) = venue.of(Liquidated)
    assert event.quantity == D(400)
    assert venue.of(OrderFilled)[-1].liquidation
    assert abs(float(event.price) - liq) <= 0.001  # at the liquidation price (the tick grid)
    assert venue.ex.position("FILUSDT")[0] == 0


def test_unrealised_pnl_and_margin_follow_the_mark_not_the_last_price(rules, brackets):
    venue = Venue(rules, brackets)
    venue.buy("100")
    marked(venue, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, 4.0, 4.0))
    entry = venue.ex.position("FILUSDT")[1]
    marked(venue, (4.0, 4.5, 4.0, 4.5), (4.0, 4.2, 4.0, 4.2))
    assert venue.ex.last_price("FILUSDT") == D("4.500")
    assert venue.ex.unrealized_pnl("FILUSDT") == D("100") * (D("4.2") - entry)
    assert venue.ex.position_initial_margin("FILUSDT") == (D("100") * D("4.2") / 20).quantize(D("0.00000001"))


def test_funding_settles_at_the_mark_open(rules, brackets):
    venue = Venue(rules, brackets, funding_rate=D("0.0001"))
    venue.buy("1000")
    marked(venue, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, 4.0, 4.0))
    while venue.t + 60_000 < T0 + 8 * 3_600_000:
        marked(venue, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, 4.0, 4.0))
    assert not venue.of(FundingApplied)
    marked(venue, (5.0, 5.0, 5.0, 5.0), (4.8, 4.9, 4.8, 4.9))  # the 08:00 kline: settlement at its (mark) open
    (funding,) = venue.of(FundingApplied)
    assert funding.mark_price == D("4.800") and funding.amount == D("-0.48000000")  # -1000 x 4.8 x 0.0001


def test_another_positions_mark_moves_this_ones_cross_liquidation_price(rules, brackets):
    venue = Venue(rules, brackets, initial_balance=D(1000))
    ex = venue.ex
    ex.book("NEARUSDT")
    ex.set_leverage("FILUSDT", 20)
    ex.set_leverage("NEARUSDT", 20)
    ex.on_bar("NEARUSDT", venue.t, 1.0, 1.0, 1.0, 1.0)
    venue.buy("2000")  # 8,000 USDT of FIL
    ex.submit(symbol="NEARUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D("8000"))
    marked(venue, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, 4.0, 4.0))
    near = KlineClosed(symbol="NEARUSDT", timeframe="1m", open_time=venue.t, open=1.0, high=1.0, low=1.0, close=1.0,
                       volume=1.0, ts_event=venue.t + 59_999, ts_init=venue.t + 59_999)
    on_marked_kline(ex, near, 1.0, 1.0, 1.0, 1.0)
    before = ex.liquidation_price("FILUSDT")
    on_marked_kline(ex, replace(near, open_time=venue.t + 60_000), 0.99, 0.99, 0.97, 0.97)  # NEAR's *mark* falls
    assert ex.liquidation_price("FILUSDT") > before  # less margin left for FIL, though no traded price moved
