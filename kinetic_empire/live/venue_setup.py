"""What a live run reads from and sets on the venue before trading: brackets, fees, wallet, margin and leverage."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

from ..binance.account import commission_rates
from ..binance.errors import BinanceError, NoChangeError, RejectedError
from ..binance.rest import BinanceRest
from ..binance.translate import venue_balances
from ..core.errors import KineticError
from ..core.rules import LeverageBrackets, parse_brackets
from ..resources import default_brackets

log = logging.getLogger(__name__)


async def leverage_brackets(rest: BinanceRest, symbols: Sequence[str]) -> dict[str, LeverageBrackets]:
    """The venue's brackets, or the bundled snapshot when they are unusable or miss a traded symbol."""
    try:
        payload = await rest.signed("GET", "/fapi/v1/leverageBracket")
        found = parse_brackets(payload if isinstance(payload, list) else [payload])
        if all(sym in found for sym in symbols):
            return found
    except (BinanceError, ValueError, KeyError, TypeError) as exc:
        log.warning("leverage brackets from the venue unusable (%s); using the bundled snapshot", exc)
    return default_brackets()


async def fee_rates(rest: BinanceRest, symbols: Sequence[str]) -> tuple[Decimal, Decimal]:
    """Every traded symbol's rates are read; the engine's one rate pair is the highest of each (conservative)."""
    rates = await commission_rates(rest, symbols)
    return max(m for m, _t in rates.values()), max(t for _m, t in rates.values())


async def usdt_wallet(rest: BinanceRest) -> Decimal:
    for b in venue_balances(await rest.signed("GET", "/fapi/v2/balance")):
        if b.asset == "USDT":
            return b.wallet
    raise KineticError("the account has no USDT balance")


async def set_symbol(rest: BinanceRest, symbol: str, margin_type: str, leverage: int) -> None:
    """Margin type (the symbol's ``risk.margin_type``, else ``live.margin_type``) and leverage for ``symbol``.

    An unchanged margin type (-4046 "No need to change margin type") is fine; one Binance refuses because the
    symbol has open orders or a position (-4047, -4048) stays as it is, with a warning.
    """
    try:
        await rest.signed("POST", "/fapi/v1/marginType", {"symbol": symbol, "marginType": margin_type})
    except NoChangeError:
        pass
    except RejectedError as exc:
        log.warning("%s: margin type not changed: %s", symbol, exc)
    await rest.signed("POST", "/fapi/v1/leverage", {"symbol": symbol, "leverage": leverage})
