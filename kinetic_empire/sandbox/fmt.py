"""Number formatting for the wire: Binance sends decimals as strings with a fixed number of places."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)
_Q8 = Decimal("0.00000001")


def places(step: Decimal) -> int:
    """Decimal places of a tick or step size ('0.001' -> 3, '1' -> 0)."""
    exp = step.normalize().as_tuple().exponent
    return max(0, -int(exp))


_SPECS = tuple(f".{n}f" for n in range(33))  # format specs by decimal places, built once


def spec(n: int) -> str:
    """The ``format`` spec for ``n`` decimals: ``format(decimal, spec(n))`` is :func:`fixed` for a Decimal."""
    return _SPECS[n] if 0 <= n < 33 else f".{n}f"


def fixed(value: Decimal | float | int | None, n: int) -> str:
    """``value`` with exactly ``n`` decimals (Binance prints '0.00' rather than '0')."""
    fmt = _SPECS[n] if 0 <= n < 33 else f".{n}f"
    if value.__class__ is Decimal or isinstance(value, float):  # every order field is a Decimal: one format call
        return format(value, fmt)
    return format(Decimal(value or 0), fmt)


def money(value: Decimal | float | None) -> str:
    """USDT amounts: eight decimals, as in account and balance replies."""
    return fixed(value, 8)


def plain(value: Decimal | float | None, min_places: int = 0) -> str:
    """Shortest exact text with at least ``min_places`` decimals (entry and average prices)."""
    if value is None:
        value = ZERO
    d = value if isinstance(value, Decimal) else Decimal(repr(value))
    d = d.quantize(_Q8) if d.as_tuple().exponent < -8 else d  # type: ignore[operator]
    text = format(d.normalize(), "f") if d != 0 else "0"
    if "." in text:
        decimals = len(text) - text.index(".") - 1
    else:
        decimals = 0
    if decimals < min_places:
        text = fixed(d, min_places)
    return text
