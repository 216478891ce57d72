"""Intents to orders: client ids, flips, closes, reduces, protective orders and trading state."""

from __future__ import annotations

from decimal import Decimal as D

from kinetic_empire.core.enums import OrderType, Side, TradingState, WorkingType
from kinetic_empire.core.events import CancelRequest, OrderCanceled, OrderRequest, TradingStateChanged
from kinetic_empire.risk import CLIENT_ID_RE, client_id
from tests.support.risk_fakes import (
    FakeAccount,
    Harness,
    all_rules,
    denials,
    only_denial,
    only_request,
    requests,
    states,
)

FIL = "FILUSDT"
NOTIONAL_100 = {"sizing": {"method": "fixed_notional", "notional": 100}}


def cancels(events: list) -> list[CancelRequest]:
    return [e for e in events if isinstance(e, CancelRequest)]


# -------------------------------------------------------------------------------------- client ids


def test_client_ids_are_derived_from_the_intent() -> None:
    assert client_id("ema-7", "e") == "ema-7-e"
    assert client_id("ema-7", "x", 2) == "ema-7-x3"
    long = "strategy_with_a_long_name:BTCUSDT-123456"
    a, b = client_id(long, "sl"), client_id(long + "7", "sl")
    assert a == client_id(long, "sl") and a != b
    assert all(CLIENT_ID_RE.match(c) and len(c) <= 36 for c in (a, b, client_id("héllo wörld", "tp")))


# ------------------------------------------------------------------------------------------ entries


def test_open_short_market() -> None:
    h = Harness(NOTIONAL_100)
    req = only_request(h.intent("OPEN_SHORT", FIL, 2.0, intent_id="abc"))
    assert (req.client_order_id, req.side, req.order_type, req.quantity) == (
        "abc-e",
        Side.SELL,
        OrderType.MARKET,
        D("50.0"),
    )


def test_opposite_position_is_closed_first() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "-12.3", 2.1)
    h = Harness(NOTIONAL_100, account=acct)
    close, entry = requests(h.intent("OPEN_LONG", FIL, 2.0, intent_id="f"))
    assert (close.client_order_id, close.side, close.reduce_only, close.quantity) == ("f-x", Side.BUY, True, D("12.3"))
    assert (entry.client_order_id, entry.side, entry.reduce_only, entry.quantity) == ("f-e", Side.BUY, False, D("50.0"))


def test_same_direction_adds() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "10", 2.0)
    h = Harness(NOTIONAL_100, account=acct)
    assert only_request(h.intent("OPEN_LONG", FIL, 2.0)).quantity == D("50.0")


def test_flip_is_all_or_nothing() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "-12.3", 2.1)
    h = Harness({"sizing": {"method": "fixed_notional", "notional": 1}}, account=acct)
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "NOTIONAL_BELOW_MIN"


# --------------------------------------------------------------------------------- closes, reduces


def test_close_is_reduce_only_market_for_the_whole_position() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "33.3", 2.0)
    h = Harness(account=acct)
    req = only_request(h.intent("CLOSE", FIL, 2.0, intent_id="c"))
    assert (req.client_order_id, req.side, req.order_type, req.reduce_only, req.quantity) == (
        "c-x",
        Side.SELL,
        OrderType.MARKET,
        True,
        D("33.3"),
    )


def test_close_of_dust_rounds_up_to_min_qty() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "-0.03", 2.0)  # below min qty 0.1 (a partial fill on another grid)
    h = Harness(account=acct)
    req = only_request(h.intent("CLOSE", FIL, 2.0))
    assert req.quantity == D("0.1") and req.side is Side.BUY
    assert req.adjustments == ("qty rounded up 0.03→0.1 (reduce-only, trimmed by the exchange)",)


def test_close_above_market_max_is_split() -> None:
    r = all_rules()["BTCUSDT"]
    acct = FakeAccount(D(10) ** 9)
    acct.set_position("BTCUSDT", r.market_max_qty * 2 + D("0.5"), 90_000)
    h = Harness(account=acct)
    reqs = requests(h.intent("CLOSE", "BTCUSDT", 90_000.0, intent_id="big"))
    assert [q.quantity for q in reqs] == [r.market_max_qty, r.market_max_qty, D("0.5")]
    assert [q.client_order_id for q in reqs] == ["big-x", "big-x2", "big-x3"]
    assert all(q.reduce_only for q in reqs)


def test_close_when_flat_is_denied() -> None:
    assert only_denial(Harness().intent("CLOSE", FIL, 2.0)).code == "NO_POSITION"


