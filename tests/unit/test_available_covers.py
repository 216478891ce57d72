"""``Margin.available_covers`` (issue 17 target 4): the float bound the margin check asks before the exact Decimal
available balance. It must never say "covered" for an amount above the exact balance (the check would then let
through an order the exact sum refuses), and it must say so for amounts clearly below (else it saves nothing).
Accounts here are random: longs and shorts at several leverages, an isolated position, marks, queued market
orders and resting limits, on prices of very different sizes."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import MarginType, OrderType, Side, TimeInForce
from kinetic_empire.core.errors import ExchangeError
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange

T0 = 1_690_848_000_000
PRICES = {"FILUSDT": 4.0, "NEARUSDT": 1.2, "ETHUSDT": 1800.0, "BTCUSDT": 29000.0, "DOGEUSDT": 0.07}


def account(rules: Any, brackets: Any, seed: int) -> tuple[SimulatedExchange, np.random.Generator]:
    rng = np.random.default_rng(seed)
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=lambda e: None, symbols=list(PRICES),
                           config=ExchangeConfig(initial_balance=D(str(round(float(rng.uniform(1e3, 1e6)), 2))),
                                                 fill_market_immediately=True))
    for i, (sym, price) in enumerate(PRICES.items()):
        ex.set_leverage(sym, int(rng.choice([1, 2, 5, 20])))
        if i == 3 and seed % 2:
            ex.set_margin_type(sym, MarginType.ISOLATED)
        p = price * float(rng.uniform(0.8, 1.2))
        ex.on_bar(sym, T0, p, p, p, p)
        if rng.uniform() < 0.8:
            step = rules[sym].step_size
            qty = (D(str(float(rng.uniform(50, 3000)) / p)) // step) * step
            with contextlib.suppress(ExchangeError):
                ex.submit(symbol=sym, side=Side.BUY if rng.uniform() < 0.6 else Side.SELL, order_type=OrderType.MARKET,
                          quantity=max(qty, rules[sym].min_qty * 10))
    return ex, rng


def move(ex: SimulatedExchange, rng: np.random.Generator, rules: Any, t: int) -> None:
    """New prices (and sometimes a mark), a queued market order and a resting limit here and there."""
    ex.config = replace(ex.config, fill_market_immediately=False)  # orders queue for the next price
    for sym, book in ex._books.items():
        c = book.last * float(np.exp(rng.normal(0, 0.05)))
        ex.on_bar(sym, t, book.last, max(book.last, c), min(book.last, c), c)
        book.mark = c * float(rng.uniform(0.99, 1.01)) if rng.uniform() < 0.3 else 0.0
        r = rules[sym]
        if rng.uniform() < 0.3 and not book.market:
            qty = max(r.min_qty * 3, (D(str(100 / c)) // r.step_size) * r.step_size)
            with contextlib.suppress(ExchangeError):
                ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.MARKET, quantity=qty)
        if rng.uniform() < 0.2:
            price = r.round_price_nearest(D(repr(c * 0.9)))
            qty = max(r.min_qty * 3, (D(str(100 / c)) // r.step_size) * r.step_size)
            with contextlib.suppress(ExchangeError):
                ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.LIMIT, quantity=qty, price=price,
                          time_in_force=TimeInForce.GTC)


def amounts(exact: D) -> list[D]:
    """Amounts at and just around the exact balance (down to its last place), and far from it."""
    ulp = D("0.00000001")
    near = [exact + k * ulp for k in (-3, -1, 0, 1, 2, 5, 50, 1000)]
    near += [exact + k * ulp / 100 for k in (1, 3, 10, 30, 60)]  # below its last place
    rel = [exact * (1 + D(e)) for e in ("1e-15", "1e-12", "1e-9", "-1e-9", "-1e-6")]
    return near + rel + [exact - abs(exact) / 10 - 1, exact + 1, D(0), D("-1e9")]


@pytest.mark.parametrize("seed", range(24))
def test_covered_only_when_the_exact_balance_is_at_least_the_amount(rules, brackets, seed: int) -> None:
    ex, rng = account(rules, brackets, seed)
    covered = 0
    for i in range(1, 30):
        move(ex, rng, rules, T0 + i * 60_000)
        exact = ex.available_balance()
        for amount in amounts(exact):
            if ex.available_covers(amount):
                assert amount <= exact, (amount, exact)
                covered += 1
        if exact > 10:  # tight enough to matter: a tenth below the balance is always covered
            assert ex.available_covers(exact - exact / 10)
            assert ex.available_covers(exact * (1 - D("1e-9")) - 1)
    assert covered > 0


def test_refused_and_accepted_orders_are_the_exact_checks(rules, brackets, monkeypatch) -> None:
    """An order for just more than the available balance is refused and one for just less accepted, with the
    bound asked first (as the margin check does) or never."""
    outcomes = []
    for ask in (True, False):
        if not ask:
            monkeypatch.setattr(SimulatedExchange, "available_covers", lambda self, needed: False)
        ex, _ = account(rules, brackets, 5)
        got = []
        for k in (-2, -1, 0, 1, 2):
            book = ex._books["ETHUSDT"]
            ref = D(repr(book.last))
            lev = book.pos.leverage
            fee = ex.config.taker_fee
            # the most ETH the balance pays for, margin plus fee, then a step either side
            step = rules["ETHUSDT"].step_size
            most = (ex.available_balance() / (ref / lev + ref * fee)) // step * step
            qty = most + k * step
            try:
                ex._check_margin(book, Side.BUY if book.pos.qty >= 0 else Side.SELL, qty, None)
                got.append(True)
            except ExchangeError:
                got.append(False)
        outcomes.append(got)
    assert outcomes[0] == outcomes[1]
    assert True in outcomes[0] and False in outcomes[0]


def _rounded_up_account(rules: Any, brackets: Any) -> SimulatedExchange:
    """A small wallet and fifteen resting limits at leverage 3 whose margins (price * qty / 3) each end in 2/3 of
    the 8th place: quantised, each rounds up by a third of it, so the exact balance lies 5e-8 below the float sum of
    the same terms, far more than 1e-12 of their sizes."""
    ex = SimulatedExchange(rules, brackets, clock=ReplayClock(T0), emit=lambda e: None, symbols=["FILUSDT"],
                           config=ExchangeConfig(initial_balance=D("100")))
    ex.set_leverage("FILUSDT", 3)
    ex.on_bar("FILUSDT", T0, 4.0, 4.0, 4.0, 4.0)
    placed = 0
    for ticks in range(3600, 3990, 7):
        price, qty = D(ticks) / 1000, D("2.0")
        if ticks * 20 % 3 == 2 and placed < 15:  # (price * qty * 1e8 = ticks * 20 * 1e4, and 1e4 is 1 mod 3)
            ex.submit(symbol="FILUSDT", side=Side.BUY, order_type=OrderType.LIMIT, quantity=qty, price=price,
                      time_in_force=TimeInForce.GTC)
            placed += 1
    assert placed == 15
    return ex


def test_the_quantised_terms_are_allowed_for(rules, brackets) -> None:
    """Amounts a tenth of the 8th place and more above the exact balance are not covered, where the float sum of
    the terms before quantisation lies well above them; amounts clearly below are."""
    ex = _rounded_up_account(rules, brackets)
    exact = ex.available_balance()
    assert ex.covers_float(0.0, float(ex.wallet))  # (the float sum's own estimate; the wallet passed as given)
    for k in (1, 3, 10, 30, 100, 300):
        assert not ex.available_covers(exact + k * D("1E-10")), k
    assert ex.available_covers(exact - D("0.000001"))


def _covered_longs(rules: Any, brackets: Any, seed: int) -> tuple[SimulatedExchange, np.random.Generator]:
    """Longs at leverage 1 on every symbol, the wallet (small or large) covering them: the bound takes their entry
    notional from the liquidation solve's Cover, not from the books."""
    rng = np.random.default_rng(seed)
    small = seed % 2 == 0
    ex = SimulatedExchange(rules, brackets, clock=ReplayClock(T0), emit=lambda e: None, symbols=list(PRICES),
                           config=ExchangeConfig(initial_balance=D(str(round(float(
                               rng.uniform(300, 500) if small else rng.uniform(1e4, 1e6)), 2))),
                               fill_market_immediately=True))  # fmt: skip
    for sym, price in PRICES.items():
        ex.set_leverage(sym, 1)
        p = price * float(rng.uniform(0.8, 1.2))
        ex.on_bar(sym, T0, p, p, p, p)
        step = rules[sym].step_size
        qty = (D(str(float(rng.uniform(25, 60) if small else rng.uniform(50, 3000)) / p)) // step) * step
        ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.MARKET, quantity=max(qty, rules[sym].min_qty),
                  rules_checked=True)  # (small notionals: below some symbols' minimum)
    return ex, rng


