"""Cross-margin liquidation prices re-solved only when a book's band says they could matter (issue 17 target 4,
exchange.cross_margin): every event, the wallet and the liquidation prices equal those of re-solving after
every kline, in runs where liquidations happen and where they do not: independent and common price moves,
gaps between klines, cross next to isolated positions, funding, and liquidation judged on a replayed mark
price with holes in it. And the band keeps the promise it is built on (inside it the slack shrinks by less
than half), tight enough that a band twice too wide fails."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.enums import MarginType, OrderType, Side
from kinetic_empire.core.events import KlineClosed, Liquidated
from kinetic_empire.exchange import ExchangeConfig, SimulatedExchange
from kinetic_empire.exchange.book import Book
from kinetic_empire.exchange.cross_margin import solve_liquidation_prices
from kinetic_empire.exchange.marked import on_marked_kline

T0 = 1_690_848_000_000
SYMBOLS = {"FILUSDT": 4.0, "NEARUSDT": 1.2, "ETHUSDT": 1800.0, "BTCUSDT": 29000.0}
SIZES = {"FILUSDT": D(400), "NEARUSDT": D(-1500), "ETHUSDT": D("1.0"), "BTCUSDT": D("-0.06")}
SHORTS = {s: -abs(q) for s, q in SIZES.items()}
LONGS = {s: abs(q) for s, q in SIZES.items()}
NAN = float("nan")


def run(rules: Any, brackets: Any, *, bounded: bool, leverage: int, sigma: float, seed: int,
        monkeypatch: pytest.MonkeyPatch, balance: int = 4000, common: float = 0.0, sizes: dict[str, D] = SIZES,
        gap: float = 0.0, isolated: tuple[str, ...] = (), marks: bool = False, funding: str = "0",
        klines: int = 3000) -> tuple[list[Any], D, dict[str, D], int]:
    """Four positions on a random walk; returns (events, wallet, liquidation prices, solves).

    ``common``: the share of each move driven by one shared factor (correlated moves are where stale
    liquidation prices are furthest off); ``gap``: sigma of a jump between one close and the next open;
    ``isolated``: symbols on isolated margin; ``marks``: each kline comes with a mark kline near it (every
    23rd missing), and liquidation is judged on the mark."""
    monkeypatch.setattr(SimulatedExchange, "bounded_liquidation_solves", bounded)
    events: list[Any] = []
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=events.append, symbols=list(SYMBOLS),
                           config=ExchangeConfig(initial_balance=D(balance), funding_rate=D(funding),
                                                 fill_market_immediately=True))
    for sym, price in SYMBOLS.items():
        ex.set_leverage(sym, leverage)
        if sym in isolated:
            ex.set_margin_type(sym, MarginType.ISOLATED)
        ex.on_bar(sym, T0, price, price, price, price)
        qty = sizes[sym]
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
    for i in range(1, klines):
        t = T0 + i * 60_000
        clock.advance_to(t)
        shared = rng.normal(0, sigma)
        for sym in SYMBOLS:
            o = prices[sym] * (float(np.exp(rng.normal(0, gap))) if gap else 1.0)
            c = o * float(np.exp(common * shared + (1 - common) * rng.normal(0, sigma)))
            hi, lo = max(o, c) * (1 + abs(rng.normal(0, sigma / 2))), min(o, c) * (1 - abs(rng.normal(0, sigma / 2)))
            if not marks:
                ex.on_bar(sym, t, o, hi, lo, c)
            else:
                k = KlineClosed(symbol=sym, timeframe="1m", open_time=t, open=o, high=hi, low=lo, close=c, volume=1.0,
                                ts_event=t + 59_999, ts_init=t + 59_999)
                if i % 23 == 0:
                    on_marked_kline(ex, k, NAN, NAN, NAN, NAN)
                else:  # the mark: near the traded prices, its own small wicks
                    mo, mc = o * (1 + rng.normal(0, sigma / 4)), c * (1 + rng.normal(0, sigma / 4))
                    mh = max(mo, mc) * (1 + abs(rng.normal(0, sigma / 4)))
                    ml = min(mo, mc) * (1 - abs(rng.normal(0, sigma / 4)))
                    on_marked_kline(ex, k, mo, mh, ml, mc)
            prices[sym] = c
    liq = {s: ex.liquidation_price(s) for s in SYMBOLS}
    return events, ex.wallet, liq, solves


def assert_same(rules: Any, brackets: Any, kw: dict[str, Any]) -> list[Any]:
    every = run(rules, brackets, bounded=False, **kw)
    bounded = run(rules, brackets, bounded=True, **kw)
    assert bounded[0] == every[0]  # every fill, position, balance, funding and liquidation event, in order
    assert bounded[1] == every[1] and bounded[2] == every[2]
    assert bounded[3] < every[3]
    return every[0]


def liquidations(events: list[Any]) -> int:
    return sum(isinstance(e, Liquidated) for e in events)


CASES = [(20, 0.004, 1, 700), (20, 0.004, 2, 700), (3, 0.002, 3, 4000), (50, 0.01, 4, 600), (10, 0.003, 5, 1500)]
# every position on one side and most of each move shared: the whole book loses together, late in the run
COMMON = [(20, 0.003, 6, 1500, SHORTS), (20, 0.003, 9, 1500, SHORTS), (20, 0.003, 7, 1500, LONGS),
          (20, 0.003, 6, 3000, SHORTS), (20, 0.003, 8, 1500, LONGS)]


@pytest.mark.parametrize(("leverage", "sigma", "seed", "balance"), CASES)
def test_bounded_solves_change_nothing(rules, brackets, monkeypatch, leverage: int, sigma: float, seed: int,
                                       balance: int) -> None:
    kw = {"leverage": leverage, "sigma": sigma, "seed": seed, "balance": balance, "monkeypatch": monkeypatch}
    assert_same(rules, brackets, kw)


@pytest.mark.parametrize(("leverage", "sigma", "seed", "balance", "sizes"), COMMON)
def test_bounded_solves_change_nothing_when_prices_move_together(rules, brackets, monkeypatch, leverage: int,
                                                                 sigma: float, seed: int, balance: int,
                                                                 sizes: dict[str, D]) -> None:
    kw = {"leverage": leverage, "sigma": sigma, "seed": seed, "balance": balance, "monkeypatch": monkeypatch,
          "common": 0.9, "sizes": sizes}
    assert_same(rules, brackets, kw)


def test_the_cases_include_liquidations_and_quiet_runs(rules, brackets, monkeypatch) -> None:
    liquidated = [liquidations(run(rules, brackets, bounded=True, leverage=lev, sigma=s, seed=seed, balance=bal,
                                   monkeypatch=monkeypatch)[0]) > 0 for lev, s, seed, bal in CASES]
    assert liquidated.count(True) >= 2 and liquidated.count(False) >= 2, liquidated
    together = [liquidations(run(rules, brackets, bounded=True, leverage=lev, sigma=s, seed=seed, balance=bal,
                                 monkeypatch=monkeypatch, common=0.9, sizes=sizes)[0]) > 0
                for lev, s, seed, bal, sizes in COMMON]
    assert together.count(True) >= 3 and together.count(False) >= 1, together


# (seed, leverage, balance, isolated symbols, gap sigma, marks, funding rate); each runs 1,200 klines a symbol
MIXED = [
    (11, 20, 500, ("FILUSDT",), 0.0, False, "0"),
    (12, 20, 1500, ("FILUSDT", "BTCUSDT"), 0.0, False, "0.0005"),
    (13, 20, 700, (), 0.003, False, "0"),
    (14, 20, 3000, ("ETHUSDT",), 0.003, False, "-0.0005"),
    (15, 20, 500, (), 0.0, True, "0"),
    (16, 20, 1000, ("NEARUSDT",), 0.0, True, "0.0005"),
    (18, 20, 500, (), 0.002, True, "0.0005"),
    (24, 20, 500, ("FILUSDT",), 0.002, True, "0.0005"),
    (27, 20, 500, (), 0.002, True, "0.0005"),
]


@pytest.mark.parametrize(("seed", "leverage", "balance", "isolated", "gap", "marks", "funding"), MIXED)
def test_bounded_solves_change_nothing_with_isolated_gaps_marks_and_funding(
        rules, brackets, monkeypatch, seed: int, leverage: int, balance: int, isolated: tuple[str, ...], gap: float,
        marks: bool, funding: str) -> None:
    kw = {"leverage": leverage, "sigma": 0.003, "seed": seed, "balance": balance, "monkeypatch": monkeypatch,
          "common": 0.8, "sizes": SHORTS if seed % 2 else LONGS, "gap": gap, "isolated": isolated, "marks": marks,
          "funding": funding, "klines": 1200}
    assert_same(rules, brackets, kw)


def test_the_mixed_cases_include_liquidations_and_quiet_runs(rules, brackets, monkeypatch) -> None:
    counts = [liquidations(run(rules, brackets, bounded=True, leverage=lev, sigma=0.003, seed=seed, balance=bal,
                               monkeypatch=monkeypatch, common=0.8, sizes=SHORTS if seed % 2 else LONGS, gap=gap,
                               isolated=iso, marks=marks, funding=funding, klines=1200)[0])
              for seed, lev, bal, iso, gap, marks, funding in MIXED]
    marked = [n for n, case in zip(counts, MIXED) if case[5]]
    assert sum(n > 0 for n in counts) >= 6 and 0 in counts, counts
    assert sum(n > 0 for n in marked) >= 3 and 0 in marked, counts


def test_a_quiet_run_solves_far_less(rules, brackets, monkeypatch) -> None:
    every = run(rules, brackets, bounded=False, leverage=3, sigma=0.002, seed=3, monkeypatch=monkeypatch)[3]
    bounded = run(rules, brackets, bounded=True, leverage=3, sigma=0.002, seed=3, monkeypatch=monkeypatch)[3]
    assert bounded * 20 < every, (bounded, every)


def slack_at(books: list[Any], wallet: float) -> float:
    """Margin balance minus maintenance margin at the books' last prices, computed here from scratch."""
    total = wallet
    for b in books:
        q, price = b.pos.qty_f, b.last
        rate = b.tiers[0][1]  # one tier: no brackets given
        total += q * (price - b.pos.entry_f) - abs(q) * price * rate
    return total


