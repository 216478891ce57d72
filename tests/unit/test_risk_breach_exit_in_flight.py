"""Protection's market close for a trigger the entry fill already crossed is an exit in flight (risk/protection.py,
risk/exits.py): a strategy CLOSE right after it is netted, not a second reduce-only exit."""

from __future__ import annotations

from decimal import Decimal as D

from kinetic_empire.core.enums import OrderType
from tests.support.risk_fakes import Harness, only_denial, only_request, requests

FIL = "FILUSDT"
NOTIONAL_100 = {"sizing": {"method": "fixed_notional", "notional": 100}}


def breached(h: Harness, *, shown_first: bool) -> D:
    """A long entry with its stop at 1.9 filled at 1.8 (a gap through the stop): the breach close goes out."""
    entry = only_request(h.intent("OPEN_LONG", FIL, 2.0, stop_loss=1.9, intent_id="e"))
    if shown_first:  # the account shows the position before the fill arrives (the user stream often does)
        h.position_changed(FIL, str(entry.quantity), 1.8)
    close = only_request(h.fill(entry, 1.8))
    assert (close.order_type, close.reduce_only, close.client_order_id) == (OrderType.MARKET, True, "e-xs"), close
    assert close.quantity is not None
    return close.quantity


def test_a_close_right_after_a_breach_close_is_denied_naming_it() -> None:
    for shown_first in (False, True):
        h = Harness(NOTIONAL_100)
        qty = breached(h, shown_first=shown_first)
        if not shown_first:
            h.position_changed(FIL, str(qty), 1.8)
        denial = only_denial(h.intent("CLOSE", FIL, 1.8, intent_id="c"))
        assert denial.code == "EXIT_IN_FLIGHT" and "waiting_for=e-xs" in denial.message, denial
        start = len(h.events)
        h.rm.commands.close_position(FIL, source="ops", cause="twice")  # an operator's close: the same gate
        assert only_denial(h.events[start:]).code == "EXIT_IN_FLIGHT"


def test_once_the_breach_close_fills_and_the_account_shows_it_a_new_position_closes_normally() -> None:
    h = Harness(NOTIONAL_100)
    qty = breached(h, shown_first=True)
    close = next(r for r in requests(h.events) if r.client_order_id == "e-xs")
    h.fill(close, 1.8)
    assert only_denial(h.intent("CLOSE", FIL, 1.8)).code == "EXIT_IN_FLIGHT"  # filled, account not showing it yet
    h.position_changed(FIL, "0")
    h.position_changed(FIL, "7", 1.8)  # a later position of its own
    assert only_request(h.intent("CLOSE", FIL, 1.8)).quantity == D(7)
    assert qty > 0
