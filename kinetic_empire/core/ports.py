"""The execution port: the few verbs every venue adapter offers, and the typed values it answers with.

Two implementations today: the backtest's :class:`~kinetic_empire.exchange.broker.SimulatedBroker` and
:class:`~kinetic_empire.binance.execution.BinanceExecution` (local sandbox, demo, testnet); one contract
suite (``tests/integration/test_execution_contract.py``) holds them to the same behaviour. Order outcomes (accepted,
rejected, filled, canceled) come back as events on the bus, never as return values, so the engine sees a
simulated and a real venue the same way. Snapshots (one order, positions, balances) cross the port as the
frozen values below, not wire dicts: the core never reads Binance's JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from .enums import OrderStatus, OrderType, Side
from .events import OrderRequest


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue knows it (query by client id)."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    status: OrderStatus
    quantity: Decimal  # 0 for a close-position trigger order
    filled: Decimal
    price: Decimal | None = None
    trigger_price: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal


@dataclass(frozen=True, slots=True)
class VenuePosition:
    """One-way-mode position; ``quantity`` is signed (> 0 long, < 0 short)."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal
    leverage: int
    update_ms: int = 0


@dataclass(frozen=True, slots=True)
class VenueBalance:
    """One asset of the futures wallet."""

    asset: str
    wallet: Decimal  # deposits + realized PnL - fees + funding
    available: Decimal  # what new orders may use


class ExecutionPort(Protocol):
    """Submit, cancel, cancel all, query, and snapshots for reconciliation.

    ``submit`` and the cancels report through the bus (OrderAccepted / OrderRejected with Binance's code,
    OrderCanceled, OrderFilled); a duplicate client id of an open order is not a second order and not a
    rejection of the first. ``query_order`` answers None for a client id the venue does not know.
    """

    async def submit(self, r: OrderRequest) -> None: ...

    async def cancel(self, symbol: str, client_id: str) -> bool:
        """True if this call canceled the order; False if it was final or unknown already."""
        ...

    async def cancel_all(self, symbols: Iterable[str]) -> None:
        """Cancel every open order (plain and conditional) on ``symbols``; idempotent."""
        ...

    async def query_order(self, symbol: str, client_id: str) -> VenueOrder | None: ...

    async def positions(self) -> list[VenuePosition]:
        """Open positions (flat symbols may be left out)."""
        ...

    async def balances(self) -> list[VenueBalance]: ...


__all__ = ["ExecutionPort", "VenueBalance", "VenueOrder", "VenuePosition"]
