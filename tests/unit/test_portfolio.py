"""Portfolio driven by real events on a real EventBus: account view, orders log, trades, totals."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from kinetic_empire.core.account import AccountView, PositionView
from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import BalanceReason, OrderStatus, OrderType, PositionSide, Side
from kinetic_empire.core.events import (
    BalanceChanged,
    FundingApplied,
    KlineClosed,
    Liquidated,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderRequest,
    PositionChanged,
    RiskDenied,
)
from kinetic_empire.portfolio import Portfolio

SYM = "BTCUSDT"


class Venue:
    """Publishes what an exchange would, keeping its own wallet so tests state only the facts."""

    def __init__(self, bus: EventBus, wallet: str = "10000") -> None:
        self.bus = bus
        self.wallet = D(wallet)
        self.oid = 0

    def request(
        self, cid: str, strategy_id: str, side: Side, order_type: OrderType = OrderType.MARKET, ts: int = 0
    ) -> None:
        """The risk manager's order request: the portfolio learns an order's strategy and reason from it."""
        self.bus.publish(
            OrderRequest(
                client_order_id=cid, intent_id=cid, strategy_id=strategy_id, symbol=SYM, side=side,
                order_type=order_type, quantity=D(1), ts_event=ts, ts_init=ts,
            )
        )  # fmt: skip

    def kline(self, ts: int, close: float, symbol: str = SYM) -> None:
        k = KlineClosed(
            symbol=symbol, timeframe="1m", open_time=ts - 59_999, open=close, high=close, low=close,
            close=close, volume=1.0, ts_event=ts, ts_init=ts,
        )  # fmt: skip
        self.bus.publish(k, (symbol, "1m"))

    def balance(self, ts: int, change: D, reason: BalanceReason = BalanceReason.ORDER) -> None:
        self.wallet += change
        self.bus.publish(
            BalanceChanged(
                asset="USDT",
                wallet_balance=self.wallet,
                change=change,
                reason=reason,
                ts_event=ts,
                ts_init=ts,
            )
        )

    def position(self, ts: int, qty: str, entry: str, symbol: str = SYM, lev: int = 5) -> None:
        self.bus.publish(
            PositionChanged(symbol=symbol, quantity=D(qty), entry_price=D(entry), leverage=lev, ts_event=ts, ts_init=ts)
        )

    def fill(
        self,
        ts: int,
        cid: str,
        side: Side,
        qty: str,
        price: str,
        fee: str,
        pnl: str = "0",
        *,
        symbol: str = SYM,
        liquidation: bool = False,
        status: OrderStatus = OrderStatus.FILLED,
    ) -> None:
        self.oid += 1
        self.bus.publish(
            OrderFilled(
                client_order_id=cid, order_id=self.oid, trade_id=self.oid, symbol=symbol, side=side,
                order_type=OrderType.MARKET, quantity=D(qty), price=D(price), commission=D(fee),
                realized_pnl=D(pnl), is_maker=False, status=status, liquidation=liquidation,
                ts_event=ts, ts_init=ts,
            )
        )  # fmt: skip
        self.balance(ts, D(pnl) - D(fee))


@pytest.fixture
def setup() -> tuple[EventBus, Portfolio, Venue]:
    bus = EventBus()
    return bus, Portfolio(bus, D("10000"), leverage_default=5), Venue(bus)


def test_satisfies_account_view_and_starts_flat(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, _ = setup
    view: AccountView = pf
    assert view.wallet_balance() == D("10000")
    assert view.equity() == D("10000")
    assert view.available_balance() == D("10000")
    assert view.position(SYM) == PositionView(SYM, D(0), D(0), 5)
    assert view.positions() == []
    assert view.last_price(SYM) == 0.0
    assert view.leverage(SYM) == 5
    pf.set_leverage(SYM, 20)
    assert pf.leverage(SYM) == 20


def test_kline_on_a_topic_sets_last_price(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    venue.kline(60_000, 101.5)
    venue.kline(60_000, 7.25, symbol="ETHUSDT")
    assert pf.last_price(SYM) == 101.5
    assert pf.last_price("ETHUSDT") == 7.25


def test_long_round_trip_with_funding(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    bus, pf, venue = setup
    venue.request("o1", "ema", Side.BUY)
    venue.request("o2", "ema", Side.SELL, OrderType.TAKE_PROFIT_MARKET)
    venue.fill(1_000, "o1", Side.BUY, "2", "100", fee="0.08")
    venue.position(1_000, "2", "100")
    venue.kline(59_999, 105.0)
    # equity = wallet + 2 * (105 - 100); margin = 2 * 105 / 5
    assert pf.wallet_balance() == D("9999.92")
    assert pf.equity() == D("10009.92")
    assert pf.available_balance() == D("10009.92") - D("42")
    assert pf.positions() == [PositionView(SYM, D(2), D(100), 5)]
    bus.publish(
        FundingApplied(
            symbol=SYM, funding_rate=D("0.0001"), mark_price=D("105"), position_quantity=D(2),
            amount=D("-0.021"), ts_event=28_800_000, ts_init=28_800_000,
        )
    )  # fmt: skip
    venue.balance(28_800_000, D("-0.021"), BalanceReason.FUNDING_FEE)
    venue.fill(30_000_000, "o2", Side.SELL, "2", "110", fee="0.088", pnl="20")
    venue.position(30_000_000, "0", "0")

    assert pf.positions() == []
    (t,) = pf.trades
    assert t.trade_id == 1 and t.strategy_id == "ema" and t.symbol == SYM
    assert t.side is PositionSide.LONG
    assert (t.quantity, t.entry_price, t.exit_price) == (D(2), D(100), D(110))
    assert (t.entry_time, t.exit_time, t.duration_ms) == (1_000, 30_000_000, 29_999_000)
    assert t.gross_pnl == D("20")
    assert t.fees == D("0.168")
    assert t.funding == D("-0.021")
    assert t.net_pnl == D("19.811")
    assert t.return_pct == D("9.9055")  # 19.811 / 200 * 100
    assert t.exit_reason == "take_profit"
    assert pf.fees_total == D("0.168")
    assert pf.funding_total == D("-0.021")
    assert pf.wallet_balance() == D("10019.811")


def test_scale_in_partial_exits_short(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    venue.fill(1, "a", Side.SELL, "1", "100", "0.1")
    venue.fill(2, "b", Side.SELL, "3", "120", "0.3")  # avg entry (100 + 360) / 4 = 115
    venue.fill(3, "c", Side.BUY, "2", "110", "0.2", pnl="10")
    assert pf.trades == []
    venue.fill(4, "d", Side.BUY, "2", "100", "0.2", pnl="30")
    (t,) = pf.trades
    assert t.side is PositionSide.SHORT
    assert t.quantity == D(4)
    assert t.entry_price == D(115) and t.exit_price == D(105)
    assert t.gross_pnl == D(40) and t.fees == D("0.8") and t.net_pnl == D("39.2")
    assert t.strategy_id == "" and t.exit_reason == "unknown"


def test_flip_closes_one_trade_and_opens_another(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    venue.request("open", "s1", Side.BUY)
    venue.request("flip", "s2", Side.SELL)
    venue.fill(10, "open", Side.BUY, "2", "100", "0.2")
    venue.fill(20, "flip", Side.SELL, "3", "90", "0.3", pnl="-20")
    (first,) = pf.trades
    assert first.side is PositionSide.LONG and first.exit_price == D(90)
    assert first.fees == D("0.4")  # 0.2 entry + 2/3 of 0.3
    assert first.net_pnl == D("-20.4")
    assert first.strategy_id == "s1"
    venue.fill(30, "flat", Side.BUY, "1", "80", "0.08", pnl="10")
    second = pf.trades[1]
    assert second.trade_id == 2 and second.strategy_id == "s2"
    assert second.side is PositionSide.SHORT
    assert (second.quantity, second.entry_price, second.entry_time) == (D(1), D(90), 20)
    assert second.fees == D("0.18")
    assert second.net_pnl == D("9.82")


def test_liquidation_fill_then_event_adds_the_clearance_fee(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    """The simulated exchange's order: the autoclose fill, then Liquidated carrying the clearance fee."""
    bus, pf, venue = setup
    venue.fill(1, "o", Side.BUY, "1", "100", "0.04")
    venue.fill(9, "autoclose-1", Side.SELL, "1", "81", "0.0324", pnl="-19", liquidation=True)
    bus.publish(
        Liquidated(
            symbol=SYM, quantity=D(1), price=D(81), realized_pnl=D("-19.0324"), fee=D("0.405"),
            ts_event=9, ts_init=9,
        )
    )  # fmt: skip
    (t,) = pf.trades
    assert (t.exit_reason, t.exit_price, t.exit_time) == ("liquidation", D(81), 9)
    assert t.gross_pnl == D(-19)
    assert t.fees == D("0.4774") and t.net_pnl == D("-19.4774")
    assert t.return_pct == D("-19.4774")
    assert pf.fees_total == D("0.4774")
    assert pf.liquidation_count == 1
    assert pf.orders[-1].reason == "liquidation"


