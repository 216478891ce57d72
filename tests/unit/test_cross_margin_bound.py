"""Cross-margin liquidation prices re-solved only when the slack bound says they could matter (issue 17
target 4): every event, the wallet and the liquidation prices equal those of re-solving on every kline,
in runs where liquidations happen and where they do not."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import Liquidated
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange

T0 = 1_690_848_000_000
SYMBOLS = {"FILUSDT": 4.0, "NEARUSDT": 1.2, "ETHUSDT": 1800.0, "BTCUSDT": 29000.0}
SIZES = {"FILUSDT": D(400), "NEARUSDT": D(-1500), "ETHUSDT": D("1.0"), "BTCUSDT": D("-0.06")}


def run(rules: Any, brackets: Any, *, bounded: bool, leverage: int, sigma: float, seed: int,
        monkeypatch: pytest.MonkeyPatch, balance: int = 4000) -> tuple[list[Any], D, dict[str, D], int]:
    monkeypatch.setattr(SimulatedExchange, "bounded_liquidation_solves", bounded)
    events: list[Any] = []
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=events.append, symbols=list(SYMBOLS),
                           config=ExchangeConfig(initial_balance=D(balance), funding_rate=D(0),
                                                 fill_market_immediately=True))
    for sym, price in SYMBOLS.items():
        ex.set_leverage(sym, leverage)
        ex.on_bar(sym, T0, price, price, price, price)
        qty = SIZES[sym]
        ex.submit(symbol=sym, side=Side.BUY if qty > 0 else Side.SELL, order_type=OrderType.MARKET, quantity=abs(qty))
    rng = np.random.default_rng(seed)
    prices = dict(SYMBOLS)
    solves = 0
    original = ex._update_liquidation_prices

    def counted() -> None:
        nonlocal solves
        solves += 1
        original()

    monkeypatch.setattr(ex, "_update_liquidation_prices", counted)
    for i in range(1, 3000):
        t = T0 + i * 60_000
        clock.advance_to(t)
        for sym in SYMBOLS:
            o = prices[sym]
            c = o * float(np.exp(rng.normal(0, sigma)))
            hi, lo = max(o, c) * (1 + abs(rng.normal(0, sigma / 2))), min(o, c) * (1 - abs(rng.normal(0, sigma / 2)))
            ex.on_bar(sym, t, o, hi, lo, c)
            prices[sym] = c
    liq = {s: ex.liquidation_price(s) for s in SYMBOLS}
    return events, ex.wallet, liq, solves


CASES = [(20, 0.004, 1, 700), (20, 0.004, 2, 700), (3, 0.002, 3, 4000), (50, 0.01, 4, 600), (10, 0.003, 5, 1500)]


@pytest.mark.parametrize(("leverage", "sigma", "seed", "balance"), CASES)
def test_bounded_solves_change_nothing(rules, brackets, monkeypatch, leverage: int, sigma: float, seed: int,
                                       balance: int) -> None:
    kw = {"leverage": leverage, "sigma": sigma, "seed": seed, "balance": balance, "monkeypatch": monkeypatch}
    every = run(rules, brackets, bounded=False, **kw)
    bounded = run(rules, brackets, bounded=True, **kw)
    assert bounded[0] == every[0]  # every fill, position, balance and liquidation event, in order
    assert bounded[1] == every[1] and bounded[2] == every[2]
    assert bounded[3] < every[3]


def test_the_cases_include_liquidations_and_quiet_runs(rules, brackets, monkeypatch) -> None:
    liquidated = [any(isinstance(e, Liquidated) for e in run(rules, brackets, bounded=True, leverage=lev, sigma=s,
                                                             seed=seed, balance=bal, monkeypatch=monkeypatch)[0])
                  for lev, s, seed, bal in CASES]
    assert liquidated.count(True) >= 2 and liquidated.count(False) >= 2, liquidated


def test_a_quiet_run_solves_far_less(rules, brackets, monkeypatch) -> None:
    every = run(rules, brackets, bounded=False, leverage=3, sigma=0.002, seed=3, monkeypatch=monkeypatch)[3]
    bounded = run(rules, brackets, bounded=True, leverage=3, sigma=0.002, seed=3, monkeypatch=monkeypatch)[3]
    assert bounded * 20 < every, (bounded, every)
