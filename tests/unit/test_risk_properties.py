"""Property tests over the real exchangeInfo snapshot (every TRADING symbol).

1. Every OrderRequest the manager emits (entries, flip closes, exits and the protective orders placed
   after the entry fills) passes ``SymbolRules.check_order`` with mark = reference price, and its
   client id is one Binance accepts.
2. risk_per_trade never loses more than its budget (plus one lot step) when the stop is hit,
   taker fees on entry and exit included.
3. An entry never needs more margin than is available, nor more notional than its bracket allows.

Symbols missing from the bundled brackets file (276 of 559) get a generic bracket table so their
filters are exercised too; the brackets do not affect the filters.
"""

from __future__ import annotations

import math
from decimal import Decimal as D
from functools import cache

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kinetic_empire.core.enums import OrderType
from kinetic_empire.core.events import OrderRequest
from kinetic_empire.core.rules import LeverageBrackets, SymbolRules
from kinetic_empire.risk import CLIENT_ID_RE
from tests.support.risk_fakes import TAKER, FakeAccount, Harness, all_brackets, all_rules, denials, requests

GENERIC = [
    (1, 50, 0, 50_000, "0.01", 0),
    (2, 20, 50_000, 500_000, "0.025", 750),
    (3, 10, 500_000, 2_000_000, "0.05", 13_250),
    (4, 5, 2_000_000, 10_000_000, "0.1", 113_250),
    (5, 1, 10_000_000, 50_000_000, "0.5", 4_113_250),
]


@cache
def brackets() -> dict[str, LeverageBrackets]:
    out = dict(all_brackets())
    for sym, r in all_rules().items():
        if r.is_trading and sym not in out:
            keys = ("bracket", "initialLeverage", "notionalFloor", "notionalCap", "maintMarginRatio", "cum")
            rows = [dict(zip(keys, row)) for row in GENERIC]
            out[sym] = LeverageBrackets.from_api({"symbol": sym, "brackets": rows})
    return out


@cache
def trading() -> list[str]:
    return sorted(s for s, r in all_rules().items() if r.is_trading)


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10**e)


@st.composite
def prices(draw: st.DrawFn, r: SymbolRules) -> float:
    lo = float(max(r.min_price, r.tick_size)) * 20  # at least 20 ticks, so a stop has room
    hi = float(r.max_price) if r.max_price > 0 else 1e6
    assume(lo < hi)
    return float(f"{draw(log_uniform(lo, hi)):.10g}")


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    sym = draw(st.sampled_from(trading()))
    r = all_rules()[sym]
    price = draw(prices(r))
    method = draw(st.sampled_from(["fixed_quantity", "fixed_notional", "percent_equity", "risk_per_trade"]))
    sizing: dict = {"method": method}
    if method == "fixed_quantity":
        sizing["quantity"] = float(f"{draw(log_uniform(1e-4, 1e7)):.6g}")
    elif method == "fixed_notional":
        sizing["notional"] = float(f"{draw(log_uniform(0.5, 1e8)):.6g}")
    elif method == "percent_equity":
        sizing["percent"] = draw(st.sampled_from([0.5, 5, 10, 50, 100, 300, 1000]))
    else:
        sizing["percent"] = draw(st.sampled_from([0.1, 0.5, 1, 2, 5, 25]))
    top = brackets()[sym].brackets[0].initial_leverage
    leverage = draw(st.integers(1, top))
    equity = D(f"{draw(log_uniform(1, 1e10)):.2f}")
    long = draw(st.booleans())
    stop_frac = draw(st.floats(0.002, 0.5))
    with_stop = method == "risk_per_trade" or draw(st.booleans())
    with_tp = draw(st.booleans())
    limit_off = draw(st.one_of(st.none(), st.floats(-0.04, 0.04)))
    existing = draw(st.sampled_from([0, 0, 0, 1, -1]))
    return {
        "sym": sym, "price": price, "sizing": sizing, "leverage": leverage, "equity": equity, "long": long,
        "stop": (price * (1 - stop_frac) if long else price * (1 + stop_frac)) if with_stop else None,
        "tp": (price * (1 + stop_frac) if long else price * (1 - stop_frac)) if with_tp else None,
        "limit": None if limit_off is None else float(f"{price * (1 + limit_off):.10g}"),
        "existing": existing,
    }  # fmt: skip


