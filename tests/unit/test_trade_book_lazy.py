"""The trade book's lazy booking: fills kept in ``pending`` (as the portfolio appends them on the order path) and
booked when the trades are next needed give exactly the trades of booking each fill at once."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from kinetic_empire.portfolio.trades import TradeBook


def _script(seed: int) -> list[tuple[str, tuple[object, ...]]]:
    """A seeded mix of fills (opens, adds, partial and full closes, flips), funding, late fees, forced closes."""
    rng = np.random.default_rng(seed)
    steps: list[tuple[str, tuple[object, ...]]] = []
    for ts in range(1, 400):
        symbol = ("FILUSDT", "BTCUSDT")[int(rng.integers(0, 2))]
        kind = rng.random()
        if kind < 0.7:
            qty = D(str(round(float(rng.uniform(-3, 3)), 3)))
            price = D(str(round(float(rng.uniform(4, 6)), 4)))
            fee = (abs(qty) * price * D("0.0004")).quantize(D("1E-8"))
            steps.append(("fill", (symbol, qty, price, D(str(round(float(rng.normal(0, 1)), 8))), fee, ts, "s",
                                   "signal", "t" if rng.random() < 0.3 else "")))  # fmt: skip
        elif kind < 0.85:
            steps.append(("funding", (symbol, D(str(round(float(rng.normal(0, 0.01)), 8))))))
        elif kind < 0.9:
            steps.append(("fee", (symbol, D("0.5"), ts - 1 if rng.random() < 0.5 else ts)))
        elif kind < 0.93:
            steps.append(("force", (symbol, D("4.2"), D("-1.5"), D("0.2"), ts)))
        else:
            steps.append(("read", ()))
    return steps


def _play(steps: list[tuple[str, tuple[object, ...]]], lazy: bool) -> list[object]:
    book = TradeBook()
    seen: list[object] = []
    for kind, args in steps:
        if kind == "fill":
            if lazy:
                book.pending.append(args)  # type: ignore[arg-type]
            else:
                book.apply_fill(*args)  # type: ignore[arg-type]
        elif kind == "funding":
            book.add_funding(*args)  # type: ignore[arg-type]
        elif kind == "fee":
            book.add_fee(*args)  # type: ignore[arg-type]
        elif kind == "force":
            seen.append(book.force_close(*args))  # type: ignore[arg-type]
        else:
            seen.append(list(book.closed))
    marks = {"FILUSDT": (D("5.1"), D(1), D("5")), "BTCUSDT": (D("4.9"), D(-1), D("5"))}
    return [*seen, list(book.closed), book.marked(999, marks), sorted(book.open)]


@pytest.mark.parametrize("seed", range(6))
def test_lazy_booking_gives_the_trades_of_booking_at_once(seed: int) -> None:
    steps = _script(seed)
    eager = _play(steps, lazy=False)
    assert eager[-3], "no trade closed: the script tests nothing"
    assert _play(steps, lazy=True) == eager


def test_a_funding_booked_out_of_order_is_caught() -> None:
    """The comparison above can fail: funding booked before the fills still pending lands on other trades."""
    steps = _script(1)
    eager = _play(steps, lazy=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TradeBook, "add_funding", lambda self, symbol, amount: self._add_funding(symbol, amount))
        assert _play(steps, lazy=True) != eager
