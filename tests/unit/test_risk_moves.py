"""Moving stops and target positions through the risk gate: what is sent, in which order, and what is denied.

The invariant of a moved stop: the position is never without a stop. The new stop is requested first; the old
one is cancelled only after the venue accepted the new one; if the venue refuses the new one, the old one stays.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import (
    CancelRequest,
    OrderAccepted,
    OrderRejected,
    OrderRequest,
    ProtectionIntent,
    TargetPositionIntent,
)
from tests.support.risk_fakes import FakeAccount, Harness, denials, only_denial, only_request, requests

FIL = "FILUSDT"
NOTIONAL_100 = {"sizing": {"method": "fixed_notional", "notional": 100}}


def _move(h: Harness, price: float | None = None, *, kind: str = "stop", ref: float = 4.2, iid: str = "m1",
          **kw: Any) -> list[Any]:
    now = h.clock.now_ms()
    return h.publish(ProtectionIntent(intent_id=iid, strategy_id="s1", symbol=FIL, kind=kind, price=price,
                                      reference_price=ref, ts_event=now, ts_init=now, **kw))


def _accept(h: Harness, r: OrderRequest) -> list[Any]:
    now = h.clock.now_ms()
    return h.publish(OrderAccepted(client_order_id=r.client_order_id, order_id=7, symbol=r.symbol, side=r.side,
                                   order_type=r.order_type, quantity=r.quantity, price=None,
                                   trigger_price=r.trigger_price, reduce_only=r.reduce_only, ts_event=now,
                                   ts_init=now))


def _long_with_stop(h: Harness) -> OrderRequest:
    """An entry with a stop at 3.9, filled: returns the stop request (closePosition)."""
    (entry,) = requests(h.intent("OPEN_LONG", FIL, 4.0, intent_id="e1", stop_loss=3.9))
    h.account.set_position(FIL, entry.quantity, "4.0")
    (stop,) = requests(h.fill(entry, "4.0"))
    _accept(h, stop)
    return stop


def test_moved_stop_is_placed_first_and_the_old_one_cancelled_only_when_accepted() -> None:
    h = Harness(NOTIONAL_100)
    old = _long_with_stop(h)
    assert old.close_position and old.order_type is OrderType.STOP_MARKET
    new = only_request(_move(h, 4.0))  # break-even
    assert (new.order_type, new.side, new.reduce_only, new.close_position) == (
        OrderType.STOP_MARKET, Side.SELL, True, False)
    assert new.trigger_price == D("4.000") and new.quantity == D("25.0")
    assert new.intent_id == "e1"  # the entry's: the protection guard keeps it as the stop the position wants
    assert not [e for e in h.events if isinstance(e, CancelRequest)]  # nothing cancelled before acceptance
    after = _accept(h, new)
    assert [e.client_order_id for e in after if isinstance(e, CancelRequest)] == [old.client_order_id]


def test_a_refused_move_leaves_the_old_stop() -> None:
    h = Harness(NOTIONAL_100)
    old = _long_with_stop(h)
    new = only_request(_move(h, 4.0))
    now = h.clock.now_ms()
    h.publish(OrderRejected(client_order_id=new.client_order_id, symbol=FIL, code=-2021,
                            reason="Order would immediately trigger.", ts_event=now, ts_init=now))
    assert not [e for e in h.events if isinstance(e, CancelRequest)]
    # a later move still replaces the original stop
    newer = only_request(_move(h, 3.95, iid="m2"))
    assert [e.client_order_id for e in _accept(h, newer) if isinstance(e, CancelRequest)] == [old.client_order_id]


def test_two_moves_cancel_only_older_ones_and_keep_the_take_profit() -> None:
    h = Harness(NOTIONAL_100)
    (entry,) = requests(h.intent("OPEN_LONG", FIL, 4.0, intent_id="e1", stop_loss=3.9, take_profit=4.5))
    h.account.set_position(FIL, entry.quantity, "4.0")
    stop, tp = requests(h.fill(entry, "4.0"))
    a = only_request(_move(h, 3.95, iid="m1"))
    b = only_request(_move(h, 4.0, iid="m2"))
    assert [e.client_order_id for e in _accept(h, b) if isinstance(e, CancelRequest)] == sorted(
        [stop.client_order_id, a.client_order_id], key=[stop.client_order_id, a.client_order_id].index)
    assert not [e for e in _accept(h, a) if isinstance(e, CancelRequest)]  # b is newer: nothing to cancel
    t = only_request(_move(h, 4.6, kind="take_profit", iid="m3"))
    assert t.order_type is OrderType.TAKE_PROFIT_MARKET and t.trigger_price == D("4.600")
    assert [e.client_order_id for e in _accept(h, t) if isinstance(e, CancelRequest)] == [tp.client_order_id]


def test_trailing_stop_request() -> None:
    h = Harness(NOTIONAL_100)
    _long_with_stop(h)
    r = only_request(_move(h, None, trail_pct=1.26, activation_price=4.31))
    assert r.order_type is OrderType.TRAILING_STOP_MARKET and r.trigger_price is None
    assert r.callback_rate == D("1.3") and r.activation_price == D("4.310") and r.reduce_only
    assert any("callback rate rounded" in a for a in r.adjustments)


@pytest.mark.parametrize(("kw", "code"), [
    ({"price": 4.3}, "STOP_WRONG_SIDE"),  # a long's stop above the price would trigger at once
    ({"price": 4.1, "kind": "take_profit"}, "TAKE_PROFIT_WRONG_SIDE"),
    ({"trail_pct": 0.04}, "BAD_CALLBACK_RATE"),
    ({"trail_pct": 11}, "BAD_CALLBACK_RATE"),
    ({"trail_pct": 1, "activation_price": 4.1}, "ACTIVATION_WRONG_SIDE"),
    ({"trail_pct": 1, "kind": "take_profit"}, "BAD_INTENT"),
    ({"price": -1}, "BAD_STOP"),
])
def test_bad_moves_are_denied_and_nothing_is_sent(kw: dict[str, Any], code: str) -> None:
    h = Harness(NOTIONAL_100)
    _long_with_stop(h)
    before = len(h.events)
    price = kw.pop("price", None)
    got = only_denial(_move(h, price, **kw))
    assert got.code == code, got
    assert not [e for e in h.events[before:] if isinstance(e, (OrderRequest, CancelRequest))]


def test_no_position_no_move() -> None:
    h = Harness(NOTIONAL_100)
    assert only_denial(_move(h, 4.0)).code == "NO_POSITION"


# ----------------------------------------------------------------------------------- target positions


def _target(h: Harness, qty: str | None = None, notional: float | None = None, ref: float = 4.0,
            iid: str = "g1") -> list[Any]:
    now = h.clock.now_ms()
    return h.publish(TargetPositionIntent(intent_id=iid, strategy_id="s1", symbol=FIL,
                                          quantity=None if qty is None else D(qty), notional=notional,
                                          reference_price=ref, ts_event=now, ts_init=now))


def _holding(qty: str) -> Harness:
    acct = FakeAccount()
    if qty != "0":
        acct.set_position(FIL, qty, "4.0")
    return Harness(NOTIONAL_100, account=acct)


def test_target_from_flat_is_an_entry_of_the_whole_target() -> None:
    r = only_request(_target(_holding("0"), "-30.07"))
    assert (r.side, r.quantity, r.reduce_only) == (Side.SELL, D("30.0"), False)  # rounded to the step, down


def test_target_larger_same_side_adds_the_difference() -> None:
    r = only_request(_target(_holding("10"), "25"))
    assert (r.side, r.quantity, r.reduce_only) == (Side.BUY, D("15"), False)


def test_target_smaller_same_side_is_reduce_only() -> None:
    r = only_request(_target(_holding("25"), "10"))
    assert (r.side, r.quantity, r.reduce_only) == (Side.SELL, D("15"), True)


def test_target_zero_closes() -> None:
    r = only_request(_target(_holding("-25"), "0"))
    assert (r.side, r.quantity, r.reduce_only) == (Side.BUY, D("25.0"), True)


def test_target_on_the_other_side_closes_then_enters() -> None:
    close, entry = requests(_target(_holding("25"), "-10"))
    assert (close.side, close.quantity, close.reduce_only) == (Side.SELL, D("25.0"), True)
    assert (entry.side, entry.quantity, entry.reduce_only) == (Side.SELL, D("10"), False)


def test_target_by_notional() -> None:
    r = only_request(_target(_holding("0"), notional=-100.0, ref=4.0))
    assert (r.side, r.quantity) == (Side.SELL, D("25.0"))


def test_target_already_held_sends_nothing() -> None:
    h = _holding("25")
    events = _target(h, "25.04")
    assert not requests(events) and not denials(events)


def test_target_too_small_is_denied_by_the_exchange_rules() -> None:
    assert only_denial(_target(_holding("0"), "0.1")).code in ("NOTIONAL_BELOW_MIN", "QTY_BELOW_MIN",
                                                               "QTY_ROUNDS_TO_ZERO")


def test_the_new_intents_are_journaled_commands_and_read_back(tmp_path) -> None:
    from kinetic_empire.core.bus import EventBus
    from kinetic_empire.live.journal import Journal, read_events

    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    bus = EventBus()
    j.attach(bus)
    sent = [
        ProtectionIntent(intent_id="a-1", strategy_id="s", symbol=FIL, kind="stop", trail_pct=0.5,
                         activation_price=4.3, reference_price=4.2, ts_event=1, ts_init=1),
        TargetPositionIntent(intent_id="a-2", strategy_id="s", symbol=FIL, quantity=D("-2.5"), reference_price=4.2,
                             ts_event=2, ts_init=2),
    ]
    for e in sent:
        bus.publish(e)
        j.confirm(e)  # committed before anything leaves: the gate the execution port passes
    j.close()
    assert list(read_events(path, ("ProtectionIntent", "TargetPositionIntent"))) == sent
