"""REST snapshots as the execution port's typed values (:mod:`kinetic_empire.core.ports`), and the guard
that keeps one malformed user-stream payload from stopping the stream."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.ports import VenueBalance, VenueOrder, VenuePosition
from .wire import ZERO, WireError, accepted_from_rest, dec, order_status

log = logging.getLogger(__name__)

HEDGE_SIDES = ("LONG", "SHORT")


def venue_order(data: Mapping[str, Any]) -> VenueOrder:
    """A plain or algo order object (query, placement or cancel reply) as the port's typed value."""
    acc = accepted_from_rest(data, 0)
    return VenueOrder(client_order_id=acc.client_order_id, symbol=acc.symbol, side=acc.side,
                      order_type=acc.order_type, status=order_status(data), quantity=acc.quantity or ZERO,
                      filled=dec(data.get("executedQty")), price=acc.price, trigger_price=acc.trigger_price)


def venue_positions(rows: Iterable[Mapping[str, Any]]) -> list[VenuePosition]:
    """``GET /fapi/v2/positionRisk`` rows, one-way mode (hedge-mode legs are not ours)."""
    try:
        return [VenuePosition(symbol=str(r["symbol"]), quantity=dec(r.get("positionAmt")),
                              entry_price=dec(r.get("entryPrice")), leverage=int(r.get("leverage") or 0),
                              update_ms=int(r.get("updateTime") or 0))
                for r in rows if r.get("positionSide", "BOTH") == "BOTH"]
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"positionRisk payload: {exc}") from None


def venue_balances(rows: Iterable[Mapping[str, Any]]) -> list[VenueBalance]:
    """``GET /fapi/v2/balance`` rows."""
    try:
        return [VenueBalance(asset=str(r["asset"]), wallet=dec(r.get("balance")),
                             available=dec(r.get("availableBalance"))) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"balance payload: {exc}") from None


def safe(fn: Callable[[Mapping[str, Any]], None], what: str) -> Callable[[Mapping[str, Any]], None]:
    """Wrap a payload handler: a malformed payload is logged once with its type, and the stream goes on."""

    def run(msg: Mapping[str, Any]) -> None:
        try:
            fn(msg)
        except (WireError, KeyError, TypeError, ValueError) as exc:
            log.warning("%s: malformed payload skipped (%s: %s): %s", what, type(exc).__name__, exc, str(msg)[:200])

    return run