def test_reduce_by_fraction_and_quantity() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "-12.3", 2.0)
    h = Harness(account=acct)
    req = only_request(h.intent("REDUCE", FIL, 2.0, fraction=0.5, intent_id="r"))
    assert (req.client_order_id, req.quantity, req.side, req.reduce_only) == ("r-r", D("6.1"), Side.BUY, True)
    assert req.adjustments == ("qty rounded 6.15→6.1",)
    canceled(h, req)  # each exit ends before the next (else the next is sized net of it: test_risk_exits_in_flight)
    req = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D("2.35")))
    assert req.quantity == D("2.3")
    canceled(h, req)
    whole = only_request(h.intent("REDUCE", FIL, 2.0, quantity=D("50")))
    assert whole.quantity == D("12.3")
    canceled(h, whole)
    assert only_denial(h.intent("REDUCE", FIL, 2.0, fraction=0.0)).code == "BAD_FRACTION"
    assert only_denial(h.intent("REDUCE", FIL, 2.0, fraction=1.5)).code == "BAD_FRACTION"
    assert only_denial(h.intent("REDUCE", FIL, 2.0, fraction=0.001)).code == "QTY_ROUNDS_TO_ZERO"
    assert only_denial(h.intent("REDUCE", FIL, 2.0)).code == "BAD_INTENT"


def canceled(h: Harness, request: OrderRequest) -> None:
    h.publish(OrderCanceled(client_order_id=request.client_order_id, order_id=1, symbol=request.symbol,
                            ts_event=0, ts_init=0))


def test_reduce_below_min_notional_is_fine() -> None:
    """Reduce-only orders are exempt from MIN_NOTIONAL."""
    acct = FakeAccount()
    acct.set_position(FIL, "10", 2.0)
    h = Harness(account=acct)
    assert only_request(h.intent("REDUCE", FIL, 2.0, quantity=D("0.1"))).quantity == D("0.1")


# ------------------------------------------------------------------------------- protective orders


def test_protective_orders_after_the_entry_fills_long() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9004, take_profit=3.1006, intent_id="p"))
    assert entry.client_order_id == "p-e"
    sl, tp = requests(h.fill(entry, "3.0"))
    assert (sl.client_order_id, sl.order_type, sl.side, sl.trigger_price) == (
        "p-sl",
        OrderType.STOP_MARKET,
        Side.SELL,
        D("2.901"),
    )
    assert (tp.client_order_id, tp.order_type, tp.side, tp.trigger_price) == (
        "p-tp",
        OrderType.TAKE_PROFIT_MARKET,
        Side.SELL,
        D("3.101"),
    )
    for o in (sl, tp):
        assert o.close_position and o.quantity is None and not o.reduce_only
        assert o.working_type is WorkingType.CONTRACT_PRICE


def test_protective_orders_short_round_on_the_safe_side() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_SHORT", FIL, 3.0, stop_loss=3.1006, take_profit=2.9004))
    sl, tp = requests(h.fill(entry, "3.0"))
    assert (sl.side, sl.trigger_price, tp.trigger_price) == (Side.BUY, D("3.100"), D("2.900"))


def test_trigger_exactly_on_the_grid_is_kept() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9, take_profit=3.2))
    sl, tp = requests(h.fill(entry, "3.0"))
    assert (sl.trigger_price, tp.trigger_price) == (D("2.900"), D("3.200"))


def test_protective_placed_once_on_partial_fills() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9))
    assert len(requests(h.fill(entry, "3.0", qty="10", final=False))) == 1
    assert requests(h.fill(entry, "3.0", qty="23.3")) == []


def test_flat_cancels_open_protective_orders() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9, take_profit=3.2))
    sl, tp = requests(h.fill(entry, "3.0"))
    h.position_changed(FIL, "33.3", "3.0")
    now = h.clock.now_ms()
    h.publish(OrderCanceled(client_order_id=tp.client_order_id, order_id=2, symbol=FIL, ts_event=now, ts_init=now))
    out = h.position_changed(FIL, "0")
    assert [c.client_order_id for c in cancels(out)] == [sl.client_order_id]
    assert cancels(h.position_changed(FIL, "0")) == []


def test_new_entry_replaces_older_protection() -> None:
    h = Harness(NOTIONAL_100)
    first = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9, intent_id="a"))
    h.fill(first, "3.0")
    second = only_request(h.intent("OPEN_LONG", FIL, 3.1, stop_loss=3.0, intent_id="b"))
    out = h.fill(second, "3.1")
    assert [c.client_order_id for c in cancels(out)] == ["a-sl"]
    assert [r.client_order_id for r in requests(out)] == ["b-sl"]


def test_entry_fill_through_the_stop_closes_at_market() -> None:
    h = Harness(NOTIONAL_100)
    entry = only_request(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9, take_profit=3.2, intent_id="g"))
    (close,) = requests(h.fill(entry, "2.85"))  # gapped through the stop
    assert (close.client_order_id, close.order_type, close.reduce_only, close.side) == (
        "g-xs",
        OrderType.MARKET,
        True,
        Side.SELL,
    )
    assert close.quantity == entry.quantity