@pytest.mark.parametrize("seed", range(40))
def test_inside_the_bands_the_slack_keeps_half(rules, seed: int) -> None:
    """Every book at the adverse edge of its band at once (the worst case the band allows): the slack has
    lost less than half of itself, so no liquidation was possible and skipping the re-solves was safe. One
    maintenance tier makes the bound tight for shorts: a band twice too wide fails here."""
    rng = np.random.default_rng(seed)
    symbols = list(SYMBOLS)[: 2 + seed % 3]
    books = []
    for sym in symbols:
        b = Book(rules[sym], None, 20)
        b.pos.entry_f = SYMBOLS[sym] * float(rng.uniform(0.9, 1.1))
        side = -1.0 if seed % 2 else float(rng.choice([-1.0, 1.0]))  # odd seeds: all short, the tight case
        b.pos.qty_f = side * float(rng.uniform(1, 5)) * 1000 / SYMBOLS[sym]
        b.last = SYMBOLS[sym]
        books.append(b)
    wallet = float(rng.uniform(50, 2000)) - slack_at(books, 0.0)  # whatever the PnL, 50 to 2000 of slack
    before = slack_at(books, wallet)
    assert solve_liquidation_prices(books, wallet) == len(books)
    for b in books:
        assert b.watch_low < b.last < b.watch_high
        edge = b.watch_low if b.pos.qty_f > 0 else b.watch_high
        b.last = b.last + (edge - b.last) * (1 - 1e-9)  # just inside
    after = slack_at(books, wallet)
    assert after > before / 2 * (1 - 1e-6), (before, after)


