"""Isolated margin in the simulated exchange: the position's own wallet, Binance's isolated liquidation price,
a loss bounded by the isolated margin, adding and removing margin, and Binance's refusals."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.core.enums import MarginType
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.core.events import FundingApplied, Liquidated, OrderFilled
from kinetic_empire.core.liquidation import liquidation_price, tiers
from tests.support.sim_venue import Venue

FIL = "FILUSDT"


def _isolated(rules, brackets, leverage: int = 10, **config) -> Venue:
    v = Venue(rules, brackets, **config)
    v.ex.set_leverage(FIL, leverage)
    v.ex.set_margin_type(FIL, MarginType.ISOLATED)
    return v


def test_opening_moves_the_initial_margin_into_the_isolated_wallet(rules, brackets):
    v = _isolated(rules, brackets)
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    fee = v.of(OrderFilled)[-1].commission
    assert v.ex.isolated_wallet(FIL) == D("400.00000000")
    assert v.ex.wallet == D(10_000) - fee  # the total wallet: the margin is set aside, not spent
    assert v.ex.available_balance() == D(10_000) - fee - D(400)
    v.bar(4.0, 4.2, 4.0, 4.2)  # +200 unrealized: stays with the isolated position
    assert v.ex.available_balance() == D(10_000) - fee - D(400)
    assert v.ex.position_initial_margin(FIL) == D("400.00000000")


def test_liquidation_price_is_binances_isolated_formula(rules, brackets):
    v = _isolated(rules, brackets)
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    expected = liquidation_price(D(1000), D("4.0"), D(400), tiers(brackets[FIL]))
    assert float(v.ex.liquidation_price(FIL)) == pytest.approx(float(expected), rel=1e-12)
    assert 3.6 < expected < 3.7  # 10x: about 10 % below, less the maintenance margin
    cross = Venue(rules, brackets)  # the same position under cross margin is backed by the whole wallet
    cross.ex.set_leverage(FIL, 10)
    cross.buy("1000")
    cross.bar(4.0, 4.0, 4.0, 4.0)
    assert cross.ex.liquidation_price(FIL) < D("1.5")


def test_liquidation_loses_exactly_the_isolated_margin(rules, brackets):
    v = _isolated(rules, brackets)
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    before = v.ex.wallet
    liq = float(v.ex.liquidation_price(FIL))
    v.bar(3.9, 3.9, liq - 0.01, 3.8)
    (event,) = v.of(Liquidated)
    assert v.ex.position(FIL)[0] == 0 and v.ex.isolated_wallet(FIL) == 0
    assert v.ex.wallet == before - D(400)
    assert event.realized_pnl - event.fee == -D(400)  # the close at the liquidation price, then the clearance


def test_add_and_remove_margin(rules, brackets):
    v = _isolated(rules, brackets)
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    first = v.ex.liquidation_price(FIL)
    assert v.ex.modify_isolated_margin(FIL, D(100), add=True) == D("500.00000000")
    assert v.ex.liquidation_price(FIL) < first  # more margin: further away
    assert v.ex.modify_isolated_margin(FIL, D(100), add=False) == D("400.00000000")
    with pytest.raises(ExchangeError) as err:
        v.ex.modify_isolated_margin(FIL, D(1), add=False)  # nothing above the initial margin at the mark
    assert err.value.code == -4051
    with pytest.raises(ExchangeError) as err:
        v.ex.modify_isolated_margin(FIL, D(1_000_000), add=True)
    assert err.value.code == -4050


def test_reducing_returns_the_reduced_share_and_a_flip_starts_over(rules, brackets):
    v = _isolated(rules, brackets)
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    v.sell("250")
    v.bar(4.4, 4.4, 4.4, 4.4)
    assert v.ex.isolated_wallet(FIL) == D("300.00000000")
    assert v.of(OrderFilled)[-1].realized_pnl == D("100.00000000")  # (4.4 - 4.0) x 250, to the wallet
    v.sell("1000")  # flip to short 250 at 4.0
    v.bar(4.0, 4.0, 4.0, 4.0)
    assert v.ex.position(FIL)[0] == D(-250) and v.ex.isolated_wallet(FIL) == D("100.00000000")


def test_funding_is_booked_to_the_isolated_wallet(rules, brackets):
    v = _isolated(rules, brackets, funding_rate=D("0.001"))
    v.buy("1000")
    v.bar(4.0, 4.0, 4.0, 4.0)
    for _ in range(8 * 60):
        v.bar(4.0, 4.0, 4.0, 4.0)
    (funding,) = v.of(FundingApplied)
    assert funding.amount == D("-4.00000000")  # a long pays 0.1 % of 4000
    assert v.ex.isolated_wallet(FIL) == D("396.00000000")


def test_margin_type_changes_are_refused_as_on_binance(rules, brackets):
    v = Venue(rules, brackets)
    with pytest.raises(ExchangeError) as err:
        v.ex.set_margin_type(FIL, MarginType.CROSSED)
    assert err.value.code == -4046
    v.buy("100")
    with pytest.raises(ExchangeError) as err:
        v.ex.set_margin_type(FIL, MarginType.ISOLATED)
    assert err.value.code == -4047  # an open order
    v.bar(4.0, 4.0, 4.0, 4.0)
    with pytest.raises(ExchangeError) as err:
        v.ex.set_margin_type(FIL, MarginType.ISOLATED)
    assert err.value.code == -4048  # a position
    with pytest.raises(ExchangeError) as err:
        v.ex.modify_isolated_margin(FIL, D(10), add=True)
    assert err.value.code == -1130
