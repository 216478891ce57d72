"""Cross longs the wallet covers are never solved for (exchange.cross_margin.covered_longs, issue 17 target 4):
the bound is conservative (whatever the prices, the full solve then gives every one of them 0.0), tight enough
to matter (just below it a price exists that liquidates), refused for shorts and unsafe tier tables, and a run
through it, with or without liquidations, gives exactly the events of re-solving after every kline."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import OrderType, Side
from kinetic_empire.core.events import Liquidated
from kinetic_empire.core.liquidation import float_tiers
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.book import INF, Book
from kinetic_empire.exchange.cross_margin import covered_longs, liquidation_of, solve_liquidation_prices
from kinetic_empire.resources import default_brackets

T0 = 1_690_848_000_000
PRICES = {"FILUSDT": 4.0, "NEARUSDT": 1.2, "ETHUSDT": 1800.0, "BTCUSDT": 29000.0}
LONGS = {"FILUSDT": D(400), "NEARUSDT": D(1500), "ETHUSDT": D("1.0"), "BTCUSDT": D("0.06")}
ENTRY_NOTIONAL = sum(float(q) * PRICES[s] for s, q in LONGS.items())  # 6,940


def books(rules: Any, rng: np.random.Generator, tables: list[Any], wallet_cover: float) -> tuple[list[Book], float]:
    """2 to 4 open longs at random entries and prices, with a wallet of ``wallet_cover`` times their entry
    notional."""
    out = []
    for sym in list(PRICES)[: 2 + int(rng.integers(0, 3))]:
        b = Book(rules[sym], None, 20)
        b.tiers = tables[int(rng.integers(0, len(tables)))]
        b.pos.entry_f = PRICES[sym] * float(rng.uniform(0.5, 2.0))
        b.pos.qty_f = float(rng.uniform(0.1, 5)) * 1000 / PRICES[sym]
        b.last = b.pos.entry_f
        out.append(b)
    return out, sum(b.pos.qty_f * b.pos.entry_f for b in out) * wallet_cover


def full_solve(held: list[Book], wallet: float) -> list[float]:
    """Every book's liquidation price from the full solve (no band, no covered short cut)."""
    solve_liquidation_prices(held, wallet, banded=False)
    return [liquidation_of(b) for b in held]


TABLES = [float_tiers(None), float_tiers(default_brackets()["BTCUSDT"]), float_tiers(default_brackets()["ETHUSDT"])]


@pytest.mark.parametrize("seed", range(30))
def test_covered_longs_have_no_liquidation_price_at_any_prices(rules, seed: int) -> None:
    rng = np.random.default_rng(seed)
    held, wallet = books(rules, rng, TABLES, float(rng.choice([1.0 + 1e-8, 1.000001, 1.01, 2.0])))
    assert covered_longs(held, wallet)
    assert solve_liquidation_prices(held, wallet) == len(held)
    assert all(b.pos.liq_f == 0.0 and (b.watch_low, b.watch_high) == (-INF, INF) for b in held)
    for _ in range(200):  # crashes, rallies and everything between, each price on its own
        for b in held:
            b.last = b.pos.entry_f * float(10 ** rng.uniform(-9, 4))
        assert full_solve(held, wallet) == [0.0] * len(held)


@pytest.mark.parametrize("short", [1e-3, 1e-6, 1e-9])
@pytest.mark.parametrize("seed", range(10))
def test_just_below_the_bound_a_crash_liquidates(rules, seed: int, short: float) -> None:
    """A wallet short of the entry notional (by 0.1% down to 1e-9 of it) is not covered, and prices near zero
    do liquidate: a bound that let it through (or any looser one) would skip a liquidation."""
    rng = np.random.default_rng(seed)
    held, wallet = books(rules, rng, TABLES, 1.0 - short)
    assert not covered_longs(held, wallet)
    for b in held:
        b.last = b.pos.entry_f * 1e-15
    assert any(liq > 0.0 for liq in full_solve(held, wallet))


def test_shorts_and_unsafe_tables_are_never_covered(rules) -> None:
    rng = np.random.default_rng(1)
    held, wallet = books(rules, rng, TABLES, 10.0)
    assert covered_longs(held, wallet)
    held[-1].pos.qty_f = -held[-1].pos.qty_f  # a short loses without limit
    assert not covered_longs(held, wallet)
    for table in (((1e4, 0.01, -5.0), (INF, 0.02, 95.0)), ((INF, 0.95, 0.0),)):  # negative cum; rate above 0.9
        held, wallet = books(rules, np.random.default_rng(2), [table], 10.0)
        assert not covered_longs(held, wallet)


def crash(rules: Any, brackets: Any, monkeypatch: pytest.MonkeyPatch, *, bounded: bool, balance: float,
          seed: int, klines: int = 1500) -> tuple[list[Any], D, dict[str, D], int]:
    """Four cross longs at leverage 20 while every price drifts down 0.2% a kline with noise (to about 5%):
    (events, wallet, liquidation prices at the end, solves)."""
    monkeypatch.setattr(SimulatedExchange, "bounded_liquidation_solves", bounded)
    events: list[Any] = []
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=events.append, symbols=list(PRICES),
                           config=ExchangeConfig(initial_balance=D(str(balance)), fill_market_immediately=True))
    for sym, price in PRICES.items():
        ex.set_leverage(sym, 20)
        ex.on_bar(sym, T0, price, price, price, price)
        ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.MARKET, quantity=LONGS[sym])
    solves = 0
    original = ex._update_liquidation_prices

    def counted() -> None:
        nonlocal solves
        solves += 1
        original()

    monkeypatch.setattr(ex, "_update_liquidation_prices", counted)
    rng = np.random.default_rng(seed)
    prices = dict(PRICES)
    for i in range(1, klines):
        t = T0 + i * 60_000
        clock.advance_to(t)
        for sym in PRICES:
            o = prices[sym]
            c = o * 0.998 * float(np.exp(rng.normal(0, 0.004)))
            hi, lo = max(o, c) * (1 + abs(rng.normal(0, 0.002))), min(o, c) * (1 - abs(rng.normal(0, 0.002)))
            ex.on_bar(sym, t, o, hi, lo, c)
            prices[sym] = c
    return events, ex.wallet, {s: ex.liquidation_price(s) for s in PRICES}, solves


@pytest.mark.parametrize(("cover", "seed"), [(1.01, 1), (1.5, 2), (0.95, 3), (0.9, 4), (0.5, 5)])
def test_a_crash_gives_the_events_of_solving_every_kline(rules, brackets, monkeypatch, cover: float,
                                                         seed: int) -> None:
    """Covered (no liquidation, almost no solves) or not (the band's way, liquidations): identical results."""
    balance = round(ENTRY_NOTIONAL * cover, 2)
    every = crash(rules, brackets, monkeypatch, bounded=False, balance=balance, seed=seed)
    bounded = crash(rules, brackets, monkeypatch, bounded=True, balance=balance, seed=seed)
    assert bounded[0] == every[0] and bounded[1] == every[1] and bounded[2] == every[2]
    liquidated = sum(isinstance(e, Liquidated) for e in every[0])
    if cover > 1:
        assert liquidated == 0 and bounded[3] * 50 < every[3]  # left: funding and the final queries
    else:
        assert liquidated >= 1
