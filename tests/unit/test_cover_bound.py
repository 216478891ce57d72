"""``portfolio.prices.CoverBound`` (issue 17 target 4): the risk gate's float bound on the portfolio's available
balance, a record per open position kept from call to call. It must never say "covered" for an amount at or above
the exact Decimal ``available_balance`` (or for a balance at or below zero), it must say so for amounts clearly
below (else the gate computes the Decimal sum anyway), and its kept records must give the answers of records made
afresh from the portfolio's tables after any change: a position opened, resized, flipped or closed, a leverage
changed, a symbol's first close."""

from __future__ import annotations

import decimal
import math
import random
from decimal import Decimal

import pytest

from kinetic_empire.core.bus import EventBus
from kinetic_empire.core.events import new_kline
from kinetic_empire.portfolio.portfolio import Portfolio
from kinetic_empire.portfolio.prices import CoverBound

SYMBOLS = [f"S{i}USDT" for i in range(12)]
LEVERAGES = [1, 1, 2, 3, 5, 10, 20, 50, 75, 100, 125]


def _publish(bus: EventBus, symbol: str, close: float, t: int) -> None:
    k = new_kline(symbol, "1m", t, close, close, close, close, 1.0, t + 59_999, t + 59_999)
    bus.publish(k, (symbol, "1m"))


def _fresh(p: Portfolio) -> CoverBound:
    """A bound with no history: every open position's record made now."""
    return CoverBound(p)


def _size(p: Portfolio) -> Decimal:
    """The summed sizes the bound's slack is a share of: |wallet| + sum |q| (2 mark + |entry|)."""
    total = abs(p._wallet)
    for v in p._positions.values():
        close = p.last_price(v.symbol)
        mark = Decimal(repr(close)) if close else v.entry_price
        total += abs(v.quantity) * (2 * abs(mark) + abs(v.entry_price))
    return total


def _amounts(exact: Decimal, size: Decimal) -> list[float]:
    """Amounts straddling the exact balance: its float and a few floats either side, shares of it and of the
    sizes (the bound's slack is about 1e-12 of them)."""
    x = float(exact)
    out = [x, 0.0, -1.0, -0.0, math.inf, -math.inf, math.nan]
    up = down = x
    for _ in range(8):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    for d in (1e-9, 1e-11, 1e-12, 1e-13, 1e-14, 3e-15, 1e-15, 3e-16, 1e-16, 3e-17):
        out += [x * (1 + d), x * (1 - d), float(exact - size * Decimal(d)), float(exact + size * Decimal(d))]
    return out


def _judge(p: Portfolio, exact: Decimal, amounts: list[float], fresh: CoverBound) -> int:
    """Every "covered" is true, and the kept records answer as fresh ones; the count of "covered"."""
    said = 0
    for amount in amounts:
        got = p.available_covers(amount)
        assert got is fresh.covers(amount), (amount, got)
        if got:
            assert exact > 0 and Decimal(amount) < exact, (amount, exact)
            said += 1
    return said


def _sane(p: Portfolio) -> bool:
    """Every open position has a store and a sensible size: the bound should then judge."""
    return all(s in p._closes and 1e-6 < abs(v.quantity) < 1e9 for s, v in p._positions.items())


