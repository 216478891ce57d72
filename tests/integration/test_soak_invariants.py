"""The soak's invariants on hand-made journal and venue views: strict checks fire at once, bounded ones only
after their bound of engine up-time (a killed engine's down-time does not count), each episode once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import OrderRequest
from tests.support.soak_invariants import Invariants
from tests.support.soak_journal import JournalView
from tests.support.soak_venue import VenueView


def _req(cid: str, intent: str = "i-1", otype: OrderType = OrderType.MARKET) -> OrderRequest:
    return OrderRequest(client_order_id=cid, intent_id=intent, strategy_id="s", symbol="NEARUSDT", side=Side.BUY,
                        order_type=otype, quantity=Decimal(900), ts_event=0, ts_init=0)


def _order(cid: str, executed: str = "900", status: str = "FILLED", oid: int = 1) -> dict[str, Any]:
    return {"clientOrderId": cid, "orderId": oid, "symbol": "NEARUSDT", "side": "BUY", "type": "MARKET",
            "executedQty": executed, "status": status}


def _stop(cid: str, status: str = "NEW", side: str = "SELL") -> dict[str, Any]:
    return {"clientAlgoId": cid, "algoId": 7, "symbol": "NEARUSDT", "side": side, "orderType": "STOP_MARKET",
            "algoStatus": status}


def _journal(*reqs: OrderRequest, position: str = "0") -> JournalView:
    j = JournalView(0.0, requests={r.client_order_id: r for r in reqs}, wallet=Decimal(100))
    j.positions["NEARUSDT"] = Decimal(position)
    return j


def _venue(orders: list[dict[str, Any]] = [], algos: list[dict[str, Any]] = [],  # noqa: B006 (read only)
           position: str = "0") -> VenueView:
    return VenueView(0.0, orders=list(orders), algos=list(algos), positions={"NEARUSDT": Decimal(position)},
                     wallet=Decimal(100))


def _inv() -> Invariants:
    inv = Invariants(("NEARUSDT",), 0.0, stop_bound_s=10.0, grace_s=20.0)
    inv.engine_up(0.0)
    return inv


def test_a_venue_order_without_a_journal_row_is_named_at_once() -> None:
    inv = _inv()
    j = _journal(_req("a-1"))
    inv.check(j, _venue([_order("a-1"), _order("b-9", oid=2)]), j, 1.0, 0)
    assert [(v.kind, "b-9" in v.detail) for v in inv.violations] == [("order-not-journaled", True)]


def test_one_intent_executed_twice_under_two_ids_is_a_duplicate_by_effect() -> None:
    inv = _inv()
    j = _journal(_req("a-1"), _req("a-1-again"))
    inv.check(j, _venue([_order("a-1"), _order("a-1-again", oid=2)]), j, 1.0, 0)
    assert [v.kind for v in inv.violations] == ["duplicate-effect"]


def test_a_client_id_used_twice_on_the_venue() -> None:
    inv = _inv()
    j = _journal(_req("a-1"))
    inv.check(j, _venue([_order("a-1"), _order("a-1", oid=2)]), j, 1.0, 0)
    assert {v.kind for v in inv.violations} == {"duplicate-client-id", "duplicate-effect"}  # both executed


def test_journal_cancelled_but_venue_live() -> None:
    inv = _inv()
    j = _journal(_req("s-1", otype=OrderType.STOP_MARKET), position="900")
    j.terminal["s-1"] = "canceled"
    inv.check(j, _venue(algos=[_stop("s-1")], position="900"), j, 1.0, 0)
    assert [v.kind for v in inv.violations] == ["state-disagrees"]


def test_an_unprotected_position_counts_only_engine_up_time_and_is_one_violation() -> None:
    inv = _inv()
    j = _journal(position="900")
    naked = _venue(position="900")
    inv.check(j, naked, j, 1.0, 0)  # unprotected from t=1
    inv.engine_down(5.0)  # 4 s up so far
    inv.check(j, naked, j, 30.0, 0)  # down-time does not count
    assert inv.violations == []
    inv.engine_up(30.0)
    inv.check(j, naked, j, 35.0, 0)  # 9 s up: within the bound
    assert inv.violations == []
    inv.check(j, naked, j, 37.0, 0)  # 11 s up: beyond it
    inv.check(j, naked, j, 40.0, 0)  # the same episode: not again
    assert [v.kind for v in inv.violations] == ["unprotected"]
    inv.check(j, _venue(algos=[_stop("s-1")], position="900"), _journal(_req("s-1"), position="900"), 41.0, 0)
    assert len(inv.violations) == 1


def test_the_final_check_makes_every_bound_zero() -> None:
    inv = _inv()
    j = _journal(position="0")
    venue = _venue(position="900")
    venue.trades = [{"orderId": 1, "id": 5, "symbol": "NEARUSDT", "side": "BUY", "qty": "900", "price": "1.4"}]
    inv.check(j, venue, j, 1.0, 0)
    assert inv.violations == []
    inv.check(j, venue, j, 2.0, 0, final=True)
    assert sorted(v.kind for v in inv.violations) == ["fill-not-journaled", "position-disagrees", "unprotected"]


def test_a_reconciliation_flag_is_a_violation_once() -> None:
    inv = _inv()
    j = _journal()
    j.reconciles.append((40, {"reason": "resume", "actions": [
        {"kind": "flag", "symbol": "NEARUSDT", "believed": "1427", "exchange": "0", "action": "REDUCING"}]}))
    inv.check(j, _venue(), j, 1.0, 0)
    inv.check(j, _venue(), j, 2.0, 0)
    assert [(v.kind, v.detail) for v in inv.violations] == [
        ("reconcile-flag", "resume reconciliation: NEARUSDT believed 1427 venue 0")]
