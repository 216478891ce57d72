"""Account guards as small pure functions: each returns None (pass) or a :class:`Denial`.

They see only numbers, never the bus or the account, so each rule is tested in isolation and the
manager decides which to run (reducing and closing intents skip them all). A denial's ``message``
starts with its code and lists the values a user needs: ``NOTIONAL_BELOW_MIN symbol=FILUSDT
notional=3.91 min=5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .config import SymbolExposureConfig

_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Denial:
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def fmt(value: object, places: int = 8) -> str:
    """A number for humans: no exponent, no padding, at most ``places`` decimals (cut, not rounded up)."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        value = Decimal(str(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value.as_tuple().exponent < -places:  # type: ignore[operator]
            value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "") else text
    return str(value)


MAX_QUANTITY = Decimal(10) ** 15
"""Beyond any symbol's maxQty: a larger (or NaN, infinite) quantity is refused before any rounding, where
a huge Decimal would overflow the quantisation."""


def deny(code: str, **values: object) -> Denial:
    """A denial whose message is the code followed by ``key=value`` pairs, in the order given."""
    parts = [code, *(f"{k}={fmt(v, 4 if k in _MONEY else 8)}" for k, v in values.items())]
    return Denial(code, " ".join(parts))


# money-like values read better with 4 decimals; prices and quantities keep their grid
_MONEY = frozenset({"notional", "equity", "available", "exposure", "limit", "loss", "budget", "margin"})


# ---------------------------------------------------------------------------------------- exposure


def max_open_positions(symbol: str, open_count: int, adds_position: bool, limit: int | None) -> Denial | None:
    """A new symbol may not push the number of open positions above ``limit``."""
    if limit is None or not adds_position or open_count < limit:
        return None
    return deny("MAX_OPEN_POSITIONS", symbol=symbol, open=open_count, max=limit)


def max_gross_exposure(symbol: str, gross_after: Decimal, equity: Decimal, multiple: Decimal | None) -> Denial | None:
    """Sum of |position notional| after the order must stay within ``multiple`` × equity."""
    if multiple is None:
        return None
    limit = equity * multiple
    if gross_after <= limit:
        return None
    return deny("MAX_GROSS_EXPOSURE", symbol=symbol, exposure=gross_after, limit=limit, multiple=multiple)


def max_symbol_exposure(
    symbol: str, notional_after: Decimal, equity: Decimal, cfg: SymbolExposureConfig | None
) -> Denial | None:
    """The symbol's position notional after the order must stay within a USDT cap or equity share."""
    if cfg is None:
        return None
    limit = cfg.usdt if cfg.usdt is not None else equity * (cfg.equity_fraction or 0)
    if notional_after <= limit:
        return None
    return deny("MAX_SYMBOL_EXPOSURE", symbol=symbol, exposure=notional_after, limit=limit)


# ------------------------------------------------------------------------------------------ losses


def daily_loss(day_start_equity: Decimal, equity: Decimal, limit_pct: Decimal | None) -> Denial | None:
    """Equity lost since the first observation of the UTC day reached ``limit_pct`` of it."""
    if limit_pct is None or day_start_equity <= 0:
        return None
    loss = day_start_equity - equity
    if loss * _HUNDRED < day_start_equity * limit_pct:
        return None
    return deny(
        "DAILY_LOSS_LIMIT",
        loss=loss,
        day_start_equity=fmt(day_start_equity, 4),
        loss_pct=fmt(loss * _HUNDRED / day_start_equity, 2),
        limit_pct=limit_pct,
    )


def max_drawdown(peak_equity: Decimal, equity: Decimal, limit_pct: Decimal | None) -> Denial | None:
    """Equity fell ``limit_pct`` below its peak."""
    if limit_pct is None or peak_equity <= 0:
        return None
    drop = peak_equity - equity
    if drop * _HUNDRED < peak_equity * limit_pct:
        return None
    return deny(
        "MAX_DRAWDOWN",
        peak_equity=fmt(peak_equity, 4),
        equity=equity,
        drawdown_pct=fmt(drop * _HUNDRED / peak_equity, 2),
        limit_pct=limit_pct,
    )


def cooldown(symbol: str, until_ms: int | None, now_ms: int) -> Denial | None:
    """After a losing streak the symbol takes no entries until ``until_ms``."""
    if until_ms is None or now_ms >= until_ms:
        return None
    return deny("LOSS_STREAK_COOLDOWN", symbol=symbol, until_ms=until_ms, remaining_s=(until_ms - now_ms) // 1000)


# ------------------------------------------------------------------------------------- liquidation


def liquidation_distance_pct(
    symbol: str, entry: Decimal, liquidation: Decimal, long: bool, min_pct: Decimal | None
) -> Denial | None:
    """The liquidation price must be at least ``min_pct`` percent of the entry away from it."""
    if min_pct is None:
        return None
    gap = _gap(entry, liquidation, long)
    if gap is None or gap * _HUNDRED >= entry * min_pct:
        return None
    return deny(
        "LIQUIDATION_TOO_CLOSE",
        symbol=symbol,
        entry=entry,
        liquidation=fmt(liquidation, 8),
        distance_pct=fmt(gap * _HUNDRED / entry, 2),
        min_pct=min_pct,
    )


def liquidation_distance_atr(
    symbol: str, entry: Decimal, liquidation: Decimal, long: bool, atr: float | None, multiple: Decimal | None
) -> Denial | None:
    """The liquidation price must be at least ``multiple`` ATRs away from the entry."""
    if multiple is None:
        return None
    if atr is None:
        return deny("ATR_NOT_READY", symbol=symbol, purpose="liquidation_distance")
    gap = _gap(entry, liquidation, long)
    need = Decimal(str(atr)) * multiple
    if gap is None or gap >= need:
        return None
    return deny(
        "LIQUIDATION_TOO_CLOSE",
        symbol=symbol,
        entry=entry,
        liquidation=fmt(liquidation, 8),
        distance=fmt(gap, 8),
        min_distance=fmt(need, 8),
        atr=fmt(atr, 8),
    )


def _gap(entry: Decimal, liquidation: Decimal, long: bool) -> Decimal | None:
    """Entry-to-liquidation distance in price; None when the position cannot be liquidated."""
    if liquidation <= 0:
        return None if long else Decimal(0)
    return entry - liquidation if long else liquidation - entry
