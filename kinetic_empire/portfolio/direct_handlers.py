"""The portfolio's handlers of the backtest's plain order events, taking the events' fields instead of the events.

A backtest's fused order path (:mod:`kinetic_empire.backtest.direct`) hands an accepted MARKET order, its fill
and the fill's balance change straight to their readers while the bus's subscribers are exactly those readers.
Each method here does what the portfolio's bus handler does with an event of that shape, with the same values
in the same records; tests/unit/test_fused_order_path.py runs backtests both ways and compares every record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..core.enums import OrderStatus, OrderType, Side

_BUY = Side.BUY
_MARKET = OrderType.MARKET._value_
_NEW = OrderStatus.NEW._value_


class OrderInfo:
    """What we know about an order id: who sent it, why, and its shape (for later event rows)."""

    __slots__ = ("order_type", "price", "quantity", "reason", "side", "strategy_id", "tag")

    def __init__(self) -> None:
        self.strategy_id = ""
        self.reason = ""
        self.tag = ""
        self.side = ""
        self.order_type = ""
        self.quantity: Decimal | None = None
        self.price: Decimal | None = None


class DirectHandlers:
    """The :class:`~kinetic_empire.portfolio.Portfolio`'s field-taking handlers (a mixin over its state)."""

    _info: dict[str, OrderInfo]
    _intent_tags: dict[str, str]
    _order_rows: list[tuple[Any, ...]]
    _fills: list[Any]
    _wallet: Decimal
    _wallet_ts: list[int]
    _wallet_val: list[Decimal]
    fees_total: Decimal

    def market_requested(self, cid: str, intent_id: str, strategy_id: str, side: Side, quantity: Decimal) -> None:
        """What ``_on_request`` does with an ``OrderRequest`` of a MARKET order with these fields (no price, no
        trigger: its reason a signal's)."""
        info = self._info.get(cid)
        if info is None:  # (a new order's: each field set once, to what the steps below give from OrderInfo())
            info = OrderInfo.__new__(OrderInfo)
            info.strategy_id = strategy_id
            info.reason = "signal"
            info.tag = self._intent_tags.get(intent_id, "")
            info.side = side._value_
            info.order_type = _MARKET
            info.quantity = quantity
            info.price = None
            self._info[cid] = info
            return
        info.order_type = _MARKET
        if not info.strategy_id:
            info.strategy_id = strategy_id
        if not info.reason:
            info.reason = "signal"
        if info.reason == "signal" and not info.tag:
            info.tag = self._intent_tags.get(intent_id, "")
        info.side = side._value_
        info.quantity = quantity
        info.price = None

    def market_accepted(self, cid: str, symbol: str, side: Side, quantity: Decimal, ts: int) -> None:
        """What ``_on_accepted`` does with an ``OrderAccepted`` of a MARKET order with these fields (no price,
        no trigger)."""
        info = self._info.get(cid)
        if info is None:
            info = self._info[cid] = OrderInfo()
        value = info.side = side._value_
        info.order_type = _MARKET
        info.quantity = quantity
        self._order_rows.append((ts, cid, info.strategy_id, symbol, value, _MARKET, quantity, info.price, _NEW,
                                 info.reason, info.tag))  # fmt: skip

    def market_filled(self, cid: str, symbol: str, side: Side, quantity: Decimal, price: Decimal, commission: Decimal,
                      realized: Decimal, status: OrderStatus, ts: int) -> None:
        """What ``_on_filled`` does with an ``OrderFilled`` of a MARKET order that is no liquidation, its commission
        counted in the portfolio's asset."""
        info = self._info.get(cid)
        if info is None:
            info = self._info[cid] = OrderInfo()
        reason = info.reason
        strategy_id = info.strategy_id
        tag = info.tag
        self._order_rows.append((ts, cid, strategy_id, symbol, side._value_, _MARKET, quantity, price, status._value_,
                                 reason, tag))  # fmt: skip
        self.fees_total += commission
        # booked into round trips when the trades are next needed (TradeBook.pending), as _on_filled does
        self._fills.append((symbol, quantity if side is _BUY else -quantity, price, realized, commission, ts,
                            strategy_id, reason or "unknown", tag))  # fmt: skip

    def wallet_changed(self, wallet: Decimal, ts: int) -> None:
        """``_on_balance`` of a ``BalanceChanged`` of the portfolio's asset."""
        self._wallet = wallet
        self._wallet_ts.append(ts)
        self._wallet_val.append(wallet)


__all__ = ["DirectHandlers", "OrderInfo"]