def test_isolated_positions_get_no_band_and_do_not_widen_the_cross_ones(rules) -> None:
    """An isolated position's level is its own liquidation price; its wallet is not cross slack."""
    books = []
    for sym in ("FILUSDT", "NEARUSDT", "ETHUSDT"):
        b = Book(rules[sym], None, 20)
        b.pos.entry_f = b.last = SYMBOLS[sym]
        b.pos.qty_f = 1000 / SYMBOLS[sym]
        books.append(b)
    iso = books[2]
    iso.pos.margin_type = MarginType.ISOLATED
    iso.pos.iso_wallet = D(100)
    assert solve_liquidation_prices(books, 150.0) == 2
    assert (iso.watch_low, iso.watch_high) == (iso.pos.liq_f, float("inf")) and iso.pos.liq_f > 0
    cross_alone = [Book(rules[b.symbol], None, 20) for b in books[:2]]
    for mine, b in zip(cross_alone, books):
        mine.pos.entry_f = mine.last = b.last
        mine.pos.qty_f = b.pos.qty_f
    solve_liquidation_prices(cross_alone, 50.0)  # the same cross pool without the isolated wallet
    assert [(b.watch_low, b.watch_high) for b in books[:2]] == [(b.watch_low, b.watch_high) for b in cross_alone]


