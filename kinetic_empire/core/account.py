"""What the risk manager may know about the account: a read-only view, kept by the portfolio.

The portfolio builds it from events on the bus (fills, positions, balances, klines), so the same
risk code runs against the simulated exchange and against Binance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    quantity: Decimal  # signed: > 0 long, < 0 short
    entry_price: Decimal
    leverage: int

    @property
    def is_open(self) -> bool:
        return self.quantity != 0


class AccountView(Protocol):
    def wallet_balance(self) -> Decimal:
        """USDT wallet balance: deposits + realized PnL - fees + funding."""
        ...

    def equity(self) -> Decimal:
        """Wallet balance plus unrealized PnL at the latest known prices (margin balance)."""
        ...

    def available_balance(self) -> Decimal:
        """Equity minus initial margin of open positions (what a new order may use)."""
        ...

    def position(self, symbol: str) -> PositionView:
        """The current position (quantity 0 when flat)."""
        ...

    def positions(self) -> list[PositionView]:
        """All open positions."""
        ...

    def last_price(self, symbol: str) -> float:
        """Latest close (or mark) price seen for the symbol; 0.0 when none yet."""
        ...

    def leverage(self, symbol: str) -> int: ...
