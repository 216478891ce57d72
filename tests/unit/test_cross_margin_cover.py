"""The solve after a fill while every open position is a covered cross long (exchange.cross_margin.Cover, issue 17
target 4): a sum updated instead of a pass over every book. After every solve of multi-symbol backtests (longs
only at leverage 1 with a wallet that covers them, barely covers them or not; longs and shorts; leverage 20 with a
small wallet) the exchange's levels, liquidation prices and count of open positions are checked against a full
solve made there, and whole runs give the trades of runs that always solve in full."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinetic_empire.backtest import Backtest, BacktestConfig
from kinetic_empire.data import KlineFrame
from kinetic_empire.exchange.book import Book
from kinetic_empire.exchange.cross_margin import Cover, solve_liquidation_prices
from kinetic_empire.exchange.margin import Margin
from kinetic_empire.strategy.registry import build_registry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_multisymbol import SYMBOLS, _frames

CASES = {  # name: (balance, leverage, long only, symbols, prices scaled by this in gaps)
    "covered": (1_000_000, 1, True, 6, 1.0),
    "barely": (2_600, 1, True, 6, 1.0),  # covered while at most five of the 500 USDT longs are open
    "shorts": (1_000_000, 1, False, 4, 1.0),
    "leveraged": (300, 20, True, 5, 0.88),  # gaps that liquidate every long open across them
    "mixed": (1_600, 20, True, 5, 0.2),  # covered up to three longs, deep gaps
}


def config(balance: float, leverage: int, long_only: bool, symbols: list[str]) -> BacktestConfig:
    return BacktestConfig.from_mapping({
        "backtest": {"data": "unused", "initial_balance": balance, "fees": {"maker": 0.0004, "taker": 0.0004},
                     "funding_rate": 0},
        "strategies": [{"name": "ema_cross", "symbols": symbols, "timeframe": "1m",
                        "params": {"fast": 5, "slow": 12, "long_only": long_only}}],
        "risk": {"default_leverage": leverage, "sizing": {"method": "fixed_notional", "notional": 500},
                 "guards": {"max_open_positions": len(symbols)}},
    })  # fmt: skip


def gapped(f: KlineFrame, gap: float) -> KlineFrame:
    """Prices down to ``gap`` of themselves for 250 klines every 500, then back."""
    scale = np.ones(len(f))
    for start in range(400, len(f), 500):
        scale[start : start + 250] = gap
    return KlineFrame(f.symbol, f.timeframe, f.open_time, f.open * scale, f.high * scale, f.low * scale,
                      f.close * scale, f.volume)


def levels(books: list[Book]) -> list[tuple[float, float, float, float]]:
    return [(b.pos.liq_f, b.watch_low, b.watch_high, b.liq_margin) for b in books]


def run(case: str, monkeypatch: pytest.MonkeyPatch, *, cover: bool, check: bool) -> tuple[list[Any], dict[str, int]]:
    balance, leverage, long_only, count, gap = CASES[case]
    symbols = SYMBOLS[:count]
    seen = {"fast": 0, "full": 0, "liquidations": 0}
    real_update = Margin._update_liquidation_prices
    real_after = Cover.after_fill

    exchange: list[Margin] = []  # (the run's: the first solve is a full one, made through update below)

    def after_fill(self: Cover, book: Book, wallet: Decimal, trade: int) -> int | None:
        held = real_after(self, book, wallet, trade) if cover else None
        seen["fast"] += held is not None
        if check and held is not None:  # (the fused fill asks it directly, not through update)
            ex = exchange[-1]
            books = list(ex._books.values())
            got = (held, levels(books))
            count = solve_liquidation_prices(books, wallet, banded=ex.bounded_liquidation_solves)
            assert got == (count, levels(books))
        return held

    def update(self: Margin, changed: Book | None = None) -> None:
        exchange.append(self)
        real_update(self, changed)
        seen["full"] += self._cover is None or self._cover.terms is None  # (a solve not answered by the short way)
        if check:
            books = list(self._books.values())
            got = (self._cross_positions, levels(books))
            count = solve_liquidation_prices(books, self.wallet, banded=self.bounded_liquidation_solves)
            assert got == (count, levels(books))

    monkeypatch.setattr(Cover, "after_fill", after_fill)
    monkeypatch.setattr(Margin, "_update_liquidation_prices", update)
    frames = _frames(symbols, 3_000, 7)
    if gap != 1.0:
        frames = {s: gapped(f, gap) for s, f in frames.items()}
    result = Backtest(config(balance, leverage, long_only, symbols), build_registry(), frames=frames,
                      act_mask="off").run()
    trades = [(t.symbol, t.side, t.quantity, t.entry_price, t.exit_price, t.net_pnl, t.exit_reason)
              for t in result.portfolio.trades]
    seen["liquidations"] = sum(t[-1] == "liquidation" for t in trades)
    return trades, seen


@pytest.mark.parametrize("case", list(CASES))
def test_every_solve_is_the_full_solve(case: str, monkeypatch) -> None:
    trades, seen = run(case, monkeypatch, cover=True, check=True)
    assert len(trades) > 50
    if case in ("covered", "barely", "mixed"):
        assert seen["fast"] > 100  # the short way is taken...
    if case in ("barely", "shorts", "leveraged", "mixed"):
        assert seen["full"] > 0  # ...and declined where it must be


@pytest.mark.parametrize("case", list(CASES))
def test_runs_give_the_trades_of_full_solves(case: str, monkeypatch) -> None:
    fast, seen = run(case, monkeypatch, cover=True, check=False)
    full, _ = run(case, monkeypatch, cover=False, check=False)
    assert fast == full
    if case == "leveraged":
        assert seen["liquidations"] > 0


@pytest.mark.parametrize("seed", range(12))
def test_after_fill_is_the_full_solve_on_random_books(rules, seed: int) -> None:
    """One book's position changed at a time (opened, added to, closed, made short or isolated, its levels left
    dirty), the wallet moved around the longs' entry notional: where the short way answers, a full solve made
    there gives the same count and levels, and its sum is the full solve's."""
    from kinetic_empire.core.enums import MarginType

    rng = np.random.default_rng(seed)
    books = [Book(rules[s], None, 1) for s in SYMBOLS[:6]]
    books[5].tiers = ((1e18, 0.95, 0.0),)  # (a maintenance rate above COVER_MAX_RATE: its longs never covered)
    cover = Cover()
    wallet = Decimal(3000)
    answered = declined = 0
    for _ in range(400):
        b = books[int(rng.integers(0, len(books)))]
        pos = b.pos
        roll = rng.uniform()
        pos.margin_type = MarginType.ISOLATED if 0.35 <= roll < 0.4 else MarginType.CROSSED
        if roll < 0.35 or (b is books[5] and roll < 0.85):  # (the unsafe book mostly flat: the others answer)
            pos.qty_f, pos.entry_f = 0.0, 0.0
        else:
            pos.qty_f = float(rng.uniform(10, 200)) * (-1.0 if 0.4 <= roll < 0.47 else 1.0)
            pos.entry_f = float(rng.uniform(1.0, 5.0))
        b.last = pos.entry_f or 3.0
        b.watch_low, b.watch_high, pos.liq_f = 1.0, 2.0, 0.5  # dirty: the answer must reset them
        longs = sum(x.pos.qty_f * x.pos.entry_f for x in books if x.pos.qty_f > 0)
        if rng.uniform() < 0.7:
            wallet = Decimal(repr(round(longs * float(rng.choice([0.999, 1.0, 1.001, 1.2, 3.0])), 4)))
        else:  # at the edge the full solve's float comparison turns at (COVER_GAP of the wallet and the sum)
            wallet = Decimal(repr(longs * float(rng.choice([1 + 2e-9, 1 + 2.0001e-9, 1 + 1.9999e-9, 1 + 2.01e-9]))))
        held = cover.after_fill(b, wallet, 0)
        if held is None:
            declined += 1
            solve_liquidation_prices(books, wallet, cover=cover)
            continue
        answered += 1
        got = (held, levels(books))
        assert got == (solve_liquidation_prices(books, wallet), levels(books))
        assert cover.notional == pytest.approx(longs, rel=1e-12, abs=1e-9)
    assert answered > 20 and declined > 30, (answered, declined)
