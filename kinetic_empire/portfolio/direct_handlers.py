"""The portfolio's handlers of the backtest's plain order events, taking the events' fields instead of the events.

A backtest's fused order path (:mod:`kinetic_empire.backtest.direct`) hands an accepted MARKET order, its fill
and the fill's balance change straight to their readers while the bus's subscribers are exactly those readers.
Each method here does what the portfolio's bus handler does with an event of that shape, with the same values
in the same records; tests/unit/test_fused_order_path.py runs backtests both ways and compares every record.

What a direct request leaves is a :data:`Light` entry, not an :class:`OrderInfo`: a backtest requests thousands of
orders, and all a plain MARKET request knows fits a tuple (a fifth of the object's cost to make). The first bus
handler that needs the object makes it from the tuple (:meth:`DirectHandlers._full_info`), with the same fields.
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


Light = tuple[str, str, str, Decimal]
"""``(strategy_id, tag, side, quantity)``: the :class:`OrderInfo` of a plain MARKET order a signal requested (reason
``"signal"``, type ``MARKET``, no price), kept as a tuple until a bus handler needs the object."""


class DirectHandlers:
    """The :class:`~kinetic_empire.portfolio.Portfolio`'s field-taking handlers (a mixin over its state)."""

    _info: dict[str, OrderInfo | Light]
    _intent_tags: dict[str, str]
    _order_rows: list[tuple[Any, ...]]
    _fills: list[Any]
    _wallet: Decimal
    _wallet_ts: list[int]
    _wallet_val: list[Decimal]
    fees_total: Decimal

    def _full_info(self, cid: str) -> OrderInfo:
        """The order's :class:`OrderInfo` (a new one for an order not seen yet), made from its :data:`Light` entry if it
        has one: what the bus handlers read and change."""
        found = self._info.get(cid)
        if type(found) is OrderInfo:
            return found
        info = self._info[cid] = OrderInfo()
        if found is not None:  # (the fields a plain MARKET request sets, as market_requested's light entry holds them)
            info.strategy_id, info.tag, info.side, info.quantity = found  # type: ignore[misc]
            info.reason = "signal"
            info.order_type = _MARKET
        return info

    def market_requested(self, cid: str, intent_id: str, strategy_id: str, side: Side, quantity: Decimal) -> None:
        """What ``_on_request`` does with an ``OrderRequest`` of a MARKET order with these fields (no price, no
        trigger: its reason a signal's)."""
        if cid not in self._info:  # (a new order's: what the steps below leave in an OrderInfo(), as a Light entry)
            tags = self._intent_tags
            self._info[cid] = (strategy_id, tags.get(intent_id, "") if tags else "", side._value_, quantity)
            return
        info = self._full_info(cid)
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
        info: Any = self._info.get(cid)  # (an OrderInfo, a Light entry or None)
        value = side._value_
        if type(info) is tuple:  # (a Light entry: its side and quantity set, the rest as it holds)
            strategy_id, tag, was, size = info
            if was is not value or size is not quantity:
                self._info[cid] = (strategy_id, tag, value, quantity)
            self._order_rows.append((ts, cid, strategy_id, symbol, value, _MARKET, quantity, None, _NEW, "signal", tag))
            return
        if info is None:
            info = self._info[cid] = OrderInfo()
        info.side = value
        info.order_type = _MARKET
        info.quantity = quantity
        self._order_rows.append((ts, cid, info.strategy_id, symbol, value, _MARKET, quantity, info.price, _NEW,
                                 info.reason, info.tag))  # fmt: skip

    def market_filled(self, cid: str, symbol: str, side: Side, quantity: Decimal, price: Decimal, commission: Decimal,
                      realized: Decimal, status: OrderStatus, ts: int) -> None:
        """What ``_on_filled`` does with an ``OrderFilled`` of a MARKET order that is no liquidation, its commission
        counted in the portfolio's asset."""
        info: Any = self._info.get(cid)  # (an OrderInfo, a Light entry or None)
        if type(info) is tuple:
            strategy_id = info[0]
            tag = info[1]
            reason = "signal"
        else:
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


__all__ = ["DirectHandlers", "Light", "OrderInfo"]