@pytest.mark.parametrize("seed", range(16))
def test_covered_longs_at_leverage_one_are_covered_only_below_the_exact_balance(rules, brackets, seed: int) -> None:
    ex, rng = _covered_longs(rules, brackets, seed)
    covered = 0
    for i in range(1, 30):
        for sym, book in ex._books.items():
            c = book.last * float(np.exp(rng.normal(0, 0.05)))
            ex.on_bar(sym, T0 + i * 60_000, book.last, max(book.last, c), min(book.last, c), c)
            book.mark = c * float(rng.uniform(0.99, 1.01)) if rng.uniform() < 0.3 else 0.0
        cover = ex._cover
        assert cover is not None and cover.terms is not None and cover.unit and cover.trade == ex._next_trade_id
        exact = ex.available_balance()
        for amount in amounts(exact):
            if ex.available_covers(amount):
                assert amount <= exact, (amount, exact)
                covered += 1
        assert ex.available_covers(exact * (1 - D("1e-9")) - D("0.00001"))
    assert covered > 0


def test_the_rounding_of_covered_longs_is_allowed_for(rules, brackets) -> None:
    """Longs at leverage 1 with entries of ten decimals (as a restored state may hold: ``qty * entry`` then has more
    than 8, and ``qty * (mark - entry)`` and ``qty * mark`` round to 8 places each their own way, by up to 5e-9) on a
    small wallet: amounts above the exact balance, below the float sum without an allowance for those roundings,
    are not covered."""
    tried = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        ex = SimulatedExchange(rules, brackets, clock=ReplayClock(T0), emit=lambda e: None, symbols=list(PRICES),
                               config=ExchangeConfig(initial_balance=D("300")))
        for sym, price in PRICES.items():
            book = ex._books[sym]
            pos = book.pos
            pos.leverage = 1
            pos.entry = D(repr(price * float(rng.uniform(0.9, 1.1)))).quantize(D("1E-10"))
            pos.qty = (D(str(float(rng.uniform(20, 50)) / price))).quantize(D("0.001"))
            pos.qty_f, pos.entry_f = float(pos.qty), float(pos.entry)
            book.last = price * float(rng.uniform(0.9, 1.1))
        ex._update_liquidation_prices()  # (what import_state ends with)
        cover = ex._cover
        assert cover is not None and cover.unit and cover.terms is not None and cover.trade == ex._next_trade_id
        exact = ex.available_balance()
        for k in (1, 2, 5, 10, 20, 50):
            tried += 1
            assert not ex.available_covers(exact + k * D("1E-10")), (seed, k)
        assert ex.available_covers(exact - D("0.0001"))
    assert tried


