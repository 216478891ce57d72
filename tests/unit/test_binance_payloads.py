"""The translator replays Binance's own payloads (tests/data/binance, sources in its README): liquidation and
ADL fills, algo orders that finish without a fill, fees in another asset, account modes, foreign positions."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kinetic_empire.binance.account import AccountModeError, modes_from, require_tradeable
from kinetic_empire.binance.snapshots import venue_positions
from kinetic_empire.binance.translate import UserTranslator, safe
from kinetic_empire.binance.wire import unwrap
from kinetic_empire.core import events as ev
from kinetic_empire.core.enums import OrderStatus, OrderType, Side
from kinetic_empire.core.ports import VenuePosition
from kinetic_empire.live.journal import decode, encode

DATA = Path(__file__).parents[1] / "data" / "binance"


def payload(name: str) -> dict[str, Any]:
    _stream, data = unwrap(json.loads((DATA / name).read_text()))
    return dict(data)


def translator(symbols: list[str] | None = None) -> tuple[UserTranslator, list[Any]]:
    out: list[Any] = []
    tr = UserTranslator(out.append, lambda: 5, lambda s: 3, symbols=symbols)
    return tr, out


def stream(tr: UserTranslator, msg: dict[str, Any]) -> None:
    safe(tr.on_message, "user stream")(msg)  # as the engine wires it: a raising payload is logged and dropped


def of(out: list[Any], cls: type) -> list[Any]:
    return [e for e in out if isinstance(e, cls)]


# ---------------------------------------------------------------------------------- item 1: unknown enum values


def test_an_adl_fill_reaches_the_engine_marked() -> None:
    """ORDER_TRADE_UPDATE.NEW_ADL (x=CALCULATED, X=NEW_ADL): today's OrderStatus('NEW_ADL') dropped it."""
    tr, out = translator()
    stream(tr, payload("ORDER_TRADE_UPDATE.NEW_ADL.nautilus_crate.json"))
    [fill] = of(out, ev.OrderFilled)
    assert (fill.client_order_id, fill.symbol, fill.side, fill.quantity, fill.price) == (
        "adl_autoclose_12345", "BTCUSDT", Side.BUY, Decimal("0.005"), Decimal("42000.00"))
    assert (fill.commission, fill.realized_pnl, fill.commission_asset) == (Decimal("0.105"), Decimal("-2.50"), "USDT")
    assert fill.liquidation and fill.reduce_only and fill.status is OrderStatus.FILLED


@pytest.mark.parametrize(("order_type", "status"), [
    ("LIMIT", "FILLED"),  # the payload as captured
    ("LIQUIDATION", "FILLED"),  # Binance's docs list LIQUIDATION among the order types of this event
    ("LIQUIDATION", "NEW_INSURANCE"),  # ... and NEW_INSURANCE among the statuses of a liquidation
    ("SOMETHING_NEW", "SOMETHING_ELSE"),  # whatever Binance adds next
])
def test_a_liquidation_fill_is_never_dropped(order_type: str, status: str) -> None:
    tr, out = translator()
    msg = payload("ORDER_TRADE_UPDATE.CALCULATED_liquidation.nautilus_crate.json")
    msg["o"] = {**msg["o"], "o": order_type, "ot": order_type, "X": status}
    stream(tr, msg)
    [fill] = of(out, ev.OrderFilled)
    assert (fill.quantity, fill.price, fill.commission, fill.realized_pnl) == (
        Decimal("0.014"), Decimal("9910.12"), Decimal("0.06937084"), Decimal("-5.67"))
    assert fill.liquidation
    assert fill.order_type is (OrderType.LIMIT if order_type == "LIMIT" else OrderType.MARKET)
    assert fill.status is OrderStatus.FILLED  # z == q: the whole order


def test_an_unknown_order_type_on_a_new_order_does_not_break_the_stream() -> None:
    tr, out = translator()
    msg = payload("ORDER_TRADE_UPDATE.CALCULATED_liquidation.nautilus_crate.json")
    stream(tr, {**msg, "o": {**msg["o"], "x": "NEW", "X": "NEW", "o": "LIQUIDATION", "ot": "LIQUIDATION"}})
    stream(tr, msg)
    assert len(of(out, ev.OrderFilled)) == 1 and of(out, ev.OrderAccepted) == []


def test_an_ordinary_fill_is_not_marked_as_liquidation() -> None:
    tr, out = translator()
    stream(tr, payload("ORDER_TRADE_UPDATE.TRADE.nautilus_crate.json"))
    [fill] = of(out, ev.OrderFilled)
    assert not fill.liquidation and fill.status is OrderStatus.PARTIALLY_FILLED and fill.is_maker


