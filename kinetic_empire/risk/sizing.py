"""Position sizing: a raw quantity from the strategy's method, then caps, then the symbol's grid.

Pure functions of numbers and :class:`SymbolRules`; every cap and rounding that changes the quantity
is written down as a human string, because "why is my order smaller than I asked" is the first
question a user asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

from ..core.rules import SymbolRules
from .config import SizingConfig, SizingMethod
from .guards import Denial, deny, fmt

ZERO = Decimal(0)
_HUNDRED = Decimal(100)


def raw_quantity(
    cfg: SizingConfig,
    *,
    symbol: str,
    price: Decimal,
    equity: Decimal,
    stop: Decimal | None,
    atr: float | None,
    fee_taker: Decimal,
) -> Decimal | Denial:
    """The unrounded, uncapped quantity the method asks for at ``price`` (the expected entry)."""
    method = cfg.method
    if method is SizingMethod.FIXED_QUANTITY:
        return cfg.quantity or ZERO
    if method is SizingMethod.FIXED_NOTIONAL:
        return (cfg.notional or ZERO) / price
    if equity <= 0:
        return deny("NO_EQUITY", symbol=symbol, equity=equity)
    percent = cfg.percent or ZERO
    if method is SizingMethod.PERCENT_EQUITY:
        return equity * percent / _HUNDRED / price
    if method is SizingMethod.RISK_PER_TRADE:
        if stop is None:
            return deny("STOP_REQUIRED", symbol=symbol, method=method.value)
        # per unit: the price move to the stop, plus taker fees on the entry and on the stop fill
        per_unit = abs(price - stop) + fee_taker * (price + stop)
        return equity * percent / _HUNDRED / per_unit
    # volatility target: a move of atr_multiple ATRs costs `percent` of equity
    if atr is None:
        return deny("ATR_NOT_READY", symbol=symbol, timeframe=cfg.timeframe, period=cfg.atr_period)
    if atr <= 0:
        return deny("ATR_ZERO", symbol=symbol, timeframe=cfg.timeframe, period=cfg.atr_period)
    return equity * percent / _HUNDRED / (Decimal(str(atr)) * cfg.atr_multiple)


class Cap(NamedTuple):
    """An upper bound on the quantity, with the name used in the adjustment note.

    ``{}`` fields in ``label`` are filled with ``values`` (as :func:`fmt` writes them) only when the
    cap binds: formatting Decimals costs more than the comparison, and most caps never bind. (A named
    tuple: three are made per entry, and a frozen dataclass costs several times more to build.)
    """

    label: str
    limit: Decimal
    values: tuple[object, ...] = ()

    def describe(self) -> str:
        return self.label.format(*map(fmt, self.values)) if self.values else self.label


class Sized(NamedTuple):
    quantity: Decimal
    adjustments: tuple[str, ...]


def margin_limit(usable: Decimal, price: Decimal, leverage: int, fee_taker: Decimal) -> Decimal:
    """Largest quantity whose initial margin plus taker fee fits in ``usable``."""
    return usable / (price * (Decimal(1) / leverage + fee_taker))


def finish(
    qty: Decimal,
    *,
    rules: SymbolRules,
    price: Decimal,
    market: bool,
    caps: Sequence[tuple[str, Decimal, tuple[object, ...]]],
    adjustments: list[str] | None = None,
    rounding: Callable[[Decimal], Decimal] | None = None,
) -> Sized | Denial:
    """Apply ``caps`` (:class:`Cap` or plain ``(label, limit, values)`` tuples) in order, round down to the
    lot step, then deny what the exchange would refuse."""
    notes = adjustments if adjustments is not None else []
    for label, limit, values in caps:
        if qty > limit:
            notes.append(f"capped by {Cap(label, limit, values).describe()} {fmt(qty)}→{fmt(limit)}")
            qty = limit
    rounded = rules.round_qty(qty, market=market) if rounding is None else rounding(qty)  # (the same, remembered)
    if rounded != qty:
        notes.append(f"qty rounded {fmt(qty)}→{rounded:f}")
    if rounded <= 0:
        step = rules.market_step_size if market else rules.step_size
        return deny("QTY_ROUNDS_TO_ZERO", symbol=rules.symbol, qty=qty, step=step)
    min_qty = rules.market_min_qty if market else rules.min_qty
    if rounded < min_qty:
        return deny("QTY_BELOW_MIN", symbol=rules.symbol, qty=rounded, min=min_qty)
    notional = rounded * price
    if rules.min_notional > 0 and notional < rules.min_notional:
        return deny("NOTIONAL_BELOW_MIN", symbol=rules.symbol, notional=notional, min=rules.min_notional)
    return Sized(rounded, tuple(notes))
