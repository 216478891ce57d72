"""The portfolio's per-symbol latest-close store (portfolio.prices) and its one-pass available balance give
what the plain forms give: the store's inline step the same as its call, and the available balance the same
Decimal (digits and exponent) as marking each position with ``_mark`` and summing as ``equity`` does."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest

from kinetic_empire.backtest.feed import ReplayFeed, Stream
from kinetic_empire.core.account import PositionView
from kinetic_empire.core.bus import EventBus, inline_step
from kinetic_empire.core.clock import ReplayClock
from kinetic_empire.core.events import KlineClosed, new_kline
from kinetic_empire.data import KlineFrame
from kinetic_empire.portfolio.portfolio import Portfolio
from kinetic_empire.portfolio.prices import LatestClose

SYMBOLS = ["FILUSDT", "NEARUSDT", "ADAUSDT"]


def _kline(symbol: str, close: float, t: int = 0) -> KlineClosed:
    return new_kline(symbol, "1m", t, close, close, close, close, 1.0, t + 59_999, t + 59_999)


def test_the_store_keeps_the_latest_close_called_or_inlined() -> None:
    store = LatestClose()
    assert store.close == 0.0
    store.on_kline(_kline("FILUSDT", 5.25))
    assert store.close == 5.25
    step = inline_step(store.on_kline, ("FILUSDT", "1m"))
    assert step is not None and not step.reads_kline
    assert inline_step(LatestClose().on_kline, ("FILUSDT", "1m")) is not None
    # through the replay's fused loop: the last close of the stream
    closes = np.array([5.0, 5.5, 4.75])
    frame = KlineFrame("FILUSDT", "1m", np.arange(3, dtype=np.int64) * 60_000, closes + 0.5, closes + 1, closes - 1,
                       closes, np.ones(3))
    bus = EventBus()
    inlined = LatestClose()
    bus.subscribe(KlineClosed, inlined.on_kline, topic=("FILUSDT", "1m"))
    assert ReplayFeed(bus, ReplayClock(), [Stream(frame)]).run() == 3
    assert inlined.close == 4.75


def test_a_portfolio_following_several_topics_reads_its_prices_from_the_stores() -> None:
    bus = EventBus()
    p = Portfolio(bus, Decimal(1000), follow_prices=False)
    p.subscribe_prices([(s, "1m") for s in SYMBOLS])
    assert all(p.last_price(s) == 0.0 for s in SYMBOLS)
    for i, s in enumerate(SYMBOLS):
        bus.publish(_kline(s, 2.0 + i), (s, "1m"))
    assert [p.last_price(s) for s in SYMBOLS] == [2.0, 3.0, 4.0]
    one = Portfolio(EventBus(), Decimal(1000), follow_prices=False)
    one.subscribe_prices([("FILUSDT", "1m")])  # one topic: the store too (the lazy replay settles it)
    assert list(one._closes) == ["FILUSDT"] and one.last_price("FILUSDT") == 0.0


def _plain_available(p: Portfolio) -> Decimal:
    """Portfolio.available_balance as it was: ``_mark`` per position, divided by the leverage."""
    upnl = margin = Decimal(0)
    for q in p._positions.values():
        mark = p._mark(q)
        upnl += q.quantity * (mark - q.entry_price)
        margin += abs(q.quantity) * mark / p.leverage(q.symbol)
    return (p._wallet + upnl) - margin


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("topics", [1, 3])
def test_the_one_pass_available_balance_is_the_plain_sum_to_the_digit(seed: int, topics: int) -> None:
    rng = random.Random(seed)
    bus = EventBus()
    p = Portfolio(bus, Decimal(rng.choice(["1000", "1E+6", "123456.78901234"])), follow_prices=False)
    symbols = SYMBOLS[:topics]
    p.subscribe_prices([(s, "1m") for s in symbols])
    checked = 0
    for step in range(300):
        s = rng.choice(symbols)
        roll = rng.random()
        if roll < 0.3:  # open, change or close a position
            qty = Decimal(rng.randint(-10**rng.randint(1, 9), 10**rng.randint(1, 9))).scaleb(-rng.randint(0, 6))
            entry = Decimal(repr(rng.uniform(0.0001, 10**rng.randint(0, 5))))
            if qty and rng.random() < 0.8:
                p._positions[s] = PositionView(s, qty, entry, p.leverage(s))
            else:
                p._positions.pop(s, None)
        elif roll < 0.4:
            p.set_leverage(s, rng.choice([1, 1, 2, 3, 7, 20, 125]))
        elif roll < 0.5:
            p._wallet = Decimal(repr(rng.uniform(-1e3, 1e7)))
        else:
            close = rng.choice([0.0, round(rng.uniform(0.0001, 10**rng.randint(0, 5)), rng.randint(0, 8))])
            bus.publish(_kline(s, close, step * 60_000), (s, "1m"))
        got, want = p.available_balance(), _plain_available(p)
        assert got.as_tuple() == want.as_tuple(), (step, got, want)
        checked += len(p._positions) >= min(2, topics)  # several marked at once where there can be
    assert checked > 50




@pytest.mark.parametrize("seed", range(3))
def test_closes_met_again_on_any_symbol_mark_to_their_own_digits(seed: int) -> None:
    """The Decimal of a close is made once per value (``prices._DECIMALS``): closes from a small pool, shared by
    the symbols, some a float's last bit apart or equal in value with other digits, mark as the plain sum does."""
    rng = random.Random(seed)
    bus = EventBus()
    p = Portfolio(bus, Decimal("100000"), follow_prices=False)
    p.subscribe_prices([(s, "1m") for s in SYMBOLS])
    base = [1.2345678, 0.1 + 0.2, 3.0, 12345.5, 7e-05]
    pool = base + [math.nextafter(x, math.inf) for x in base] + [math.nextafter(x, 0.0) for x in base]
    for i, s in enumerate(SYMBOLS):
        p._positions[s] = PositionView(s, Decimal(rng.choice(["3", "-0.5", "120.25"])), Decimal(repr(pool[i])),
                                       p.leverage(s))
    for step in range(400):
        s = rng.choice(SYMBOLS)
        bus.publish(_kline(s, rng.choice(pool), step * 60_000), (s, "1m"))
        upnl = margin = Decimal(0)  # the plain sum, each mark made here (``_mark`` shares the portfolio's cache)
        for q in p._positions.values():
            last = p.last_price(q.symbol)
            mark = Decimal(repr(last)) if last else q.entry_price
            upnl += q.quantity * (mark - q.entry_price)
            margin += abs(q.quantity) * mark / p.leverage(q.symbol)
        got, want = p.available_balance(), (p._wallet + upnl) - margin
        assert got.as_tuple() == want.as_tuple(), (step, got, want)