def two_longs(rules: Any, brackets: Any, monkeypatch: pytest.MonkeyPatch, *, bounded: bool,
              marks: bool) -> tuple[SimulatedExchange, list[Any], Any]:
    """FIL and NEAR long on one cross wallet; returns the exchange, its events and a kline-feeding function."""
    monkeypatch.setattr(SimulatedExchange, "bounded_liquidation_solves", bounded)
    events: list[Any] = []
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=events.append, symbols=["FILUSDT", "NEARUSDT"],
                           config=ExchangeConfig(initial_balance=D(500), funding_rate=D(0),
                                                 fill_market_immediately=True))
    for sym, qty in (("FILUSDT", D(400)), ("NEARUSDT", D(1500))):
        ex.set_leverage(sym, 20)
        price = SYMBOLS[sym]
        ex.on_bar(sym, T0, price, price, price, price)
        ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.MARKET, quantity=qty)

    def feed(sym: str, i: int, traded: tuple[float, ...], mark: tuple[float, ...]) -> None:
        t = T0 + i * 60_000
        clock.advance_to(t)
        if not marks:
            ex.on_bar(sym, t, *mark)  # without marks the traded kline is the one that counts
            return
        k = KlineClosed(symbol=sym, timeframe="1m", open_time=t, open=traded[0], high=traded[1], low=traded[2],
                        close=traded[3], volume=1.0, ts_event=t + 59_999, ts_init=t + 59_999)
        on_marked_kline(ex, k, *mark)

    for i, sym in ((1, "FILUSDT"), (1, "NEARUSDT")):
        p = SYMBOLS[sym]
        feed(sym, i, (p, p, p, p), (p, p, p, p))
    return ex, events, feed


