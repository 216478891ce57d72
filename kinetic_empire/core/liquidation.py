"""Binance's liquidation price for one-way mode (reference section 9.3), written once for two number types.

The risk manager's liquidation-distance guard works in ``Decimal``; the simulated exchange re-solves
liquidation prices as floats because it compares them with every kline's high and low. Both call
:func:`liquidation_price` here, so the guard estimates exactly the price the exchange liquidates at:
the function is generic over ``float`` and ``Decimal`` (it only adds, multiplies, divides and compares),
and a property test checks that the two number types agree.

Brackets enter as *tiers*, ``(notional cap, maintenance margin rate, cum)`` triples in ascending order,
built once from :class:`~kinetic_empire.core.rules.LeverageBrackets` by :func:`tiers` or
:func:`float_tiers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

from .rules import LeverageBrackets

N = TypeVar("N", float, Decimal)

#: the maintenance rate the exchange assumes for a symbol without a bracket table
DEFAULT_MAINT_RATE = 0.005


def tiers(brackets: LeverageBrackets | None) -> tuple[tuple[Decimal, Decimal, Decimal], ...]:
    """A bracket table as ``(notional cap, maintenance margin rate, cum)`` decimals; without brackets one
    unbounded tier at the default maintenance rate."""
    if brackets is None:
        return ((Decimal("Infinity"), Decimal(str(DEFAULT_MAINT_RATE)), Decimal(0)),)
    return tuple((b.notional_cap, b.maint_margin_ratio, b.cum) for b in brackets.brackets)


def float_tiers(brackets: LeverageBrackets | None) -> tuple[tuple[float, float, float], ...]:
    """The same tiers as floats, for the per-kline maths."""
    return tuple((float(cap), float(rate), float(cum)) for cap, rate, cum in tiers(brackets))


def tier_for(table: Sequence[tuple[N, N, N]], notional: N) -> tuple[N, N, N]:
    """The tier a position notional falls in (the last one above every cap)."""
    for tier in table:
        if notional < tier[0]:
            return tier
    return table[-1]


def maintenance_margin(table: Sequence[tuple[N, N, N]], notional: N) -> N:
    """Maintenance margin of a position notional: ``notional * rate - cum`` of its tier."""
    _, rate, cum = tier_for(table, notional)
    return notional * rate - cum


def liquidation_price(quantity: N, entry_price: N, margin: N, table: Sequence[tuple[N, N, N]]) -> N:
    """Liquidation price of a signed one-way position; 0 when it can never be liquidated (LP <= 0).

    ``margin`` is what backs the position: under cross margin the wallet balance minus the other
    positions' maintenance margin plus their unrealized PnL; under isolated margin the isolated wallet.
    The maintenance tier is the one of the notional *at the liquidation price*: start from the tier of
    the notional at entry and repeat with the tier the result falls in until it is stable (the solution
    is unique because maintenance margin grows slower than notional).
    """
    if quantity == 0:
        return type(quantity)(0)
    side = 1 if quantity > 0 else -1
    q = abs(quantity)
    tier = tier_for(table, q * entry_price)
    lp = type(quantity)(0)
    for _ in range(len(table) + 1):
        _, rate, cum = tier
        denom = q * rate - side * q
        if denom == 0:
            return type(quantity)(0)
        lp = (margin + cum - side * q * entry_price) / denom
        if lp <= 0:
            return type(quantity)(0)
        again = tier_for(table, q * lp)
        if again is tier:
            break
        tier = again
    return lp
