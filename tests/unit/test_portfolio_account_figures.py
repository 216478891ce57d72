"""The portfolio's account figures (equity, available balance) follow every close of every symbol: the risk
gate reads them on each entry, and the portfolio keeps each close's Decimal between queries, so a stale one
would size orders on an old price."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np

from kinetic_empire.core.bus import EventBus
from kinetic_empire.portfolio import Portfolio
from tests.unit.test_portfolio import Venue

POSITIONS = {"BTCUSDT": ("0.5", "30000", 5), "ETHUSDT": ("-3", "2000", 10), "FILUSDT": ("1000", "4.0", 20)}


def from_scratch(wallet: D, closes: dict[str, float]) -> tuple[D, D]:
    upnl = sum((D(q) * (D(repr(closes[s])) - D(e)) for s, (q, e, _) in POSITIONS.items()), D(0))
    margin = sum((abs(D(q)) * D(repr(closes[s])) / lev for s, (q, _, lev) in POSITIONS.items()), D(0))
    return wallet + upnl, wallet + upnl - margin


def test_equity_and_available_balance_follow_every_close() -> None:
    bus = EventBus()
    pf = Portfolio(bus, D("10000"), leverage_default=5)
    venue = Venue(bus)
    for sym, (qty, entry, lev) in POSITIONS.items():
        pf.set_leverage(sym, lev)
        venue.position(0, qty, entry, symbol=sym, lev=lev)
    rng = np.random.default_rng(7)
    closes = {s: float(e) for s, (_, e, _) in POSITIONS.items()}
    for i in range(1, 200):
        sym = list(POSITIONS)[i % 3]
        closes[sym] = round(closes[sym] * float(np.exp(rng.normal(0, 0.01))), 4)
        venue.kline(i * 60_000, closes[sym], symbol=sym)
        equity, available = from_scratch(D("10000"), closes)
        assert pf.equity() == equity, i
        assert pf.available_balance() == available, i
        assert pf.equity() == equity  # asked again: the same figure
