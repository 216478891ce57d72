"""What the simulated exchange keeps per symbol: the position, the order queues and the float triggers.

Money is ``Decimal``; the prices a kline is compared with (liquidation, watch levels, funding time) are
precomputed floats and ints, so the per-kline check is a comparison.
"""

from __future__ import annotations

from decimal import Decimal

from ..core.enums import MarginType
from ..core.liquidation import float_tiers
from ..core.rules import LeverageBrackets, SymbolRules
from .orders import SimOrder

ZERO = Decimal(0)
ONE = Decimal(1)
INF = float("inf")
NEVER = 2**62  # a funding time no kline reaches
_FEE_Q = Decimal("0.00000001")


def dec(x: float) -> Decimal:
    """Exact decimal of a float price (``repr`` gives the shortest round-tripping digits)."""
    return Decimal(repr(float(x)))


def money(x: Decimal) -> Decimal:
    """A ledger amount, quantised to Binance's 8 decimals."""
    return x.quantize(_FEE_Q)


class BookPosition:
    """The one-way position of a symbol, with float copies for the per-kline maths."""

    __slots__ = ("entry", "entry_f", "iso_wallet", "leverage", "liq_f", "margin_type", "qty", "qty_f")

    def __init__(self, leverage: int) -> None:
        self.qty = ZERO
        self.entry = ZERO
        self.qty_f = 0.0
        self.entry_f = 0.0
        self.liq_f = 0.0  # 0: none; negative: not solved yet (exchange.cross_margin.liquidation_of)
        self.leverage = leverage
        self.margin_type = MarginType.CROSSED
        self.iso_wallet = ZERO  # the isolated wallet (exchange.isolated); zero under cross margin


class Book:
    """Everything the exchange keeps per symbol."""

    __slots__ = (
        "brackets", "busy", "last", "liq_margin", "mark", "market", "next_funding", "pos", "resting", "rules", "symbol",
        "tiers", "top_rate", "watch_high", "watch_low",
    )  # fmt: skip

    def __init__(self, rules: SymbolRules, brackets: LeverageBrackets | None, leverage: int) -> None:
        self.symbol = rules.symbol
        self.rules = rules
        self.brackets = brackets
        self.last = 0.0
        self.mark = 0.0  # replayed mark price (exchange.marked); 0.0: none, the last price stands in
        self.market: list[SimOrder] = []  # waiting for the next price
        self.resting: list[SimOrder] = []  # limits and conditional orders
        self.pos = BookPosition(leverage)
        self.busy = False  # has orders waiting for a price
        # a kline needs processing only when it reaches one of these (liquidation, funding time; with several
        # cross positions also the edge of the band that calls for a re-solve, see exchange.cross_margin)
        self.watch_low = -INF
        self.watch_high = INF
        self.next_funding = NEVER
        # (notional cap, maintenance margin rate, cum) as floats, for the per-kline liquidation maths
        self.tiers = float_tiers(brackets)
        # the highest maintenance rate: how fast maintenance margin can grow with price (exchange.cross_margin)
        self.top_rate = max((rate for _, rate, _ in self.tiers), default=1.0)
        self.liq_margin = 0.0  # what backs the cross position at the last solve (exchange.cross_margin)

    def mark_price(self) -> float:
        """The mark price as Binance's margin maths use it: the replayed mark, else the last price."""
        return self.mark or self.last

    def refresh(self) -> None:
        """Note whether any order waits for a price (the per-kline fast path skips books that don't)."""
        self.busy = bool(self.market or self.resting)