@pytest.mark.parametrize("seed", range(8))
def test_the_kept_records_answer_as_fresh_ones_and_only_below_the_exact_balance(seed: int) -> None:
    rng = random.Random(seed)
    bus = EventBus()
    p = Portfolio(bus, Decimal("5000"), leverage_default=rng.choice([1, 20]))  # stores made at a symbol's first kline
    covered = clearly = many = 0
    for step in range(400):
        s = rng.choice(SYMBOLS)
        roll = rng.random()
        if roll < 0.35:  # open, resize, flip or close
            qty = Decimal(rng.randint(-10 ** rng.randint(1, 7), 10 ** rng.randint(1, 7))).scaleb(-rng.randint(0, 5))
            entry = Decimal(repr(round(rng.uniform(0.001, 10 ** rng.randint(0, 4)), rng.randint(2, 8))))
            if rng.random() < 0.2:
                qty = Decimal(0)
            lev = p.leverage(s) if rng.random() < 0.7 else rng.choice(LEVERAGES)
            p.position_changed(s, qty, entry, lev, step)
        elif roll < 0.45:
            p.set_leverage(s, rng.choice(LEVERAGES))
        elif roll < 0.5:
            p._wallet = Decimal(repr(round(rng.uniform(-1e3, 1e7), rng.randint(0, 8))))
        else:  # a close (0.0 now and then: no price yet, marked at the entry)
            close = 0.0 if rng.random() < 0.05 else round(rng.uniform(0.001, 10 ** rng.randint(0, 4)), 6)
            bus.publish(new_kline(s, "1m", step, close, close, close, close, 1.0, step + 1, step + 1))
        exact, size = p.available_balance(), _size(p)
        covered += _judge(p, exact, _amounts(exact, size), _fresh(p))
        many += len(p._positions) >= 5
        if exact > size * Decimal("2e-10") and _sane(p):  # clearly above: the bound says so
            assert p.available_covers(float(exact - size * Decimal("1e-10"))), step
            clearly += 1
    assert covered > 300 and clearly > 40 and many > 100, (covered, clearly, many)


def _following_every_symbol() -> tuple[Portfolio, EventBus]:
    """An empty portfolio with no wallet, following every symbol's closes."""
    bus = EventBus()
    p = Portfolio(bus, Decimal(0), follow_prices=False)
    p.subscribe_prices([(s, "1m") for s in SYMBOLS])
    return p, bus


@pytest.mark.parametrize("seed", range(6))
def test_balances_near_zero_behind_large_positions(seed: int) -> None:
    """The wallet set so that the exact balance is a hair above or below zero behind positions a million times
    larger: the float sums' roundings are then all there is between them."""
    rng = random.Random(100 + seed)
    p, bus = _following_every_symbol()
    said = 0
    for step in range(120):
        for s in rng.sample(SYMBOLS, rng.randint(1, 4)):
            if rng.random() < 0.6:
                qty = Decimal(repr(rng.uniform(-1, 1) * 10 ** rng.randint(-3, 6))).quantize(Decimal("1E-6"))
                entry = Decimal(repr(round(rng.uniform(0.01, 10 ** rng.randint(0, 4)), 5)))
                p.position_changed(s, qty, entry, rng.choice(LEVERAGES), step)
            else:
                _publish(bus, s, round(rng.uniform(0.01, 10 ** rng.randint(0, 4)), 6), step)
        p._wallet = Decimal(0)
        behind = p.available_balance()
        size = _size(p)
        for k in (6, 9, 11, 12, 13, 14, 15, 16, 18, 22, 27):
            for sign in (1, -1):
                p._wallet = -behind + sign * size.scaleb(-k)
                exact = p.available_balance()
                said += _judge(p, exact, [*_amounts(exact, size), float(exact) / 2, float(exact) * 2], _fresh(p))
    assert said > 200, said


@pytest.mark.parametrize("seed", range(4))
def test_a_large_wallet_behind_many_small_positions(seed: int) -> None:
    """The wallet a million times the positions: the sums' roundings are then shares of the wallet, amounts a few
    of its floats either side of the exact balance."""
    rng = random.Random(200 + seed)
    p, bus = _following_every_symbol()
    said = 0
    for step in range(150):
        for s in SYMBOLS:
            if rng.random() < 0.3:
                qty = Decimal(repr(rng.uniform(-1, 1) * 10 ** rng.randint(-2, 2))).quantize(Decimal("1E-8"))
                entry = Decimal(repr(round(rng.uniform(0.1, 100), 6)))
                p.position_changed(s, qty, entry, rng.choice(LEVERAGES), step)
            if rng.random() < 0.5:
                _publish(bus, s, round(rng.uniform(0.1, 100), 6), step)
        p._wallet = Decimal(repr(rng.uniform(1e5, 1e9))) + Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(9, 20))
        exact = p.available_balance()
        said += _judge(p, exact, _amounts(exact, _size(p)), _fresh(p))
    assert said > 1000, said


