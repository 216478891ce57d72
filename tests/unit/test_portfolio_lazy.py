"""What the portfolio defers or caches for the order path must read the same as if made at once.

Trade records are made when read, the flat position view is made once per leverage: these tests read at
every point a stale cache or a missed update would show.
"""

from __future__ import annotations

from decimal import Decimal as D

from kinetic_empire.core.account import PositionView
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import Liquidated, OrderAccepted
from kinetic_empire.portfolio import Portfolio
from tests.unit.test_portfolio import SYM, Venue


def _setup() -> tuple[EventBus, Portfolio, Venue]:
    bus = EventBus()
    return bus, Portfolio(bus, D("10000"), leverage_default=5), Venue(bus)


def test_trades_read_between_fills_equal_trades_read_once_at_the_end() -> None:
    runs = []
    for read_each_time in (True, False):
        _, pf, venue = _setup()
        seen = []
        for i in range(4):
            venue.fill(10 * i + 1, f"o{i}", Side.BUY, "2", str(100 + i), "0.08")
            venue.fill(10 * i + 5, f"c{i}", Side.SELL, "2", str(101 + 2 * i), "0.08", pnl=str(2 + 2 * i))
            if read_each_time:
                seen = pf.trades
                assert len(seen) == i + 1
        runs.append(pf.trades)
        assert pf.trades == seen or not read_each_time
    assert runs[0] == runs[1]
    assert [t.trade_id for t in runs[0]] == [1, 2, 3, 4]
    assert runs[0][3].exit_price == D(107) and runs[0][3].net_pnl == D("7.84")


def test_clearance_fee_after_the_trade_was_read_updates_its_record() -> None:
    """The liquidation's fee arrives after the fill that closed the trade: a record already made is made again."""
    bus, pf, venue = _setup()
    venue.fill(1, "o", Side.BUY, "1", "100", "0.04")
    venue.fill(9, "autoclose-1", Side.SELL, "1", "81", "0.0324", pnl="-19", liquidation=True)
    (before,) = pf.trades
    assert before.fees == D("0.0724")
    bus.publish(Liquidated(symbol=SYM, quantity=D(1), price=D(81), realized_pnl=D("-19.0324"), fee=D("0.405"),
                           ts_event=9, ts_init=9))  # fmt: skip
    (after,) = pf.trades
    assert after.fees == D("0.4774") and after.net_pnl == D("-19.4774")
    assert before.fees == D("0.0724")  # records handed out earlier are frozen, not changed in place


def test_flat_view_follows_leverage_changes() -> None:
    _, pf, venue = _setup()
    first = pf.position(SYM)
    assert first == PositionView(SYM, D(0), D(0), 5)
    assert pf.position(SYM) is first  # made once while nothing changes
    pf.set_leverage(SYM, 20)
    assert pf.position(SYM) == PositionView(SYM, D(0), D(0), 20)
    venue.position(1, "1", "100", lev=20)
    assert pf.position(SYM) == PositionView(SYM, D(1), D(100), 20)
    venue.position(2, "0", "0", lev=7)  # the exchange's leverage wins over the one set before
    assert pf.position(SYM) == PositionView(SYM, D(0), D(0), 7)
    assert pf.position("ETHUSDT") == PositionView("ETHUSDT", D(0), D(0), 5)


def test_accepted_row_keeps_the_request_shape_where_the_event_has_none() -> None:
    bus, pf, venue = _setup()
    venue.request("s1", "strat", Side.SELL, OrderType.STOP_MARKET, ts=1)
    bus.publish(OrderAccepted(client_order_id="s1", order_id=1, symbol=SYM, side=Side.SELL,
                              order_type=OrderType.STOP_MARKET, quantity=None, price=None, trigger_price=D("95"),
                              reduce_only=True, ts_event=2, ts_init=2))  # fmt: skip
    (row,) = pf.orders
    assert (row.side, row.order_type, row.quantity, row.price) == ("SELL", "STOP_MARKET", D(1), D(95))
    assert (row.strategy_id, row.reason, row.status) == ("strat", "stop_loss", "NEW")
