"""What ``Strategy.on_order_rejected`` receives: one type, whichever part of the engine said no.

Two events on the bus mean "your order did not happen": :class:`RiskDenied` (the risk manager refused
the intent; nothing was sent) and :class:`OrderRejected` (the venue refused the order). A strategy
mostly wants to know which, why, and for which intent, so the runner hands it one frozen
:class:`OrderRejection` with the same fields either way, and the original event for the details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..core.events import OrderRejected, RiskDenied

RejectionSource = Literal["risk", "exchange"]


@dataclass(frozen=True, slots=True)
class OrderRejection:
    """An intent of this strategy that did not become a working order.

    ``source`` is ``"risk"`` (denied before sending; ``code`` is the risk check's, e.g.
    ``NOTIONAL_BELOW_MIN``) or ``"exchange"`` (refused by the venue; ``code`` is Binance's error code
    as text, e.g. ``"-2019"``). ``order_id`` is the intent id (risk) or the client order id (exchange).
    """

    source: RejectionSource
    symbol: str
    code: str
    reason: str
    order_id: str
    ts_event: int
    event: OrderRejected | RiskDenied

    @classmethod
    def of(cls, event: OrderRejected | RiskDenied) -> OrderRejection:
        if isinstance(event, RiskDenied):
            return cls("risk", event.symbol, event.code, event.message, event.intent_id, event.ts_event, event)
        return cls("exchange", event.symbol, str(event.code), event.reason, event.client_order_id, event.ts_event,
                   event)


__all__ = ["OrderRejection", "RejectionSource"]
