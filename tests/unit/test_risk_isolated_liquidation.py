"""The liquidation-distance guard under isolated margin: Binance's isolated formula (the position's own wallet,
TMM1 = 0, UPNL1 = 0), not the cross one, for every symbol ``risk.margin_type`` (or the run's) makes isolated.

Expected prices are worked by hand from Binance's FAQ formula (reference section 9.3):
``LP = (WB - TMM1 + UPNL1 + cum - side * |Q| * EP) / (|Q| * MMR - side * |Q|)``.
FILUSDT's first bracket (bundled snapshot): notional below 50,000, MMR 0.006, cum 0.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from kinetic_empire.core.enums import MarginType
from kinetic_empire.core.rules import LeverageBrackets
from kinetic_empire.risk.liquidation import isolated_liquidation_price, isolated_wallet_after
from tests.support.risk_fakes import FakeAccount, Harness, all_brackets, only_denial, only_request
from tests.support.sim_venue import Venue

FIL = "FILUSDT"
NEAR = "NEARUSDT"
# 500 FIL at 2.0 at 20x: isolated wallet 1000 / 20 = 50
BASE = {"sizing": {"method": "fixed_notional", "notional": 1000}, "leverage": {FIL: 20}}


def btc_bracket() -> LeverageBrackets:
    row = {"bracket": 1, "initialLeverage": 125, "notionalFloor": 0, "notionalCap": 50_000, "maintMarginRatio": "0.004"}
    return LeverageBrackets.from_api({"symbol": "BTCUSDT", "brackets": [{**row, "cum": 0}]})


def test_binances_worked_isolated_example() -> None:
    # the FAQ's check: isolated long 1 BTC at 10,000, isolated wallet 1,000, MMR 0.004, cum 0:
    # (1000 - 10000) / (0.004 - 1) = 9036.1445783...
    lp = isolated_liquidation_price(quantity=D(1), entry_price=D(10_000), isolated_wallet=D(1000),
                                    brackets=btc_bracket())
    assert lp.quantize(D("0.00001")) == D("9036.14458")
    # the same short: (1000 + 10000) / (0.004 + 1) = 10956.1752988...
    short = isolated_liquidation_price(quantity=D(-1), entry_price=D(10_000), isolated_wallet=D(1000),
                                       brackets=btc_bracket())
    assert short.quantize(D("0.00001")) == D("10956.17530")


def test_the_isolated_wallet_an_entry_leaves() -> None:
    flat = FakeAccount().position(FIL)
    assert isolated_wallet_after(flat, D(500), D(2), 20) == D(50)
    acct = FakeAccount()
    acct.set_position(FIL, "500", "2.0", leverage=20)
    assert isolated_wallet_after(acct.position(FIL), D(500), D("2.2"), 20) == D(50) + D(55)  # adds to the wallet
    assert isolated_wallet_after(acct.position(FIL), D(-800), D("2.2"), 20) == D(88)  # a flip: the new side only


def test_isolated_entry_is_denied_where_cross_would_pass() -> None:
    guard = {"guards": {"min_liquidation_distance_pct": 5}}
    # cross: the 10,000 wallet backs a 1,000 position, so it can never be liquidated (LP <= 0): allowed
    assert only_request(Harness({**BASE, **guard}).intent("OPEN_LONG", FIL, 2.0))
    # isolated: (50 - 500 * 2) / (500 * 0.006 - 500) = 950 / 497 = 1.911468812..., 4.4266 % below 2.0 (shown
    # truncated to 4.42)
    iso = Harness({**BASE, **guard, "margin_type": {FIL: "ISOLATED"}})
    d = only_denial(iso.intent("OPEN_LONG", FIL, 2.0))
    assert d.code == "LIQUIDATION_TOO_CLOSE"
    assert "liquidation=1.91146881" in d.message and "distance_pct=4.42" in d.message, d.message
    # short: (50 + 500 * 2) / (500 * 0.006 + 500) = 1050 / 503 = 2.087475149..., 4.37 % above (truncated)
    d = only_denial(iso.intent("OPEN_SHORT", FIL, 2.0))
    assert "liquidation=2.08747514" in d.message and "distance_pct=4.37" in d.message, d.message
    loose = Harness({**BASE, "guards": {"min_liquidation_distance_pct": 4}, "margin_type": {FIL: "ISOLATED"}})
    assert only_request(loose.intent("OPEN_LONG", FIL, 2.0))


def test_the_runs_margin_type_applies_when_the_symbol_has_no_override() -> None:
    from kinetic_empire.risk import RiskConfig

    cfg = RiskConfig.from_mapping({**BASE, "guards": {"min_liquidation_distance_pct": 5}},
                                  default_margin_type="ISOLATED")
    assert cfg.margin_type_for(FIL) is MarginType.ISOLATED
    assert only_denial(Harness(cfg).intent("OPEN_LONG", FIL, 2.0)).code == "LIQUIDATION_TOO_CLOSE"
    crossed = RiskConfig.from_mapping({**BASE, "guards": {"min_liquidation_distance_pct": 5},
                                       "margin_type": {FIL: "crossed"}}, default_margin_type="ISOLATED")
    assert only_request(Harness(crossed).intent("OPEN_LONG", FIL, 2.0))


def test_adding_to_an_isolated_position_counts_its_wallet() -> None:
    acct = FakeAccount()
    acct.set_position(FIL, "500", "2.0", leverage=20)  # its isolated wallet: 50
    h = Harness({"sizing": {"method": "fixed_notional", "notional": 1100}, "leverage": {FIL: 20},
                 "guards": {"min_liquidation_distance_pct": 10}, "margin_type": {FIL: "ISOLATED"}}, account=acct)
    # +500 at 2.2: 1000 FIL at 2.1, wallet 50 + 55 = 105: (105 - 2100) / (6 - 1000) = 1995 / 994 = 2.007042253...
    d = only_denial(h.intent("OPEN_LONG", FIL, 2.2))
    assert "liquidation=2.00704225" in d.message and "distance_pct=8.77" in d.message, d.message


def test_other_positions_do_not_move_an_isolated_liquidation_price() -> None:
    acct = FakeAccount(wallet=1100)
    acct.set_position(NEAR, "1000", "2.0", leverage=2)
    acct.prices[NEAR] = 0.93  # -1070 unrealized on NEAR: under cross it eats nearly all of FIL's margin
    cfg = {**BASE, "guards": {"min_liquidation_distance_pct": 4}}
    assert only_denial(Harness(cfg, account=acct).intent("OPEN_LONG", FIL, 2.0)).code == "LIQUIDATION_TOO_CLOSE"
    iso = Harness({**cfg, "margin_type": {FIL: "ISOLATED"}}, account=acct)
    assert only_request(iso.intent("OPEN_LONG", FIL, 2.0))  # 1.9115 as above, 4.42 % away


@pytest.mark.parametrize("qty", ["500", "-500", "3000"])
def test_the_guards_estimate_is_the_price_the_exchange_liquidates_at(rules, brackets, qty: str) -> None:
    v = Venue(rules, brackets)
    v.ex.set_leverage(FIL, 20)
    v.ex.set_margin_type(FIL, MarginType.ISOLATED)
    (v.buy if not qty.startswith("-") else v.sell)(qty.lstrip("-"))
    v.bar(2.0, 2.0, 2.0, 2.0)
    q, entry, _lev = v.ex.position(FIL)
    estimate = isolated_liquidation_price(
        quantity=q, entry_price=entry, isolated_wallet=isolated_wallet_after(FakeAccount().position(FIL), q, entry, 20),
        brackets=all_brackets()[FIL])
    assert v.ex.isolated_wallet(FIL) == isolated_wallet_after(FakeAccount().position(FIL), q, entry, 20)
    assert float(v.ex.liquidation_price(FIL)) == pytest.approx(float(estimate), rel=1e-12)