def test_late_fee_goes_to_the_open_trade_when_nothing_closed_then(
    setup: tuple[EventBus, Portfolio, Venue],
) -> None:
    bus, pf, venue = setup
    venue.fill(1, "o", Side.BUY, "2", "100", "0.08")
    venue.fill(5, "autoclose-1", Side.SELL, "1", "90", "0.036", pnl="-10", liquidation=True)
    bus.publish(
        Liquidated(symbol=SYM, quantity=D(2), price=D(90), realized_pnl=D(-10), fee=D("0.1"), ts_event=5, ts_init=5)
    )
    assert pf.trades == []
    venue.fill(7, "c", Side.SELL, "1", "95", "0.038", pnl="-5")
    (t,) = pf.trades
    assert t.fees == D("0.254") and t.exit_reason == "unknown"


def test_liquidated_event_alone_closes_the_trade(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    bus, pf, venue = setup
    venue.fill(1, "o", Side.SELL, "1", "100", "0.04")
    bus.publish(
        Liquidated(symbol=SYM, quantity=D(-1), price=D(119), realized_pnl=D(-19), fee=D("0.6"), ts_event=5, ts_init=5)
    )
    venue.fill(5, "autoclose-9", Side.BUY, "1", "119", "0.6", pnl="-19", liquidation=True)  # late: not rebooked
    (t,) = pf.trades
    assert (t.side, t.exit_reason, t.exit_price, t.net_pnl) == (
        PositionSide.SHORT,
        "liquidation",
        D(119),
        D("-19.64"),
    )
    assert pf.liquidation_count == 1
    assert pf.fees_total == D("0.64")
    assert len(pf.orders) == 2


def test_orders_log_rows(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    bus, pf, venue = setup
    bus.publish(
        OrderRequest(
            client_order_id="sl1", intent_id="i1", strategy_id="ema", symbol=SYM, side=Side.SELL,
            order_type=OrderType.STOP_MARKET, quantity=D("0.5"), trigger_price=D("95"), ts_event=1, ts_init=1,
        )
    )  # fmt: skip
    bus.publish(
        OrderAccepted(
            client_order_id="sl1", order_id=7, symbol=SYM, side=Side.SELL, order_type=OrderType.STOP_MARKET,
            quantity=D("0.5"), price=None, trigger_price=D("95"), reduce_only=True, ts_event=2, ts_init=2,
        )
    )  # fmt: skip
    bus.publish(OrderCanceled(client_order_id="sl1", order_id=7, symbol=SYM, reason="user", ts_event=3, ts_init=3))
    bus.publish(OrderRejected(client_order_id="x9", symbol=SYM, code=-2019, reason="Margin is insufficient.",
                              ts_event=4, ts_init=4))  # fmt: skip
    bus.publish(OrderExpired(client_order_id="sl1", order_id=7, symbol=SYM, reason="GTD", ts_event=5, ts_init=5))
    venue.fill(6, "sl1", Side.SELL, "0.2", "95", "0.01", status=OrderStatus.PARTIALLY_FILLED)
    rows = pf.orders
    assert [r.status for r in rows] == ["NEW", "CANCELED", "REJECTED", "EXPIRED", "PARTIALLY_FILLED"]
    new = rows[0]
    assert (new.ts, new.strategy_id, new.side, new.order_type) == (2, "ema", "SELL", "STOP_MARKET")
    assert (new.quantity, new.price, new.reason) == (D("0.5"), D(95), "stop_loss")
    assert rows[1].side == "SELL" and rows[1].reason == "user"
    assert rows[2].side == "" and rows[2].reason == "-2019: Margin is insufficient."
    assert (rows[4].quantity, rows[4].price, rows[4].reason) == (D("0.2"), D(95), "stop_loss")


def test_denials_counted_by_code(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    bus, pf, _ = setup
    for i, code in enumerate(["NOTIONAL_BELOW_MIN", "MAX_POSITIONS", "NOTIONAL_BELOW_MIN"]):
        bus.publish(RiskDenied(intent_id=f"i{i}", strategy_id="ema", symbol=SYM, code=code,
                               message="min=100 notional=63.2", ts_event=i, ts_init=i))  # fmt: skip
    assert pf.denials_by_code == {"MAX_POSITIONS": 1, "NOTIONAL_BELOW_MIN": 2}
    assert list(pf.denials_by_code) == ["MAX_POSITIONS", "NOTIONAL_BELOW_MIN"]
    assert pf.denials[0].message == "min=100 notional=63.2"


def test_equity_curve_matches_live_equity_at_each_close(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    ts = np.arange(1, 9, dtype=np.int64) * 60_000 - 1
    btc = np.array([100, 102, 101, 105, 99, 98, 103, 104], dtype=float)
    eth = np.array([np.nan, np.nan, 10, 11, 12, 11, 10, 9], dtype=float)
    live = []
    for i, t in enumerate(ts):
        if i == 1:  # buy 1 BTC inside bar 1 at 101
            venue.fill(int(t) - 30_000, "b", Side.BUY, "1", "101", "0.04")
            venue.position(int(t) - 30_000, "1", "101")
        if i == 3:  # short 10 ETH at 11, at the bar's close stamp
            venue.fill(int(t), "e", Side.SELL, "10", "11", "0.05", symbol="ETHUSDT")
            venue.position(int(t), "-10", "11", symbol="ETHUSDT")
        if i == 5:  # close BTC at 98
            venue.fill(int(t) - 1, "c", Side.SELL, "1", "98", "0.04", pnl="-3")
            venue.position(int(t) - 1, "0", "0")
        venue.kline(int(t), float(btc[i]))
        if not np.isnan(eth[i]):
            venue.kline(int(t), float(eth[i]), symbol="ETHUSDT")
        live.append(float(pf.equity()))
    curve = pf.equity_curve(ts, {SYM: btc, "ETHUSDT": eth})
    np.testing.assert_allclose(curve, live, rtol=0, atol=1e-9)
    expected = [
        10000,
        9999.96 + 1,
        9999.96,
        9999.91 + 4,
        9999.91 - 2 - 10,
        9996.87,
        9996.87 + 10,
        9996.87 + 20,
    ]
    np.testing.assert_allclose(curve, expected, atol=1e-9)
    assert pf.exposure_mask(ts).tolist() == [False, True, True, True, True, True, True, True]
    assert pf.exposure_fraction(ts) == pytest.approx(7 / 8)
    assert pf.exposure_fraction(np.array([], dtype=np.int64)) == 0.0


def test_equity_curve_without_activity_and_missing_closes(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    ts = np.array([10, 20, 30], dtype=np.int64)
    np.testing.assert_array_equal(pf.equity_curve(ts, {}), [10000.0, 10000.0, 10000.0])
    venue.position(15, "1", "100")
    with pytest.raises(KeyError, match="BTCUSDT"):
        pf.equity_curve(ts, {})
    with pytest.raises(ValueError, match="shape"):
        pf.equity_curve(ts, {SYM: np.array([1.0])})


def test_open_trades_marked_at_last_price(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    venue.request("o", "ema", Side.BUY)
    venue.fill(1, "o", Side.BUY, "2", "100", "0.08")
    venue.position(1, "2", "100")
    venue.kline(59_999, 103.0)
    (t,) = pf.open_trades(59_999)
    assert t.exit_reason == "open" and t.exit_price == D(103)
    assert t.gross_pnl == D(6) and t.net_pnl == D("5.92")
    assert pf.trades == []


def test_close_unsubscribes(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    _, pf, venue = setup
    pf.close()
    venue.kline(1, 5.0)
    assert pf.last_price(SYM) == 0.0


def test_prices_from_named_topics_only() -> None:
    bus = EventBus()
    pf = Portfolio(bus, D("1000"), follow_prices=False)
    venue = Venue(bus)
    venue.kline(59_999, 1.0)
    assert pf.last_price(SYM) == 0.0  # not following yet
    pf.subscribe_prices([(SYM, "1m"), (SYM, "1h"), ("ETHUSDT", "1m")])
    pf.subscribe_prices()  # once: a second call adds nothing
    venue.kline(119_999, 2.0)
    venue.kline(119_999, 3.0, symbol="ETHUSDT")
    venue.kline(119_999, 4.0, symbol="XRPUSDT")  # a topic it was not given
    assert (pf.last_price(SYM), pf.last_price("ETHUSDT"), pf.last_price("XRPUSDT")) == (2.0, 3.0, 0.0)
    hour = KlineClosed(
        symbol=SYM, timeframe="1h", open_time=0, open=1.0, high=9.0, low=1.0, close=8.5, volume=1.0,
        ts_event=3_599_999, ts_init=3_599_999,
    )  # fmt: skip
    bus.publish(hour, (SYM, "1h"))
    assert pf.last_price(SYM) == 8.5  # the latest kline of the symbol, whatever its timeframe
    pf.close()
    venue.kline(179_999, 7.0)
    assert pf.last_price(SYM) == 8.5


def test_other_asset_balance_is_ignored(setup: tuple[EventBus, Portfolio, Venue]) -> None:
    bus, pf, _ = setup
    bus.publish(BalanceChanged(asset="BNB", wallet_balance=D(3), change=D(3), reason=BalanceReason.DEPOSIT,
                               ts_event=1, ts_init=1))  # fmt: skip
    assert pf.wallet_balance() == D(10000)
    assert pf.wallet_history()[0].size == 0


@pytest.mark.parametrize(
    ("order_type", "reason"),
    [
        (OrderType.STOP_MARKET, "stop_loss"),
        (OrderType.TAKE_PROFIT_MARKET, "take_profit"),
        (OrderType.MARKET, "signal"),
    ],
)
def test_orders_take_strategy_and_reason_from_the_request(
    setup: tuple[EventBus, Portfolio, Venue], order_type: OrderType, reason: str
) -> None:
    bus, pf, venue = setup

    def request(cid: str, side: Side, kind: OrderType) -> None:
        bus.publish(
            OrderRequest(
                client_order_id=cid, intent_id="i", strategy_id="rsi", symbol=SYM, side=side, order_type=kind,
                quantity=D(1), ts_event=0, ts_init=0,
            )
        )  # fmt: skip

    request("in", Side.BUY, OrderType.MARKET)
    request("out", Side.SELL, order_type)
    venue.fill(1, "in", Side.BUY, "1", "100", "0")
    venue.fill(2, "out", Side.SELL, "1", "100", "0")
    (t,) = pf.trades
    assert (t.strategy_id, t.exit_reason) == ("rsi", reason)
