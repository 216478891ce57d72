"""An exit is sized net of the exits already in flight (risk/exits.py), on a real bus and risk manager."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import (
    OperatorCommand,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequest,
)
from kinetic_empire.risk.exits import ExitsInFlight
from tests.support.risk_fakes import FakeAccount, Harness, denials, only_denial, only_request, requests

FIL = "FILUSDT"
NOTIONAL_100 = {"sizing": {"method": "fixed_notional", "notional": 100}}


def holding(qty: str = "10", *, fast: bool = False) -> Harness:
    acct = FakeAccount()
    acct.set_position(FIL, qty, 2.0)
    h = Harness(NOTIONAL_100, account=acct)
    if fast:
        h.rm.use_fast_path()
    return h


def accepted(h: Harness, r: OrderRequest) -> list[Any]:
    return h.publish(OrderAccepted(client_order_id=r.client_order_id, order_id=7, symbol=r.symbol, side=r.side,
                                   order_type=r.order_type, quantity=r.quantity, price=None, trigger_price=None,
                                   reduce_only=r.reduce_only, ts_event=0, ts_init=0))


def test_a_close_while_a_close_is_accepted_unfilled_is_denied_naming_it() -> None:
    h = holding()
    first = only_request(h.intent("CLOSE", FIL, 2.0, intent_id="c1"))
    assert (first.quantity, first.reduce_only) == (D(10), True)
    accepted(h, first)
    denial = only_denial(h.intent("CLOSE", FIL, 2.0, intent_id="c2"))
    assert denial.code == "EXIT_IN_FLIGHT" and "waiting_for=c1-x" in denial.message, denial


def test_a_burst_of_closes_sends_one_exit() -> None:
    """The soak's backfill: five klines, five CLOSEs, one order."""
    for fast in (False, True):
        h = holding(fast=fast)
        events = [e for i in range(5) for e in h.intent("CLOSE", FIL, 2.0, intent_id=f"b{i}")]
        assert [r.client_order_id for r in requests(events)] == ["b0-x"]
        assert [d.code for d in denials(events)] == ["EXIT_IN_FLIGHT"] * 4


def test_a_reduce_is_sized_net_of_the_reduce_in_flight() -> None:
    h = holding()
    first = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    assert first.quantity == D(4)
    half = only_request(h.intent("REDUCE", FIL, 2.0, fraction=0.5))
    assert half.quantity == D(3), half  # half of the 6 the first one leaves, not of 10
    assert any("in flight" in note for note in half.adjustments), half.adjustments
    rest = only_request(h.intent("CLOSE", FIL, 2.0))
    assert rest.quantity == D(3)
    assert only_denial(h.intent("REDUCE", FIL, 2.0, fraction=0.1)).code == "EXIT_IN_FLIGHT"


def test_a_reduce_larger_than_what_is_left_closes_only_the_rest() -> None:
    h = holding()
    only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    assert only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(8))).quantity == D(6)


def test_after_the_fill_and_the_position_the_next_exit_passes() -> None:
    h = holding()
    first = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    h.fill(first, 2.0)
    # the fill is recorded, the account still shows 10 (a reconciliation fetches positions afterwards)
    assert only_request(h.intent("REDUCE", FIL, 2.0, fraction=0.5, intent_id="r2")).quantity == D(3)
    h.position_changed(FIL, "6")
    h2 = holding()  # and with the position shown first, as a user stream often does
    second = only_request(h2.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    h2.position_changed(FIL, "6")
    h2.fill(second, 2.0)
    assert only_request(h2.intent("CLOSE", FIL, 2.0)).quantity == D(6)


def test_a_filled_close_blocks_until_the_account_shows_it() -> None:
    """The soak: the close's last fill came from a reconciliation, the position only at its end."""
    h = holding()
    close = only_request(h.intent("CLOSE", FIL, 2.0, intent_id="x9"))
    h.fill(close, 2.0)
    denial = only_denial(h.intent("CLOSE", FIL, 2.0, intent_id="x10"))
    assert denial.code == "EXIT_IN_FLIGHT" and "x9-x" in denial.message
    h.position_changed(FIL, "0")
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "NO_POSITION"
    h.position_changed(FIL, "5", 2.0)  # a new position later: its exits are not held by the old one
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(5)


def test_a_partial_fill_keeps_the_rest_in_flight() -> None:
    h = holding()
    first = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    h.fill(first, 2.0, qty=1, final=False)
    assert only_request(h.intent("CLOSE", FIL, 2.0, intent_id="a")).quantity == D(6)
    h2 = holding()
    first = only_request(h2.intent("REDUCE", FIL, 2.0, quantity=D(4)))
    h2.fill(first, 2.0, qty=1, final=False)
    h2.position_changed(FIL, "9")
    assert only_request(h2.intent("CLOSE", FIL, 2.0)).quantity == D(6)


def test_cancel_reject_and_expiry_give_the_rest_back() -> None:
    for end in (OrderCanceled, OrderExpired, OrderRejected):
        h = holding()
        first = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D(4)))
        h.fill(first, 2.0, qty=1, final=False)
        h.position_changed(FIL, "9")
        extra: dict[str, Any] = {"code": -2022, "reason": "ReduceOnly Order is rejected"} if end is OrderRejected \
            else {"order_id": 7}
        h.publish(end(client_order_id=first.client_order_id, symbol=FIL, ts_event=0, ts_init=0, **extra))
        assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(9), end