# ---------------------------------------------------------------------------------- item 2: FINISHED without a fill


def _stop(tr: UserTranslator, cid: str = "O-20251211-053131-TEST-000-1") -> None:
    tr.expect(ev.OrderRequest(client_order_id=cid, intent_id="i", strategy_id="s", symbol="DOGEUSDT", side=Side.BUY,
                              order_type=OrderType.STOP_MARKET, quantity=Decimal(38),
                              trigger_price=Decimal("0.13855"), ts_event=0, ts_init=0))


def test_an_algo_order_finished_with_no_fill_ends() -> None:
    """The captured ALGO_UPDATE FINISHED, with ``aq`` 0: the child expired during a gap. Today it stays live."""
    tr, out = translator()
    _stop(tr)
    stream(tr, payload("ALGO_UPDATE.TRIGGERED.wrapped.nautilus.json"))
    finished = payload("ALGO_UPDATE.FINISHED.wrapped.nautilus.json")
    finished["o"] = {**finished["o"], "aq": "0", "ap": "0"}
    stream(tr, finished)
    [expired] = of(out, ev.OrderExpired)
    assert expired.client_order_id == "O-20251211-053131-TEST-000-1" and "0 of 38" in expired.reason
    assert tr.open_orders() == []  # nothing counts it as a live stop


def test_an_algo_order_finished_by_its_fill_ends_quietly() -> None:
    tr, out = translator()
    _stop(tr)
    stream(tr, payload("ALGO_UPDATE.TRIGGERED.wrapped.nautilus.json"))
    stream(tr, payload("ALGO_UPDATE.FINISHED.wrapped.nautilus.json"))  # aq 38 of q 38, as captured
    assert of(out, ev.OrderExpired) == [] and tr.open_orders() == []


def test_a_rest_lookup_of_a_finished_algo_without_fill_ends_it() -> None:
    """The REST shape (reference 3.3: GET /fapi/v1/algoOrder adds actualQty) after a stream gap."""
    tr, out = translator()
    _stop(tr, "x-sl")
    rest = {"algoId": 7, "clientAlgoId": "x-sl", "algoType": "CONDITIONAL", "orderType": "STOP_MARKET",
            "symbol": "DOGEUSDT", "side": "BUY", "quantity": "38", "algoStatus": "FINISHED", "triggerPrice": "0.13855",
            "actualOrderId": "88937381063", "actualQty": "0", "createTime": 1, "updateTime": 2}
    tr.accepted(rest)
    tr.finished(rest)
    assert [e.client_order_id for e in of(out, ev.OrderExpired)] == ["x-sl"] and tr.open_orders() == []
    tr2, out2 = translator()
    _stop(tr2, "x-sl")
    tr2.finished({**rest, "actualQty": "38"})
    assert of(out2, ev.OrderExpired) == [] and tr2.open_orders() == []


# ---------------------------------------------------------------------------------- item 7: fees in another asset


def test_a_fee_paid_in_bnb_keeps_its_asset() -> None:
    tr, out = translator()
    msg = payload("ORDER_TRADE_UPDATE.TRADE.nautilus_crate.json")
    msg["o"] = {**msg["o"], "N": "BNB", "n": "0.00001740"}  # the docs' fill, its fee paid in BNB
    stream(tr, msg)
    [fill] = of(out, ev.OrderFilled)
    assert (fill.commission, fill.commission_asset) == (Decimal("0.00001740"), "BNB")
    trades = json.loads((DATA / "GET_fapi_v1_userTrades.nautilus.json").read_text())
    bnb = copy.deepcopy(trades)
    bnb[0].update(commission="0.00001234", commissionAsset="BNB")
    tr2, out2 = translator()
    st = tr2.expect(ev.OrderRequest(client_order_id="c", intent_id="i", strategy_id="s", symbol="ETHUSDT",
                                    side=Side.SELL, order_type=OrderType.MARKET, quantity=Decimal("0.005"),
                                    ts_event=0, ts_init=0))
    tr2.trades_snapshot(st, bnb[:1], Decimal("0.005"))
    [f2] = of(out2, ev.OrderFilled)
    assert (f2.commission, f2.commission_asset, f2.status) == (Decimal("0.00001234"), "BNB", OrderStatus.FILLED)