def test_stop_on_the_wrong_side_or_rounding_onto_entry() -> None:
    h = Harness(NOTIONAL_100)
    assert only_denial(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=3.1)).code == "STOP_WRONG_SIDE"
    assert only_denial(h.intent("OPEN_SHORT", FIL, 3.0, stop_loss=2.9)).code == "STOP_WRONG_SIDE"
    assert only_denial(h.intent("OPEN_LONG", FIL, 3.0, take_profit=2.9)).code == "TAKE_PROFIT_WRONG_SIDE"
    # one tick off the grid just below the entry: a long's stop rounds up onto the entry
    assert only_denial(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=2.9995)).code == "STOP_TOO_CLOSE"
    assert only_denial(h.intent("OPEN_LONG", FIL, 3.0, stop_loss=-1.0)).code == "BAD_STOP"


def test_unknown_symbol_and_missing_brackets() -> None:
    h = Harness()
    assert only_denial(h.intent("OPEN_LONG", "FOOUSDT", 3.0)).code == "UNKNOWN_SYMBOL"
    h2 = Harness(brackets={})
    assert only_denial(h2.intent("OPEN_LONG", FIL, 3.0)).code == "NO_LEVERAGE_BRACKETS"


# ------------------------------------------------------------------------------------ trading state


def test_reducing_blocks_entries_but_not_exits() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "10", 2.0)
    h = Harness(NOTIONAL_100, account=acct)
    h.rm.set_state(TradingState.REDUCING, "operator: maintenance")
    (ev,) = states(h.events)
    assert (ev.state, ev.previous, ev.cause, ev.symbol) == (
        TradingState.REDUCING,
        TradingState.ACTIVE,
        "operator: maintenance",
        None,
    )
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "TRADING_REDUCING"
    close = only_request(h.intent("CLOSE", FIL, 2.0))
    assert close.reduce_only
    canceled(h, close)
    assert only_request(h.intent("REDUCE", FIL, 2.0, fraction=0.5)).reduce_only


def test_halted_blocks_everything() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "10", 2.0)
    h = Harness({"state": "HALTED"}, account=acct)
    assert [(e.state, e.cause) for e in states(h.events)] == [(TradingState.HALTED, "config")]
    assert h.rm.state is TradingState.HALTED
    assert only_denial(h.intent("CLOSE", FIL, 2.0)).code == "TRADING_HALTED"
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "TRADING_HALTED"
    h.rm.set_state(TradingState.ACTIVE, "operator resume")
    assert only_request(h.intent("CLOSE", FIL, 2.0)).reduce_only


def test_symbol_state_is_per_symbol() -> None:
    h = Harness({**NOTIONAL_100, "symbol_states": {FIL: "REDUCING"}})
    (ev,) = states(h.events)
    assert (ev.symbol, ev.state) == (FIL, TradingState.REDUCING)
    assert only_denial(h.intent("OPEN_LONG", FIL, 2.0)).code == "TRADING_REDUCING"
    assert only_request(h.intent("OPEN_LONG", "BTCUSDT", 90_000.0, quantity=D("0.002")))
    h.rm.set_state(TradingState.ACTIVE, "operator", FIL)
    assert isinstance(h.events[-1], TradingStateChanged) and h.events[-1].state is TradingState.ACTIVE
    assert only_request(h.intent("OPEN_LONG", FIL, 2.0))


def test_no_event_when_state_does_not_change() -> None:
    h = Harness()
    h.rm.set_state(TradingState.ACTIVE, "noop")
    assert states(h.events) == [] and denials(h.events) == []


def test_engine_pause_and_operator_state_do_not_undo_each_other():
    """A stale-feed pause held by the engine and the operator's switch are separate sources."""
    from kinetic_empire.core.enums import TradingState
    from kinetic_empire.risk.state import TradingStates

    changes: list[tuple[TradingState, str]] = []
    states = TradingStates(TradingState.ACTIVE, {}, lambda s, prev, cause, sym: changes.append((s, cause)))
    states.pause("feed", "FEED_STALE")
    assert states.account() is TradingState.REDUCING
    assert states.entry_denial("FILUSDT").code == "ENTRIES_PAUSED"
    states.set_operator(TradingState.REDUCING, "operator says reduce")
    states.resume("feed", "FEED_FRESH")
    assert states.account() is TradingState.REDUCING  # the operator's REDUCING stays
    states.set_operator(TradingState.ACTIVE, "operator resumes")
    assert states.account() is TradingState.ACTIVE and states.entry_denial("FILUSDT") is None
    assert (TradingState.REDUCING, "FEED_STALE") in changes


def test_absurd_quantities_are_denied_not_raised() -> None:
    """Found by the API fuzzer: a quantity of 5.8e307 made the quantisation raise InvalidOperation inside the
    risk manager. Any quantity no symbol could take (huge, NaN, infinite) is a BAD_QUANTITY denial."""
    h = Harness()
    for qty in (D("5.8e307"), D("1e16"), D("NaN"), D("Infinity")):
        assert only_denial(h.intent("OPEN_LONG", "FILUSDT", 4.0, quantity=qty)).code == "BAD_QUANTITY", qty
    assert only_request(h.intent("OPEN_LONG", "FILUSDT", 4.0, quantity=D(10))).quantity == 10