@pytest.mark.parametrize("wallet", ["1E+6", "1000", "123456.78901234", "-0", "0E-8"])
def test_the_available_balance_of_no_positions_is_the_plain_sum_to_the_digit(wallet: str) -> None:
    """Flat (the risk gate asks on every entry from flat): the sums of no positions, to the digit and exponent."""
    p = Portfolio(EventBus(), Decimal(wallet))
    assert p.available_balance().as_tuple() == _plain_available(p).as_tuple()


@pytest.mark.parametrize("seed", range(6))
def test_the_float_bound_covers_only_amounts_below_the_exact_balance(seed: int) -> None:
    """``Portfolio.available_covers`` (the risk gate's short way, ``prices.CoverBound``): True only for amounts below
    the exact available balance (and only when it is above zero), and True for amounts clearly below it
    (tests/unit/test_cover_bound.py tries more)."""
    from kinetic_empire.portfolio.prices import CoverBound

    rng = random.Random(seed)
    bus = EventBus()
    p = Portfolio(bus, Decimal("5000"), follow_prices=False)
    p.subscribe_prices([(s, "1m") for s in SYMBOLS])
    said = 0
    for step in range(300):
        s = rng.choice(SYMBOLS)
        roll = rng.random()
        if roll < 0.3:
            qty = Decimal(rng.randint(-10**rng.randint(1, 5), 10**rng.randint(1, 5))).scaleb(-rng.randint(0, 4))
            entry = Decimal(repr(rng.uniform(0.01, 10**rng.randint(0, 3))))
            p.position_changed(s, qty if rng.random() < 0.8 else Decimal(0), entry, p.leverage(s), step)
        elif roll < 0.4:
            p.set_leverage(s, rng.choice([1, 2, 20]))
        elif roll < 0.5:
            p._wallet = Decimal(repr(round(rng.uniform(-1e3, 1e6), rng.randint(0, 8))))
        else:
            close = rng.choice([0.0, round(rng.uniform(0.01, 10**rng.randint(0, 3)), rng.randint(0, 6))])
            bus.publish(_kline(s, close, step * 60_000), (s, "1m"))
        exact = p.available_balance()
        for amount in (float(exact) * (1 + d) + a for d in (-1e-9, -1e-13, 0.0, 1e-15, 1e-12)
                       for a in (-1e-9, 0.0, 1e-9)):
            if p.available_covers(amount):
                assert exact > 0 and Decimal(amount) < exact, (step, amount, exact)
                said += 1
        if exact > 1:
            assert p.available_covers(float(exact) * 0.999)
        storeless = CoverBound(SimpleNamespace(_wallet=p._wallet, _positions=p._positions, _closes={},
                                               _leverage=p._leverage, _leverage_default=1))  # (unsure of any position)
        assert storeless.covers(0.0) is (not p._positions and p._wallet > 0)
    assert said > 100
