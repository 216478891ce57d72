"""The account's modes and what the engine does in each, read at start-up and followed at runtime.

Binance has two account-wide switches that change what orders and payloads mean (reference 3.4, 4.4):

* **Position mode** (``dualSidePosition``). One-way: one net position per symbol, ``positionSide=BOTH``.
  Hedge: separate LONG and SHORT positions; an order without ``positionSide`` gets ``-4061`` and the
  payloads' ``BOTH`` rows are absent. The engine nets positions and sends no ``positionSide``, so it
  **refuses to start in hedge mode** (with or without the preflight), and when hedge-mode rows appear at
  runtime it raises a critical :class:`~kinetic_empire.core.events.Alert` (its orders are then refused by the
  venue with ``-4061``, each reported as OrderRejected; nothing is sent twice).
* **Margin mode** (``multiAssetsMargin``). Single-asset: USDT margins USDT-M symbols. Multi-assets: every
  collateral asset margins every symbol, and the account totals are in USD. The engine **trades in both**;
  its wallet stays the USDT asset's wallet balance, because USDT-M PnL, fees and funding settle in USDT in
  either mode; other collateral is left out of sizing and the daily loss (conservative: sized on less than
  the account could margin). Entering or leaving multi-assets mode at runtime (``ACCOUNT_CONFIG_UPDATE``
  with ``ai.j``) raises an Alert saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..core.errors import KineticError
from .errors import BinanceError, RejectedError, VenueResponseError

log = logging.getLogger(__name__)

HEDGE_HINT = ("switch the account to one-way mode (Preferences > Position Mode, or POST /fapi/v1/positionSide/dual "
              "dualSidePosition=false with no open orders or positions)")
MULTI_ASSETS_NOTE = ("multi-assets margin mode: the engine sizes and guards on the USDT wallet only (USDT-M PnL, fees "
                     "and funding settle there); other collateral is not counted")


@dataclass(slots=True)
class AccountModes:
    """What the engine knows of the account's modes; None until read."""

    hedge: bool | None = None
    multi_assets: bool | None = None

    def describe(self) -> str:
        position = "unknown" if self.hedge is None else "hedge" if self.hedge else "one-way"
        margin = "unknown" if self.multi_assets is None else "multi-assets" if self.multi_assets else "single-asset"
        return f"{position} position mode, {margin} margin mode"


class AccountModeError(KineticError):
    """The account is in a mode the engine cannot trade in (hedge mode)."""


def modes_from(config: Mapping[str, Any]) -> AccountModes:
    """Modes from ``GET /fapi/v1/accountConfig`` (both flags), or ``/fapi/v2/account`` merged with
    ``/fapi/v1/positionSide/dual`` (each has one of them)."""
    hedge, multi = config.get("dualSidePosition"), config.get("multiAssetsMargin")
    return AccountModes(None if hedge is None else _flag(hedge), None if multi is None else _flag(multi))


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def require_tradeable(modes: AccountModes) -> None:
    """Raise :class:`AccountModeError` (one line, with the fix) if the engine must not trade in these modes;
    log what multi-assets mode means for the wallet."""
    if modes.multi_assets:
        log.warning("%s", MULTI_ASSETS_NOTE)
    if modes.hedge:
        raise AccountModeError(f"the account is in hedge mode (dualSidePosition=true); this engine trades one-way "
                               f"positions only: {HEDGE_HINT}")


async def read_modes(rest: Any) -> AccountModes:
    """Both modes from the venue: ``GET /fapi/v1/accountConfig`` (weight 5), or where a venue lacks it,
    ``/fapi/v1/positionSide/dual`` and ``/fapi/v2/account``. Read at start-up even without the preflight,
    so ``--no-preflight`` never trades a hedge-mode account."""
    try:
        data = await rest.signed("GET", "/fapi/v1/accountConfig")
    except (RejectedError, VenueResponseError):
        dual = await rest.signed("GET", "/fapi/v1/positionSide/dual")
        account = await rest.signed("GET", "/fapi/v2/account")
        data = {**(account if isinstance(account, Mapping) else {}), **(dual if isinstance(dual, Mapping) else {})}
    return modes_from(data if isinstance(data, Mapping) else {})


DEFAULT_RATES = (Decimal("0.0002"), Decimal("0.0005"))
"""Binance's VIP 0 maker and taker rates (reference 9.6), used only when the venue cannot tell."""


async def commission_rates(rest: Any, symbols: Iterable[str]) -> dict[str, tuple[Decimal, Decimal]]:
    """(maker, taker) of every traded symbol from ``GET /fapi/v1/commissionRate`` (weight 20 each): rates
    differ by symbol, so the first symbol's rates are not every symbol's. A symbol the venue does not answer
    for gets the VIP 0 defaults, with a warning."""
    rates: dict[str, tuple[Decimal, Decimal]] = {}
    for symbol in dict.fromkeys(symbols):
        try:
            data = await rest.signed("GET", "/fapi/v1/commissionRate", {"symbol": symbol})
            rates[symbol] = (Decimal(str(data["makerCommissionRate"])), Decimal(str(data["takerCommissionRate"])))
        except (BinanceError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            log.warning("%s: commission rates unavailable (%s); assuming %s / %s", symbol, exc, *DEFAULT_RATES)
            rates[symbol] = DEFAULT_RATES
    return rates


__all__ = [
    "DEFAULT_RATES",
    "HEDGE_HINT",
    "MULTI_ASSETS_NOTE",
    "AccountModeError",
    "AccountModes",
    "commission_rates",
    "modes_from",
    "read_modes",
    "require_tradeable",
]