def test_an_exit_of_unknown_outcome_counts_until_answered() -> None:
    h = holding()
    close = only_request(h.intent("CLOSE", FIL, 2.0, intent_id="u"))
    h.publish(OrderOutcomeUnknown(client_order_id=close.client_order_id, symbol=FIL, opens=False,
                                  reason="timeout", ts_event=0, ts_init=0))
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "EXIT_IN_FLIGHT"
    h.position_changed(FIL, "10", 2.0)  # a statement of the position does not answer the exit
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "EXIT_IN_FLIGHT"
    h.publish(OrderRejected(client_order_id=close.client_order_id, symbol=FIL, code=-2013,
                            reason="look-up gave up", ts_event=0, ts_init=0))
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(10)


def test_protective_stops_do_not_count() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 2.0, stop_loss=1.8, take_profit=2.4))
    placed = requests(h.fill(entry, 2.0))
    h.position_changed(FIL, "50", 2.0)
    kinds = {r.order_type for r in placed}
    assert OrderType.STOP_MARKET in kinds and OrderType.TAKE_PROFIT_MARKET in kinds, placed
    for r in placed:
        accepted(h, r)
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(50)


def test_a_flips_close_is_forgotten_when_the_position_turns() -> None:
    h = holding("-12.3")
    close, entry = requests(h.intent("OPEN_LONG", FIL, 2.0))
    assert close.reduce_only and not entry.reduce_only
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "EXIT_IN_FLIGHT"  # the flip closes the short already
    h.fill(close, 2.0)
    h.fill(entry, 2.0)
    h.position_changed(FIL, "50", 2.0)
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(50)


def test_operator_closes_are_netted_too() -> None:
    h = holding()
    only_request(h.intent("CLOSE", FIL, 2.0, intent_id="s"))
    h.rm.commands.close_position(FIL, source="ops", cause="duplicate")
    events = h.publish(OperatorCommand(action="flatten", symbols=(FIL,), source="ops", cause="", ts_event=0,
                                       ts_init=0))
    assert not requests(events)
    assert [d.code for d in denials(h.events)] == ["EXIT_IN_FLIGHT", "EXIT_IN_FLIGHT"], denials(h.events)


def test_only_market_exits_count() -> None:
    """The tracker itself: a resting stop, take-profit or closePosition order handed to it is not in flight."""
    bus = EventBus()
    exits = ExitsInFlight(bus)
    common: dict[str, Any] = {"intent_id": "p", "strategy_id": "s", "symbol": FIL, "side": Side.SELL, "ts_event": 0,
                              "ts_init": 0}
    for i, (kind, qty, close_position) in enumerate([(OrderType.STOP_MARKET, D(10), False),
                                                    (OrderType.TAKE_PROFIT_MARKET, D(10), False),
                                                    (OrderType.STOP_MARKET, None, True)]):
        exits.sent(OrderRequest(client_order_id=f"p-{i}", order_type=kind, quantity=qty, reduce_only=not close_position,
                                close_position=close_position, trigger_price=D("1.8"), **common), D(10))
    assert not exits.tracking and exits.available(FIL, D(10)) is None
    exits.sent(OrderRequest(client_order_id="m", order_type=OrderType.MARKET, quantity=D(4), reduce_only=True,
                            **common), D(10))
    assert exits.waiting(FIL) == ("m",) and exits.available(FIL, D(10)) == D(6)
    exits.sent(OrderRequest(client_order_id="e", order_type=OrderType.MARKET, quantity=D(4), **common), D(10))
    assert exits.waiting(FIL) == ("m",)  # an entry is no exit