def test_the_journal_round_trips_the_commission_asset() -> None:
    fill = ev.OrderFilled(client_order_id="c", order_id=1, trade_id=2, symbol="BTCUSDT", side=Side.BUY,
                          order_type=OrderType.MARKET, quantity=Decimal(1), price=Decimal(2), commission=Decimal("0.1"),
                          realized_pnl=Decimal(0), is_maker=False, status=OrderStatus.FILLED, commission_asset="BNB",
                          ts_event=1, ts_init=1)
    assert decode("OrderFilled", json.loads(json.dumps(encode(fill)))) == fill
    old = {k: v for k, v in encode(fill).items() if k != "commission_asset"}  # a journal written before the field
    assert decode("OrderFilled", json.loads(json.dumps(old))).commission_asset == "USDT"


# ---------------------------------------------------------------------------------- item 5: account modes


def test_modes_from_the_documented_payloads() -> None:
    account = json.loads((DATA / "GET_fapi_v2_account.nautilus_crate.json").read_text())
    dual = json.loads((DATA / "GET_fapi_v1_positionSide_dual.nautilus.json").read_text())
    modes = modes_from({**account, **dual})
    assert (modes.hedge, modes.multi_assets) == (True, False)
    with pytest.raises(AccountModeError, match=r"hedge mode.*one-way mode"):
        require_tradeable(modes)
    require_tradeable(modes_from({"dualSidePosition": False, "multiAssetsMargin": True}))  # traded, see README


def test_hedge_rows_and_multi_assets_switches_raise_alerts() -> None:
    tr, out = translator()
    stream(tr, payload("ACCOUNT_UPDATE.nautilus_crate.json"))  # BOTH, LONG and SHORT rows
    alerts = of(out, ev.Alert)
    assert [(a.kind, a.severity) for a in alerts] == [("account_mode", "critical")] and tr.modes.hedge
    assert "hedge mode" in alerts[0].message and "-4061" in alerts[0].message
    for on in (True, True, False):  # reference 8.3: {"e":"ACCOUNT_CONFIG_UPDATE",...,"ai":{"j":true}}
        stream(tr, {"e": "ACCOUNT_CONFIG_UPDATE", "E": 9, "T": 9, "ai": {"j": on}})
    stream(tr, {"e": "ACCOUNT_CONFIG_UPDATE", "E": 9, "T": 9, "ac": {"s": "BTCUSDT", "l": 25}})
    assert [a.message.split(":")[0] for a in of(out, ev.Alert)[1:]] == [
        "multi-assets margin mode", "multi-assets margin mode switched off"]
    hedge_rows = json.loads((DATA / "GET_fapi_v2_positionRisk.hedge.nautilus.json").read_text())
    assert venue_positions(hedge_rows) == []  # LONG/SHORT rows are not read as a net position


def test_positions_on_symbols_the_engine_does_not_trade_are_kept_aside() -> None:
    tr, out = translator(symbols=["FILUSDT"])
    snapshot = [VenuePosition(symbol="BTCUSDT", quantity=Decimal("0.5"), entry_price=Decimal(60000), leverage=5,
                              update_ms=1),
                VenuePosition(symbol="FILUSDT", quantity=Decimal(10), entry_price=Decimal("4.2"), leverage=2,
                              update_ms=1)]
    tr.positions_snapshot(snapshot, ["FILUSDT"], 1)
    stream(tr, {"e": "ACCOUNT_UPDATE", "E": 3, "T": 3, "a": {"m": "ORDER", "B": [], "P": [
        {"s": "ETHUSDT", "pa": "-1", "ep": "3000", "ps": "BOTH"}]}})
    assert [e.symbol for e in of(out, ev.PositionChanged)] == ["FILUSDT"]
    assert set(tr.positions) == {"FILUSDT"}
    assert tr.foreign_positions == {"BTCUSDT": (Decimal("0.5"), Decimal(60000)),
                                    "ETHUSDT": (Decimal(-1), Decimal(3000))}


def test_a_bnb_fee_is_not_booked_as_usdt() -> None:
    """The stated rule (live README, Binance section): fees are kept in their own asset, never converted; the
    USDT ledger books only USDT fees (Binance took the BNB from the BNB wallet)."""
    from kinetic_empire.core.bus import EventBus
    from kinetic_empire.portfolio import Portfolio

    bus = EventBus()
    portfolio = Portfolio(bus, Decimal(1000))
    tr = UserTranslator(bus.publish, lambda: 5, lambda s: 3)
    for asset, trade_id in (("BNB", 1), ("USDT", 2)):
        msg = payload("ORDER_TRADE_UPDATE.TRADE.nautilus_crate.json")
        msg["o"] = {**msg["o"], "N": asset, "n": "0.00001740" if asset == "BNB" else "0.01", "t": trade_id}
        stream(tr, msg)
    assert portfolio.fees_total == Decimal("0.01")