COVER_PLANTS = {  # (each 1e-12 allowance is a margin another covers: removing one alone is no bug)
    "no allowance for the quantised terms": ("est - (1e-8 * terms + (", "est - (("),
    "a long's margin left out": ("est += qty * (mark - entry) - notional / lev", "est += qty * (mark - entry)"),
    "a long's cost left out at leverage 1": ("                        est -= cost\n", ""),
    "a short's margin left out": ("est += qty * (mark - entry) - abs(qty) * mark / pos.leverage",
                                  "est += qty * (mark - entry)"),
    "resting limits left out": ("            if b.resting:\n", "            if False:\n"),
    "queued orders left out": ("            if b.market:\n", "            if False:\n"),
    "an isolated wallet left out": ("                est -= iso\n", "                est -= 0.0\n"),
    "no allowance for the covered longs' roundings": ("1e-6 * len(cover.terms) + 1e-8 + 1e-12 * (size + top)",
                                                      "1e-12 * (size + top)"),
    "the covered longs' notional taken as its float sum alone": ("top = cover.notional + cover.err",
                                                                 "top = cover.notional * 0.999999"),
}


@pytest.mark.parametrize("plant", list(COVER_PLANTS.values()), ids=list(COVER_PLANTS))
def test_planted_bugs_are_caught(rules, brackets, plant: tuple[str, str], monkeypatch) -> None:
    import inspect

    from kinetic_empire.exchange import margin

    old, new = plant
    source = inspect.getsource(margin)
    assert source.count(old) == 1, old
    space: dict[str, Any] = {"__name__": margin.__name__ + "_planted", "__package__": margin.__package__}
    exec(compile(source.replace(old, new), margin.__file__, "exec"), space)
    monkeypatch.setattr(SimulatedExchange, "covers_float", space["Margin"].covers_float)
    caught = 0
    tests = [lambda: test_the_quantised_terms_are_allowed_for(rules, brackets),
             lambda: test_the_rounding_of_covered_longs_is_allowed_for(rules, brackets)]
    tests += [lambda s=seed: test_covered_only_when_the_exact_balance_is_at_least_the_amount(rules, brackets, s)
              for seed in range(24)]
    tests += [lambda s=seed: test_covered_longs_at_leverage_one_are_covered_only_below_the_exact_balance(
        rules, brackets, s) for seed in range(16)]
    for test in tests:
        try:
            test()
        except AssertionError:
            caught += 1
    assert caught
