"""The one liquidation formula (core/liquidation.py): float and Decimal agree, the result is Binance's
liquidation condition, and the risk guard's estimate is the price the simulated exchange liquidates at.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kinetic_empire.core.account import PositionView
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.liquidation import float_tiers, liquidation_price, maintenance_margin, tiers
from kinetic_empire.core.rules import LeverageBrackets
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.risk.liquidation import liquidation_price as risk_liquidation_price
from kinetic_empire.risk.liquidation import other_positions_terms

T0 = 1_690_848_000_000


def decimals(lo: int, hi: int, places: int) -> st.SearchStrategy[D]:
    """Decimals with at most ``places`` digits after the point, exactly representable as short strings."""
    return st.integers(lo * 10**places, hi * 10**places).map(lambda n: D(n).scaleb(-places))


@st.composite
def bracket_tables(draw: st.DrawFn) -> LeverageBrackets:
    """A Binance-shaped bracket table: rising caps and rates, ``cum`` making maintenance margin continuous."""
    n = draw(st.integers(1, 6))
    caps = sorted(set(draw(st.lists(st.integers(1, 10**9), min_size=n, max_size=n))))
    rates = sorted(set(draw(st.lists(decimals(1, 400, 4), min_size=len(caps), max_size=len(caps)))))
    caps = caps[: len(rates)]
    rows, floor, cum, prev_rate = [], D(0), D(0), D(0)
    for i, (cap, rate) in enumerate(zip(caps, rates), start=1):
        rate = rate / 1000  # 0.0001 % .. 40 %
        cum += floor * (rate - prev_rate)
        rows.append({"bracket": i, "initialLeverage": max(1, 126 - 20 * i), "notionalFloor": str(floor),
                     "notionalCap": str(cap), "maintMarginRatio": str(rate), "cum": str(cum)})  # fmt: skip
        floor, prev_rate = D(cap), rate
    return LeverageBrackets.from_api({"symbol": "XUSDT", "brackets": rows})


def near_a_cap(brackets: LeverageBrackets, notional: D) -> bool:
    """Float rounding may put a notional within a hair of a cap in the neighbouring tier."""
    return any(abs(notional - b.notional_cap) <= b.notional_cap * D("1e-9") for b in brackets.brackets)


@settings(max_examples=400, deadline=None)
@given(
    brackets=bracket_tables(),
    qty=decimals(-1_000_000, 1_000_000, 3),
    entry=decimals(0, 100_000, 4),
    margin=decimals(-(10**8), 10**8, 2),
)
def test_float_and_decimal_paths_agree(brackets, qty, entry, margin):
    assume(qty != 0 and entry > 0)
    exact = liquidation_price(qty, entry, margin, tiers(brackets))
    fast = liquidation_price(float(qty), float(entry), float(margin), float_tiers(brackets))
    assert isinstance(exact, D) and isinstance(fast, float)
    assume(not near_a_cap(brackets, abs(qty) * exact) and not near_a_cap(brackets, abs(qty) * entry))
    # a position whose liquidation price is within rounding of zero may land on either side of it
    assume(exact == 0 or exact > entry * D("1e-9"))
    if exact == 0:  # clamped at zero; the float path may stop within rounding above it
        assert 0 <= fast <= float(entry) * 1e-9
    else:
        assert abs(D(repr(fast)) - exact) <= exact * D("1e-9"), (exact, fast)


@settings(max_examples=400, deadline=None)
@given(
    brackets=bracket_tables(),
    qty=decimals(-1_000_000, 1_000_000, 3),
    entry=decimals(0, 100_000, 4),
    margin=decimals(0, 10**8, 2),
)
def test_at_the_liquidation_price_equity_equals_maintenance_margin(brackets, qty, entry, margin):
    """Binance's condition: margin plus the position's PnL at LP is exactly its maintenance margin."""
    assume(qty != 0 and entry > 0)
    table = tiers(brackets)
    lp = liquidation_price(qty, entry, margin, table)
    assume(lp > 0)
    equity = margin + qty * (lp - entry)
    mm = maintenance_margin(table, abs(qty) * lp)
    assert abs(equity - mm) <= max(abs(qty) * lp, margin) * D("1e-20"), (equity, mm)


def test_an_unbounded_position_has_no_liquidation_price():
    table = ((D(10**9), D("0.01"), D(0)),)
    assert liquidation_price(D(1), D(100), D(1000), table) == 0  # the wallet covers more than the price
    assert liquidation_price(D(0), D(100), D(1000), table) == 0
    assert liquidation_price(1.0, 100.0, 1000.0, float_tiers(None)) == 0.0


def test_the_guard_estimates_the_cross_margin_price_the_exchange_liquidates_at(rules, brackets):
    """Two open positions: the risk module's Decimal estimate equals the exchange's float solver."""
    clock = ReplayClock(T0)
    ex = SimulatedExchange(
        rules, brackets, clock=clock, emit=lambda e: None, symbols=["FILUSDT", "NEARUSDT"],
        config=ExchangeConfig(initial_balance=D(1000), funding_rate=D(0), fill_market_immediately=True),
    )  # fmt: skip
    for symbol, price in (("FILUSDT", 4.0), ("NEARUSDT", 1.0)):
        ex.set_leverage(symbol, 20)
        ex.on_bar(symbol, T0, price, price, price, price)
    ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.MARKET, quantity=D(2000))
    ex.submit(symbol="NEARUSDT", side=Side.SELL, order_type=OrderType.MARKET, quantity=D(8000))
    ex.on_bar("NEARUSDT", T0 + 60_000, 1.0, 1.01, 0.99, 1.005)  # the short loses a little
    positions = [PositionView(s, *ex.position(s)) for s in ("FILUSDT", "NEARUSDT")]
    terms = other_positions_terms(positions, "FILUSDT", brackets, ex.last_price_float)
    qty, entry, _ = ex.position("FILUSDT")
    ours = risk_liquidation_price(
        quantity=qty, entry_price=entry, wallet_balance=ex.wallet, brackets=brackets["FILUSDT"],
        other_maintenance=terms[0], other_upnl=terms[1],
    )  # fmt: skip
    theirs = ex.liquidation_price("FILUSDT")
    assert theirs > 0 and abs(ours - theirs) / theirs < D("1e-9"), (ours, theirs)
