"""Exits the gate did not decide from an intent are in flight too (risk/exits.py): protection's market close for a
trigger the entry fill already crossed (risk/protection.py), and an exit a restart finds journaled as sent and
unfinished (RiskManager.track_exit, from live/restore.py). A CLOSE right after either is netted, never a second
reduce-only exit."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderRejected, OrderRequest
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


def journaled_exit(qty: str, cid: str = "j-x") -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id="j", strategy_id="s1", symbol=FIL, side=Side.SELL,
                        order_type=OrderType.MARKET, quantity=D(qty), reduce_only=True, ts_event=0, ts_init=0)


def test_an_exit_resumed_from_the_journal_nets_closes_whatever_the_journal_believed_of_the_position() -> None:
    """restore.py hands the risk manager each reduce-only market exit journaled as sent and unfinished, with the
    journal's position (which may lag: its last fills can die unwritten with the process) and what it filled."""
    for believed in ("10", "0", "4"):
        h = Harness(NOTIONAL_100)
        h.rm.track_exit(journaled_exit("6"), D(believed), filled=D(2))  # 4 left to fill
        h.position_changed(FIL, "10", 2.0)  # the first reconciliation's snapshot
        assert only_request(h.intent("CLOSE", FIL, 2.0, intent_id=f"c{believed}")).quantity == D(6), believed
        denial = only_denial(h.intent("CLOSE", FIL, 2.0))
        assert denial.code == "EXIT_IN_FLIGHT" and "j-x" in denial.message, denial


def test_a_resumed_exit_the_venue_never_got_gives_the_position_back() -> None:
    h = Harness(NOTIONAL_100)
    h.rm.track_exit(journaled_exit("10"), D(0))
    h.position_changed(FIL, "10", 2.0)
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "EXIT_IN_FLIGHT"
    h.publish(OrderRejected(client_order_id="j-x", symbol=FIL, code=-2013, reason="never placed", ts_event=0,
                            ts_init=0))
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(10)


def test_resumed_stops_entries_and_finished_exits_are_not_in_flight() -> None:
    h = Harness(NOTIONAL_100)
    h.rm.track_exit(journaled_exit("6"), D(10), filled=D(6))  # filled while the journal still said open
    h.rm.track_exit(replace(journaled_exit("6", "k-x"), reduce_only=False), D(10))  # an entry
    h.rm.track_exit(replace(journaled_exit("6", "s-x"), order_type=OrderType.STOP_MARKET), D(10))
    h.position_changed(FIL, "10", 2.0)
    assert only_request(h.intent("CLOSE", FIL, 2.0)).quantity == D(10)
