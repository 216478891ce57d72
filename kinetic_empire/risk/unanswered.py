"""No second entry on a symbol while the first one's outcome is unknown (issue 11).

An entry whose request timed out (or got a 5xx, or an unreadable reply) may have executed: the port
publishes :class:`OrderOutcomeUnknown` and looks it up by client id for up to a minute, never resending
it. Meanwhile the account still shows the symbol flat, so a strategy that enters "when flat" would enter
again, and the position would be twice what any rule sized. Until the venue answers (accepted, filled or
refused; the look-up's give-up is a refusal), further entries on that symbol are denied
(``ENTRY_OUTCOME_UNKNOWN``); exits pass, so a strategy can still close what it may hold.

Nothing here runs until the first unknown outcome: a backtest never has one, so it costs nothing there.
"""

from __future__ import annotations

from ..core.bus import EventBus
from ..core.events import OrderAccepted, OrderFilled, OrderOutcomeUnknown, OrderRejected
from .guards import Denial, deny


class UnansweredEntries:
    """Entry requests whose outcome is unknown, by symbol."""

    __slots__ = ("_bus", "_by_cid", "_count", "_listening")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._by_cid: dict[str, str] = {}  # client id -> symbol
        self._count: dict[str, int] = {}  # symbol -> entries of unknown outcome
        self._listening = False
        bus.subscribe(OrderOutcomeUnknown, self.unknown)

    def unknown(self, event: OrderOutcomeUnknown) -> None:
        if not event.opens or event.client_order_id in self._by_cid:
            return  # only what can open or grow a position counts
        if not self._listening:  # the answers matter only from the first unknown outcome on
            self._listening = True
            for kind in (OrderAccepted, OrderFilled, OrderRejected):
                self._bus.subscribe(kind, self.answered)
        self._by_cid[event.client_order_id] = event.symbol
        self._count[event.symbol] = self._count.get(event.symbol, 0) + 1

    def answered(self, event: OrderAccepted | OrderFilled | OrderRejected) -> None:
        if not self._by_cid:
            return
        symbol = self._by_cid.pop(event.client_order_id, None)
        if symbol is None:
            return
        left = self._count[symbol] - 1
        if left:
            self._count[symbol] = left
        else:
            del self._count[symbol]

    def check(self, symbol: str) -> Denial | None:
        if not self._count or symbol not in self._count:
            return None
        waiting = sorted(cid for cid, sym in self._by_cid.items() if sym == symbol)
        return deny("ENTRY_OUTCOME_UNKNOWN", symbol=symbol, waiting_for=",".join(waiting))


__all__ = ["UnansweredEntries"]