def run(s: dict) -> tuple[Harness, list, list[OrderRequest]]:
    acct = FakeAccount(s["equity"])
    r = all_rules()[s["sym"]]
    if s["existing"]:
        qty = max(r.market_min_qty, r.round_qty(D(100) / D(str(s["price"])), market=True)) * s["existing"]
        acct.set_position(s["sym"], qty, s["price"])
    cfg = {"sizing": s["sizing"], "leverage": {s["sym"]: s["leverage"]}, "guards": {"max_open_positions": None}}
    h = Harness(cfg, account=acct, brackets=brackets())
    kw = {"stop_loss": s["stop"], "take_profit": s["tp"], "limit_price": s["limit"]}
    events = h.intent("OPEN_LONG" if s["long"] else "OPEN_SHORT", s["sym"], s["price"], **kw)
    emitted = requests(events)
    assert len(denials(events)) + (1 if emitted else 0) == 1, events
    protective: list[OrderRequest] = []
    if emitted:
        entry = emitted[-1]
        fill = entry.price if entry.price is not None else r.round_price_nearest(D(str(s["price"])))
        protective = requests(h.fill(entry, fill))
    return h, events, emitted + protective


def assert_valid(r: SymbolRules, reqs: list[OrderRequest], mark: float) -> None:
    for q in reqs:
        bad = r.check_order(
            side=q.side, order_type=q.order_type, quantity=q.quantity, price=q.price, trigger_price=q.trigger_price,
            mark_price=D(str(mark)), reduce_only=q.reduce_only, close_position=q.close_position,
        )  # fmt: skip
        assert bad is None, (bad, q)
        assert CLIENT_ID_RE.match(q.client_order_id), q.client_order_id


PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(scenarios())
def test_every_emitted_order_passes_the_symbol_filters(s: dict) -> None:
    _, _, reqs = run(s)
    assert_valid(all_rules()[s["sym"]], reqs, s["price"])


@PROPS
@given(scenarios())
def test_entries_fit_margin_and_bracket(s: dict) -> None:
    h, _, reqs = run(s)
    entries = [q for q in reqs if q.client_order_id.endswith("-e")]
    if not entries:
        return
    (e,) = entries
    price = e.price if e.price is not None else D(str(s["price"]))
    lev = s["leverage"]
    existing = abs(h.account.position(s["sym"]).quantity) * D(str(s["price"]))
    same_side = bool(s["existing"]) and (s["existing"] > 0) == s["long"]
    flipping = bool(s["existing"]) and not same_side
    usable = s["equity"] * D("0.99") + (existing if flipping else 0)  # a flip frees the old margin (1x)
    assert e.quantity * price / lev + e.quantity * price * TAKER <= usable
    held = existing if same_side else 0
    assert held + e.quantity * price <= brackets()[s["sym"]].max_notional(lev)


@PROPS
@given(scenarios().filter(lambda s: s["sizing"]["method"] == "risk_per_trade"))
def test_risk_per_trade_never_loses_more_than_the_budget(s: dict) -> None:
    _, _, reqs = run(s)
    entries = [q for q in reqs if q.client_order_id.endswith("-e")]
    if not entries:
        return
    (e,) = entries
    r = all_rules()[s["sym"]]
    entry = e.price if e.price is not None else D(str(s["price"]))
    budget = s["equity"] * D(str(s["sizing"]["percent"])) / 100
    stops = [D(str(s["stop"]))] + [q.trigger_price for q in reqs if q.order_type is OrderType.STOP_MARKET]
    for stop in stops:
        per_unit = abs(entry - stop) + TAKER * (entry + stop)
        step = r.market_step_size if e.order_type is OrderType.MARKET else r.step_size
        assert e.quantity * per_unit <= budget + step * per_unit, (e, stop, budget)


@settings(max_examples=200, deadline=None)
@given(
    sym=st.sampled_from(trading()),
    qty_steps=st.integers(1, 10**6),
    fraction=st.one_of(st.none(), st.floats(0.0001, 1.0)),
    short=st.booleans(),
)
def test_exits_pass_the_filters(sym: str, qty_steps: int, fraction: float | None, short: bool) -> None:
    r = all_rules()[sym]
    price = float(max(r.min_price, r.tick_size) * 1000)
    acct = FakeAccount(10**9)
    qty = r.market_step_size * qty_steps * (-1 if short else 1)
    acct.set_position(sym, qty, price)
    h = Harness({}, account=acct, brackets=brackets())
    if fraction is None:
        events = h.intent("CLOSE", sym, price)
        total = sum(q.quantity for q in requests(events))
        assert total >= abs(qty)  # a close covers the whole position (reduce-only trims any excess)
    else:
        events = h.intent("REDUCE", sym, price, fraction=fraction)
    if not requests(events):
        assert denials(events)[0].code in ("QTY_ROUNDS_TO_ZERO", "QTY_BELOW_MIN")
    assert_valid(r, requests(events), price)