@pytest.mark.parametrize("marks", [False, True])
def test_a_kline_past_its_band_is_judged_on_freshly_solved_prices(rules, brackets, monkeypatch, marks: bool) -> None:
    """NEAR falls 3% inside its band (nothing is re-solved), then FIL's range ends between its liquidation price
    as solved before NEAR fell and as it is now: liquidated, at the fresh price, as when re-solving every kline."""
    runs = []
    for bounded in (False, True):
        ex, events, feed = two_longs(rules, brackets, monkeypatch, bounded=bounded, marks=marks)
        stale = float(ex.liquidation_price("FILUSDT"))
        feed("NEARUSDT", 2, (1.2, 1.2, 1.2, 1.2), (1.2, 1.2, 1.164, 1.164))
        fresh = float(ex.liquidation_price("FILUSDT")) if not bounded else runs[0][1]
        assert fresh > stale + 0.1
        low = (stale + fresh) / 2
        feed("FILUSDT", 2, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, low, 4.0))  # the mark (or traded) range reaches `low`
        runs.append((events, fresh))
    (every, fresh), (bounded_events, _) = runs
    assert bounded_events == every
    (liquidated,) = [e for e in every if isinstance(e, Liquidated)]
    assert liquidated.symbol == "FILUSDT" and abs(float(liquidated.price) - fresh) <= 0.001


@pytest.mark.parametrize("marks", [False, True])
def test_a_price_that_ends_outside_its_band_is_re_solved_on_at_once(rules, brackets, monkeypatch, marks: bool) -> None:
    """NEAR's kline reaches its band and ends far outside it (re-solved before the kline, so its new band is
    drawn around the old price): the levels must follow at once, or FIL's next kline, inside the band FIL got
    then, would skip the liquidation that NEAR's crash brought within its range."""
    runs = []
    for bounded in (False, True):
        ex, events, feed = two_longs(rules, brackets, monkeypatch, bounded=bounded, marks=marks)
        feed("NEARUSDT", 2, (1.2, 1.2, 1.2, 1.2), (1.2, 1.2, 0.92, 0.92))  # -23%: far past NEAR's band
        fresh = float(ex.liquidation_price("FILUSDT")) if not bounded else runs[0][1]
        low = fresh - 0.02
        if bounded:  # the case this test is about: without a re-solve FIL's old band would not be reached
            assert not any(isinstance(e, Liquidated) for e in events)
        feed("FILUSDT", 2, (4.0, 4.0, 4.0, 4.0), (4.0, 4.0, low, 4.0))
        runs.append((events, fresh))
    (every, fresh), (bounded_events, _) = runs
    assert bounded_events == every
    (liquidated,) = [e for e in every if isinstance(e, Liquidated)]
    assert liquidated.symbol == "FILUSDT"


def test_an_isolated_liquidation_fee_moves_the_cross_liquidation_price_at_once(rules, brackets) -> None:
    """The clearance fee of an isolated liquidation leaves the shared wallet after the close was solved: the one
    cross position's liquidation price (nothing re-solves it on a query) must include it."""
    from kinetic_empire.core.liquidation import float_tiers, liquidation_price

    events: list[Any] = []
    clock = ReplayClock(T0)
    ex = SimulatedExchange(rules, brackets, clock=clock, emit=events.append, symbols=["FILUSDT", "NEARUSDT"],
                           config=ExchangeConfig(initial_balance=D(500), funding_rate=D(0),
                                                 fill_market_immediately=True))
    ex.set_leverage("NEARUSDT", 20)
    ex.set_margin_type("NEARUSDT", MarginType.ISOLATED)
    for sym, qty in (("FILUSDT", D(400)), ("NEARUSDT", D(1500))):
        price = SYMBOLS[sym]
        ex.on_bar(sym, T0, price, price, price, price)
        ex.submit(symbol=sym, side=Side.BUY, order_type=OrderType.MARKET, quantity=qty)
    ex.on_bar("NEARUSDT", T0 + 60_000, 1.2, 1.2, 1.0, 1.0)  # far through NEAR's isolated liquidation price
    (liquidated,) = [e for e in events if isinstance(e, Liquidated)]
    assert liquidated.fee > 0
    qty, entry, _ = ex.position("FILUSDT")
    expected = liquidation_price(float(qty), float(entry), float(ex.wallet), float_tiers(brackets["FILUSDT"]))
    assert float(ex.liquidation_price("FILUSDT")) == pytest.approx(expected, rel=1e-12)