@pytest.mark.parametrize("marks_large", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_positions_that_cancel_to_a_balance_near_zero(seed: int, marks_large: bool) -> None:
    """Pairs of positions whose terms cancel (a long at lev 2, a short a quarter its size at lev 1 at four times its
    entry, one close): the balance is the wallet's hair above or below zero, each position's term large. Marks a
    million times the entries, or the other way: the roundings of the products with the marks, or of the entries',
    are then all there is between the float sum and the exact one."""
    rng = random.Random(300 + seed)
    p, bus = _following_every_symbol()
    said = 0
    for step in range(150):
        for s in SYMBOLS:
            p.position_changed(s, Decimal(0), Decimal(0), 1, step)
        for k in range(rng.randint(1, 6)):
            long, short = SYMBOLS[2 * k], SYMBOLS[2 * k + 1]
            qty = Decimal(rng.randint(1, 10**7)).scaleb(-rng.randint(0, 4)) * 4
            entry = Decimal(rng.randint(1, 10**6)).scaleb(-rng.randint(0, 6))
            close = float(entry) * (1e6 if marks_large else 1e-6) * rng.uniform(0.5, 2)
            p.position_changed(long, qty, entry, 2, step)
            p.position_changed(short, -qty / 4, entry * 4, 1, step)
            _publish(bus, long, close, step)
            _publish(bus, short, close, step)
        size = _size(p)
        for k in (11, 12, 13, 14, 15, 16, 17, 20):
            for sign in (1, -1):
                p._wallet = sign * size.scaleb(-k)
                exact = p.available_balance()
                said += _judge(p, exact, _amounts(exact, size), _fresh(p))
    assert said > 200, said


def _bound(positions: list[tuple[str, str, str, int, float]], wallet: str = "1000") -> tuple[Portfolio, EventBus]:
    bus = EventBus()
    p = Portfolio(bus, Decimal(wallet), follow_prices=False)
    p.subscribe_prices([(s, "1m") for s in dict.fromkeys(SYMBOLS + [row[0] for row in positions])])
    for i, (s, qty, entry, lev, close) in enumerate(positions):
        p.position_changed(s, Decimal(qty), Decimal(entry), lev, i)
        if close:
            _publish(bus, s, close, i)
    return p, bus


def test_no_positions_judges_the_wallet_alone() -> None:
    p, _ = _bound([], "1000")
    assert p.available_covers(999.999) and p.available_covers(0.0) and p.available_covers(-5.0)
    assert not p.available_covers(1000.0) and not p.available_covers(math.nan)
    for wallet in ("0", "-0", "-3", "-1E-320", "NaN", "1E-400"):  # (1E-400: its float is 0.0)
        p._wallet = Decimal(wallet)
        assert not p.available_covers(-1.0), wallet
    p._wallet = Decimal("1E-320")  # a subnormal float: above zero, and above -1
    assert p.available_covers(-1.0) and not p.available_covers(1e-320)


def test_a_close_of_zero_marks_at_the_entry_and_odd_closes_say_unsure() -> None:
    rows = [("S0USDT", "2", "100", 1, 0.0), ("S1USDT", "-3", "50", 10, 0.0)]  # no close yet: marked at the entry
    p, bus = _bound(rows, "1000")
    exact = p.available_balance()  # 1000 - 200 - 15
    assert exact == Decimal(785)
    assert p.available_covers(784.99) and not p.available_covers(785.0)
    for odd in (-1.0, 1e-101, 5e-324, -0.0, math.nan):  # (-0.0: as 0.0, marked at the entry)
        _publish(bus, "S0USDT", odd, 9)
        assert p.available_covers(784.99) is (odd == 0.0), odd
    _publish(bus, "S0USDT", 110.0, 10)
    assert p.available_balance() == Decimal(785) and p.available_covers(784.99)  # a long at lev 1: +20 -20


def test_sizes_past_the_bounds_limits_say_unsure() -> None:
    """A quantity, entry or close out of the judged range (1e-100 to 1e100, a close from 1e-100; a Decimal beyond
    the float range), a sum that overflows, a leverage the bound does not take, more stores (so records) than its slack
    is made for: False, and the Decimal sum decides."""
    def covers(qty: str, entry: str, lev: int = 1, close: float = 100.0, amount: float = 500.0) -> bool:
        p, _ = _bound([("S0USDT", qty, entry, lev, close)])
        assert p.available_balance() > Decimal(amount)
        return bool(p.available_covers(amount))

    assert covers("1E-99", "1E-99") and covers("1E+99", "1E-99", 1, 1e-99) and covers("-1E+99", "1E-99", 5, 1e-99)
    assert covers("1", "0")  # an entry of zero, exact: judged
    assert not covers("1E-101", "100") and not covers("1E-400", "100") and not covers("-1E-101", "100")
    assert not covers("1", "1E-101") and not covers("1", "-5") and not covers("1E+101", "1E-99", 1, 1e-99)
    assert not covers("1E-99", "1E+101", 1, 1e101) and not covers("1E-99", "1E-99", 1, 5e-101)
    assert covers("1E+99", "1E-99", 2, 1e99, 1e150) and not covers("1E+99", "1E-99", 2, 1e300)  # (a sum overflowed)
    assert covers("1", "100", 125) and covers("-1", "100", 1)
    for lev in (0, -2, 126, 1_000_001, 1.5):
        assert not _bound([("S0USDT", "1", "100", lev, 100.0)])[0].available_covers(500.0), lev  # type: ignore[list-item]
    crowded = Portfolio(EventBus(), Decimal("1E+6"), follow_prices=False)
    crowded.subscribe_prices([(f"M{i}USDT", "1m") for i in range(1000)])
    for i in range(1000):
        crowded.position_changed(f"M{i}USDT", Decimal("0.001"), Decimal(10), 1, 0)
    assert crowded.available_covers(1000.0)  # 1000 stores, 1000 records
    crowded._close_of("M1000USDT")  # a 1001st store: as many records could come, more than the slack is made for
    crowded.position_changed("M0USDT", Decimal(0), Decimal(0), 1, 0)
    assert not crowded.available_covers(1000.0)


def test_a_store_made_after_the_position_is_read_from_then_on() -> None:
    bus = EventBus()
    p = Portfolio(bus, Decimal(1000))  # follows every kline: a symbol's store is made at its first kline
    p.position_changed("S0USDT", Decimal(2), Decimal(100), 1, 0)
    assert not p.available_covers(1.0)  # no store: unsure
    bus.publish(new_kline("S0USDT", "1m", 0, 150.0, 150.0, 150.0, 150.0, 1.0, 1, 1))
    assert p.available_balance() == Decimal(800) and p.available_covers(799.9) and not p.available_covers(800.0)
    p.position_changed("S0USDT", Decimal(-2), Decimal(150), 1, 2)  # flipped to a short at 150: margin 300
    assert p.available_balance() == Decimal(700) and p.available_covers(699.9) and not p.available_covers(700.0)
    p.set_leverage("S0USDT", 3)  # margin 100
    assert p.available_covers(899.9) and not p.available_covers(900.0)
    p.position_changed("S0USDT", Decimal(0), Decimal(0), 3, 3)
    assert p.available_covers(999.9) and not p.available_covers(1000.0)


def test_a_coarse_decimal_context_says_unsure() -> None:
    p, _ = _bound([("S0USDT", "2", "100", 1, 100.0)])
    assert p.available_covers(700.0)
    with decimal.localcontext() as ctx:
        ctx.prec = 20
        assert not p.available_covers(700.0)
